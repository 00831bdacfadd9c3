"""NER, NLI and QA end to end through the same paths as PoS (PoS is covered elsewhere).

For each task: a tiny-mBERT trial with realignment (front frozen, MUSE
dictionary links on bundled Tatoeba, a few steps), fine-tuning on a few
English examples and zero-shot evaluation on bundled target languages in
three scripts, through ``experiment_from_dict`` -> ``run_trial``; then one
small grid of the three tasks through ``alignfreeze run`` on Ray.

The numbers of a tiny model trained for seconds mean nothing; what is
checked is the shape and the bounds of every result.
"""

from __future__ import annotations

import json
import math

import pytest
import yaml

from orchestrator.experiment import experiment_from_dict
from trainables.tasks.registry import get_task

pytestmark = pytest.mark.slow

REALIGN_LANGUAGES = {"de": "deu", "ru": "rus", "zh": "cmn"}

# target languages per task: Latin, Cyrillic and Han script at least
TARGETS = {"ner": ["de", "ru", "zh"], "nli": ["de", "ru", "zh", "ar"], "qa": ["de", "ru", "zh", "hi"]}

DATA = {
    "ner": {"train": "bundled:ner/wikiann/en/train.first1000.conllu",
            "eval": {"en": "bundled:ner/wikiann/en/test.first200.conllu",
                     "de": "bundled:ner/wikiann/de/test.first200.conllu",
                     "ru": "bundled:ner/wikiann/ru/test.first200.conllu",
                     "zh": "bundled:ner/uner_pud/zh_pud-ud-test.first100.iob2"}},
    # directories: the tasks' own layouts (dev-<lang>*.tsv, xquad.<lang>*.json)
    "nli": {"train": "bundled:xnli/dev-en.first500.tsv", "eval": "bundled:xnli"},
    "qa": {"train": "bundled:qa/tydiqa_goldp_en_train.first300.json", "eval": "bundled:qa/xquad"},
}

REALIGNMENT = {
    "languages": list(REALIGN_LANGUAGES),
    "parallel": {lang: {"source": f"bundled:parallel/tatoeba/tatoeba.{code}-eng.eng.first500",
                        "target": f"bundled:parallel/tatoeba/tatoeba.{code}-eng.{code}.first500"}
                 for lang, code in REALIGN_LANGUAGES.items()},
    "dictionaries": {lang: f"bundled:dictionaries/muse/en-{lang}.first3000.txt" for lang in REALIGN_LANGUAGES},
    "steps": 4,
    "max_pairs": 64,
    "learning_rate": 2.0e-3,
    "batch_size": 16,
}

FINETUNE = {
    "epochs": 1,
    "batch_size": 16,
    "learning_rate": 2.0e-3,
    "max_train_examples": 32,
    "max_eval_examples": 20,
    "qa": {"max_length": 128, "eval_max_length": 128, "doc_stride": 32, "eval_doc_stride": 32},
}


def experiment(tasks: list[str], strategies: list[str]) -> dict:
    return {
        "name": "tasks_end_to_end",
        "models": ["tiny-mbert"],
        "tasks": tasks,
        "strategies": strategies,
        "aligners": ["dico"],
        "seeds": [1],
        "languages": {task: TARGETS[task] for task in tasks},
        "data": {task: DATA[task] for task in tasks},
        "realignment": REALIGNMENT,
        "finetune": FINETUNE,
        "resources": {"cpus": 1, "gpus": 0},
    }


def check_scores(scores: dict, metrics: tuple[str, ...], where: str) -> None:
    assert set(scores) == set(metrics), where
    for metric, value in scores.items():
        assert isinstance(value, float) and 0.0 <= value <= 1.0, f"{where} {metric}: {value!r}"


@pytest.mark.parametrize("task", ["ner", "nli", "qa"])
def test_realigned_trial_runs_end_to_end(task, tmp_path):
    from trainables.trial import run_trial

    (spec,) = experiment_from_dict(experiment([task], ["front"])).trials
    assert spec.task == task and spec.strategy == "front" and spec.aligner == "dico"

    result = run_trial(spec, checkpoint_root=tmp_path / "checkpoints", log=lambda message: None)

    metrics = get_task(task).metrics
    targets = TARGETS[task]
    assert result["status"] == "completed"
    assert result["trial_id"] == spec.trial_id
    assert list(result["metrics"]) == targets
    for language in targets:
        check_scores(result["metrics"][language], metrics, f"{task}/{language}")
    check_scores(result["english"], metrics, f"{task}/en")
    for metric in metrics:
        mean = sum(result["metrics"][language][metric] for language in targets) / len(targets)
        assert math.isclose(result["average"][metric], mean, abs_tol=1e-12)
    provenance = result["provenance"]
    assert provenance["realign_steps"] == REALIGNMENT["steps"] > 0
    assert provenance["finetune_steps"] > 0 and provenance["train_features"] > 0
    assert json.loads(json.dumps(result)) == result   # what the results directory stores


def test_cli_runs_all_three_tasks_on_ray(tmp_path):
    from orchestrator.cli import main

    raw = experiment(["ner", "nli", "qa"], ["baseline", "front"])
    path = tmp_path / "tasks.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    planned = experiment_from_dict(raw).trials
    assert len(planned) == 6
    output = tmp_path / "out"

    assert main(["run", str(path), "--output", str(output)]) == 0

    files = sorted((output / "results").glob("*.json"))
    assert sorted(f.stem for f in files) == sorted(spec.trial_id for spec in planned)
    for spec in planned:
        result = json.loads((output / "results" / f"{spec.trial_id}.json").read_text(encoding="utf-8"))
        metrics = get_task(spec.task).metrics
        assert result["spec"]["task"] == spec.task
        assert result["spec"]["strategy"] == spec.strategy
        assert result["spec"]["languages"] == TARGETS[spec.task]
        assert sorted(result["metrics"]) == sorted(TARGETS[spec.task])   # the file's keys are sorted
        for language, scores in result["metrics"].items():
            check_scores(scores, metrics, f"{spec.trial_id}/{language}")
        check_scores(result["english"], metrics, f"{spec.trial_id}/en")
        assert (result["provenance"]["realign_steps"] > 0) == (spec.strategy == "front")
