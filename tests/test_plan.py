"""``alignfreeze plan``: counts, steps, hours and disk of a grid before it runs.

The small experiment reads bundled files, so every figure can be worked
out by hand (below, next to each assertion); the paper preset checks the
counts at the real size from the table of Hub split sizes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.model_costs import (estimated_throughput, evaluation_seq_per_s, load_throughput_file,
                                      model_shape)
from orchestrator.plan import build_plan
from trainables.checkpoint_policy import CheckpointPolicy
from trainables.errors import DataError

UD = "bundled:ud/"
XNLI = "bundled:xnli/"


def small_experiment(steps="auto") -> dict:
    """tiny mBERT, PoS and NLI on bundled files, baseline/full/front, 2 seeds."""
    return {
        "name": "small",
        "models": ["tiny-mbert"],
        "tasks": ["pos", "nli"],
        "strategies": ["baseline", "full", "front"],
        "aligners": ["dico"],
        "seeds": [1, 2],
        "languages": ["de", "fr"],
        "data": {
            "pos": {"train": UD + "en_ewt-ud-dev.first200.conllu",
                    "eval": {"en": UD + "en_ewt-ud-test.first100.conllu", "de": UD + "de_gsd-ud-test.first100.conllu",
                             "fr": UD + "fr_gsd-ud-test.first100.conllu"}},
            "nli": {"train": XNLI + "dev-en.first500.tsv",
                    "eval": {"en": XNLI + "dev-en.first500.tsv", "de": XNLI + "dev-de.first100.tsv",
                             "fr": XNLI + "dev-fr.first100.tsv"}},
        },
        "realignment": {
            "languages": ["de", "fr"],
            "parallel": {lang: {"source": f"bundled:parallel/tatoeba/tatoeba.{code}-eng.eng.first500",
                                "target": f"bundled:parallel/tatoeba/tatoeba.{code}-eng.{code}.first500"}
                         for lang, code in (("de", "deu"), ("fr", "fra"))},
            "dictionaries": {lang: f"bundled:dictionaries/muse/en-{lang}.first3000.txt" for lang in ("de", "fr")},
            "steps": steps,
            "batch_size": 16,
        },
        "finetune": {"batch_size": 16, "epochs": 2, "max_train_examples": 50, "max_eval_examples": 20,
                     "nli": {"batch_size": 32, "epochs": 1, "max_train_examples": 70}},
    }


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def throughput_file(tmp_path) -> Path:
    return write_yaml(tmp_path / "throughput.yaml",
                      {"tiny-mbert": {"finetune_seq_per_s": 10, "realign_pairs_per_s": 2}})


def load(path: Path):
    from orchestrator.experiment import load_experiment_file

    return load_experiment_file(path)


# ------------------------------------------------------------- a small grid by hand
def test_small_grid_steps_hours_and_disk_by_hand(tmp_path, throughput_file):
    experiment = load(write_yaml(tmp_path / "small.yaml", small_experiment()))
    plan = build_plan(experiment, load_throughput_file(throughput_file))

    # 2 tasks x 3 strategies x 2 seeds; 8 realign (full, front)
    assert len(plan.trials) == 12
    assert sum(1 for t in plan.trials if t.realign_steps) == 8
    sizes = {s.task: s for s in plan.sizes}
    # PoS: 50 sentences (max_train_examples), none longer than a window; ceil(50 / 16) = 4 a epoch, x 2
    assert (sizes["pos"].examples, sizes["pos"].sequences, sizes["pos"].steps) == (50, 50, 8)
    # NLI: 70 pairs, batch 32, 1 epoch: ceil(70 / 32) = 3
    assert (sizes["nli"].examples, sizes["nli"].sequences, sizes["nli"].steps) == (70, 70, 3)
    assert {s.how for s in plan.sizes} == {"counted"}
    for trial in plan.trials:
        assert trial.finetune_steps == {"pos": 8, "nli": 3}[trial.task]
        assert trial.realign_steps == (trial.finetune_steps if trial.strategy != "baseline" else 0)
        # 20 test examples (max_eval_examples) in en, de, fr
        assert trial.eval_sequences == 60
    # steps: auto: PoS (8 steps) and NLI (3) never share: 2 strategies x 2 seeds x 2 tasks
    assert len(plan.realignments) == 8
    assert all(r.trials == 1 for r in plan.realignments)

    (model,) = plan.models
    assert model.throughput.source == "measured (throughput.yaml)"
    # fine-tuning: 6 PoS trials x 50 x 2 / 10 s + 6 NLI trials x 70 x 1 / 10 s = 102 s
    assert model.finetune_h * 3600 == pytest.approx(102)
    # realignment: 4 x (8 steps x 16 pairs / 2) + 4 x (3 x 16 / 2) = 352 s
    assert model.realign_h * 3600 == pytest.approx(352)
    shape = model_shape("tiny-mbert")
    eval_s = sum(60 / evaluation_seq_per_s(model.throughput, shape, length) * 6 for length in (128, 256))
    assert model.eval_h * 3600 == pytest.approx(eval_s)

    # a fixed budget: the mean of the auto steps, (4 x 8 + 4 x 3) / 8 = 5.5 -> 6; one per strategy and seed
    assert (plan.budget.steps, plan.budget.realignments) == (6, 4)
    assert plan.budget.realign_h * 3600 == pytest.approx(4 * 6 * 16 / 2)
    assert plan.budget.current_realignments == 8

    # disk: 8 encoders in the cache (no pooler), 12 checkpoints of weights + 2 Adam moments
    assert plan.disk.cache_bytes == 8 * shape.stored_parameters * 4
    assert plan.disk.checkpoint_bytes == 0     # checkpoint.keep: none, removed as each result is written
    assert plan.disk.largest_checkpoint_bytes == 3 * shape.parameters * 4
    for keep, kept in (("final", 12 * shape.parameters * 4), ("all", 12 * 3 * shape.parameters * 4)):
        policy = CheckpointPolicy(keep=keep)
        assert build_plan(dataclasses.replace(experiment, checkpoint=policy),
                          load_throughput_file(throughput_file)).disk.checkpoint_bytes == kept
    assert shape.stored_parameters < shape.parameters    # tiny mBERT has a pooler, not stored


def test_a_fixed_budget_is_shared_by_the_tasks(tmp_path, throughput_file):
    experiment = load(write_yaml(tmp_path / "small.yaml", small_experiment(steps=5)))
    plan = build_plan(experiment, load_throughput_file(throughput_file))
    # one realignment per (strategy, seed), each used by the PoS and the NLI trial
    assert len(plan.realignments) == 4
    assert sorted(r.trials for r in plan.realignments) == [2, 2, 2, 2]
    assert {t.realign_steps for t in plan.trials if t.strategy != "baseline"} == {5}
    assert plan.models[0].realign_h * 3600 == pytest.approx(4 * 5 * 16 / 2)
    assert plan.budget is None                      # nothing to compare without --steps
    asked = build_plan(experiment, load_throughput_file(throughput_file), fixed_steps=10)
    assert (asked.budget.steps, asked.budget.realignments, asked.budget.current_realignments) == (10, 4, 4)


def test_plan_steps_are_the_trials_own(tmp_path):
    """What plan counts is what a trial batches, QA windows included (the trial's own setup)."""
    from trainables.trial import TrialRunner

    data = small_experiment()
    data["tasks"] = ["pos", "qa"]
    data["strategies"] = ["baseline"]
    data["seeds"] = [1]
    data["languages"] = ["de"]
    data["data"]["qa"] = {"train": "bundled:qa/tydiqa_goldp_en_train.first300.json",
                          "eval": {"en": "bundled:qa/xquad/xquad.en.first2articles.json",
                                   "de": "bundled:qa/xquad/xquad.de.first2articles.json"}}
    data["data"]["pos"]["eval"].pop("fr")
    data["finetune"]["qa"] = {"max_train_examples": 40}
    experiment = load(write_yaml(tmp_path / "qa.yaml", data))
    plan = build_plan(experiment)
    by_task = {t.task: t for t in plan.trials}
    qa = next(s for s in plan.sizes if s.task == "qa")
    assert qa.examples == 40 and qa.sequences > qa.examples    # several windows of 96 a question
    for spec in experiment.trials:
        runner = TrialRunner(spec, log=lambda _: None)
        runner._setup()
        assert by_task[spec.task].finetune_steps == runner.finetune_steps


# ------------------------------------------------------------------ the paper's grid
@pytest.fixture(scope="module")
def paper():
    from orchestrator.experiment import load_experiment_file
    from search_spaces import preset_path

    return load_experiment_file(preset_path("paper"))


def test_paper_plan_with_steps_auto(paper):
    plan = build_plan(paper)
    assert len(plan.trials) == 240
    assert sum(1 for t in plan.trials if t.realign_steps) == 180
    # steps: auto: every (model, task, strategy, seed) realigns for itself
    assert len(plan.realignments) == 180
    steps = {s.task: s.steps for s in plan.sizes}
    # ceil(12,543 / 32) x 5; ceil(20,000 / 32) x 5; ceil(392,702 / 32) x 2; ceil(87,599 x 2.73 / 32) x 5
    assert steps == {"pos": 392 * 5, "ner": 625 * 5, "nli": 12_272 * 2, "qa": 7_474 * 5}
    assert {s.how for s in plan.sizes} == {"Hub table"}
    # a fixed budget of the mean of the auto steps shares one per (model, strategy, seed): 3 x 3 x 5
    assert plan.budget.steps == round((1_960 + 3_125 + 24_544 + 37_370) / 4)
    assert plan.budget.realignments == 45
    assert plan.budget.realign_h < plan.budget.current_realign_h
    assert [m.throughput.source for m in plan.models] == ["estimate"] * 3


def test_paper_plan_with_a_fixed_budget(paper):
    fixed = dataclasses.replace(paper, trials=[
        dataclasses.replace(t, realignment={**t.realignment, "steps": 10_000}) if t.realigns else t
        for t in paper.trials])
    plan = build_plan(fixed)
    assert len(plan.trials) == 240
    assert len(plan.realignments) == 45
    assert sorted({r.trials for r in plan.realignments}) == [4]      # the four tasks share each
    assert {t.realign_steps for t in plan.trials if t.realign_steps} == {10_000}
    assert plan.steps_setting == ["10000"]


# --------------------------------------------------------------------- the command
def test_cli_prints_the_plan_and_json(tmp_path, throughput_file, capsys):
    path = write_yaml(tmp_path / "small.yaml", small_experiment())
    assert main(["plan", str(path), "--throughput", str(throughput_file)]) == 0
    text = capsys.readouterr().out
    assert "trials: 12 (4 fine-tuning only, 8 realigned: before)" in text
    assert "realignments: 8 distinct for 8 trials" in text
    assert "measured (throughput.yaml)" in text
    assert main(["plan", str(path), "--json", "--steps", "5"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["trials"] == 12 and data["totals"]["realignments"] == 8
    assert data["budget"]["steps"] == 5 and data["budget"]["why"] == "--steps"
    assert {s["task"]: s["steps"] for s in data["sizes"]} == {"pos": 8, "nli": 3}


def test_unknown_hub_split_size_is_one_line(tmp_path, capsys):
    data = small_experiment()
    data["tasks"] = ["ner"]
    data["languages"] = ["de"]
    data["data"] = {"ner": {"train": "hub:someone/other-ner",
                            "eval": {"en": "bundled:ner/wikiann/en/test.first200.conllu",
                                     "de": "bundled:ner/wikiann/de/test.first200.conllu"}}}
    assert main(["plan", str(write_yaml(tmp_path / "ner.yaml", data))]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "someone/other-ner [en] train" in error and "dataset_sizes.py" in error


# ----------------------------------------------------------------- --throughput
def test_throughput_file_json_and_yaml(tmp_path):
    figures = {"xlm-roberta-base": {"finetune_seq_per_s": 210.5, "realign_pairs_per_s": 99}}
    as_json = tmp_path / "t.json"
    as_json.write_text(json.dumps(figures), encoding="utf-8")
    for path in (as_json, write_yaml(tmp_path / "t.yml", figures)):
        (loaded,) = load_throughput_file(path).items()
        assert loaded[0] == "xlm-roberta-base"
        assert (loaded[1].finetune_seq_per_s, loaded[1].realign_pairs_per_s) == (210.5, 99.0)
        assert loaded[1].source == f"measured ({path.name})"


@pytest.mark.parametrize("name, text, message", [
    ("t.json", '{"m": {"finetune_seq_per_s": 1,\n "realign_pairs_per_s": }}', "t.json:2: invalid JSON"),
    ("t.yaml", "m: [1, 2", "t.yaml:2: invalid YAML"),     # libyaml: the end of the file
    ("t.yaml", "- 1\n- 2\n", "expected a mapping of model"),
    ("t.yaml", "m: 3\n", "model 'm': expected a mapping"),
    ("t.yaml", "m: {finetune_seq_per_s: 1}\n", "model 'm': realign_pairs_per_s is missing"),
    ("t.yaml", "m: {finetune_seq_per_s: 1, realign_pairs_per_s: 1, batch: 3}\n", "unknown key 'batch'"),
    ("t.yaml", "m: {finetune_seq_per_s: 0, realign_pairs_per_s: 1}\n", "finetune_seq_per_s must be a positive"),
    ("t.yaml", "m: {finetune_seq_per_s: 1, realign_pairs_per_s: yes}\n", "realign_pairs_per_s must be a positive"),
    ("t.yaml", "m: {finetune_seq_per_s: .nan, realign_pairs_per_s: 1}\n", "finetune_seq_per_s must be a positive"),
])
def test_bad_throughput_file_is_one_line_exit_2(tmp_path, capsys, name, text, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError):
        load_throughput_file(path)
    experiment = write_yaml(tmp_path / "small.yaml", small_experiment())
    assert main(["plan", str(experiment), "--throughput", str(path)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and message in error and str(path.parent) in error


def test_missing_throughput_file(tmp_path, capsys):
    experiment = write_yaml(tmp_path / "small.yaml", small_experiment())
    assert main(["plan", str(experiment), "--throughput", str(tmp_path / "none.json")]) == 2
    assert "none.json: throughput file not found" in capsys.readouterr().err


# ------------------------------------------------------------------ the estimates
def test_estimated_throughput_follows_the_flops():
    """DistilmBERT (6 blocks) trains twice as fast as mBERT (12) by the estimate; a pair costs two sequences."""
    mbert, distil = model_shape("bert-base-multilingual-cased"), model_shape("distilbert-base-multilingual-cased")
    assert estimated_throughput(distil).finetune_seq_per_s == pytest.approx(
        2 * estimated_throughput(mbert).finetune_seq_per_s)
    for shape in (mbert, distil):
        figures = estimated_throughput(shape)
        assert figures.realign_pairs_per_s == pytest.approx(figures.finetune_seq_per_s / 2)


def test_paper_model_shapes_match_their_configs():
    """The table's parameter counts are those of models built from the paper's configs (no weights)."""
    import torch
    from transformers import AutoModel, BertConfig, DistilBertConfig, XLMRobertaConfig

    configs = {"bert-base-multilingual-cased": BertConfig(vocab_size=119_547),
               "distilbert-base-multilingual-cased": DistilBertConfig(vocab_size=119_547),
               "xlm-roberta-base": XLMRobertaConfig(vocab_size=250_002, max_position_embeddings=514,
                                                    type_vocab_size=1)}
    for name, config in configs.items():
        with torch.device("meta"):
            model = AutoModel.from_config(config)
        named = dict(model.named_parameters())
        shape = model_shape(name)
        assert shape.parameters == sum(p.numel() for p in named.values())
        assert shape.stored_parameters == sum(p.numel() for n, p in named.items() if not n.startswith("pooler."))
        assert shape.block_parameters == sum(p.numel() for n, p in named.items()
                                             if n.startswith(("encoder.layer.", "transformer.layer.")))
