"""Validation data (``data.<task>.validation``): parsed, preflighted, planned, keyed, scored.

A depth search selects on held-out data, so every trial can score a
validation split beside the test split. These tests check the boundary
(one-line errors), that trials without validation data keep their IDs, the
files each task finds for the split, the Hub datasets it resolves to (no
Hub access here: by construction), and one tiny trial end to end whose
validation data are its test files, so that both scores must agree.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.data_plan import data_plan
from orchestrator.experiment import experiment_from_dict
from trainables.bundled import bundled_path
from trainables.errors import DataError, SpecError
from trainables.ray_trainable import RESULT_KEY, flat_metrics
from trainables.tasks import nli, ner, pos, qa
from trainables.tasks.registry import get_task
from trainables.trial import run_trial, validation_result

from trial_fixtures import small_nli_experiment, small_pos_experiment

UD = "bundled:ud/"
FR_TEST = UD + "fr_gsd-ud-test.first100.conllu"
EN_TEST = UD + "en_ewt-ud-test.first100.conllu"


def with_validation(raw: dict, task: str, validation) -> dict:
    raw = copy.deepcopy(raw)
    raw["data"][task]["validation"] = validation
    return raw


def baseline_pos(**validation) -> dict:
    raw = small_pos_experiment(strategies=["baseline"])
    return with_validation(raw, "pos", validation) if validation else raw


# ------------------------------------------------------------------ parsing and identity

def test_validation_is_kept_for_the_languages_the_trials_score():
    # targets fr, ru: English and fr kept, de (a target of no trial here) left out
    [spec] = experiment_from_dict(baseline_pos(en=EN_TEST, fr=FR_TEST, de=UD + "de_gsd-ud-test.first100.conllu")).trials
    assert spec.data["validation"] == {"en": str(bundled_path("ud/en_ewt-ud-test.first100.conllu")),
                                       "fr": str(bundled_path("ud/fr_gsd-ud-test.first100.conllu"))}
    # one source for all: English and every target
    raw = with_validation(small_nli_experiment(strategies=["baseline"]), "nli", "bundled:xnli")
    [spec] = experiment_from_dict(raw).trials
    assert spec.data["validation"] == {language: str(bundled_path("xnli")) for language in ("en", "fr", "ru")}


def test_trials_without_validation_keep_their_ids():
    # the keys these trials had before validation data existed (IDENTITY_FORMAT 2); a change
    # here renames every stored result: bump IDENTITY_FORMAT instead, on purpose
    trials = experiment_from_dict(small_pos_experiment(strategies=["baseline", "front:2"])).trials
    assert [t.key for t in trials] == ["d073d1e60caf9acd", "4d457b3d140b6aa3"]
    # validation data only for a language no trial scores changes nothing either
    unused = experiment_from_dict(with_validation(small_pos_experiment(strategies=["baseline", "front:2"]),
                                                  "pos", {"de": FR_TEST})).trials
    assert [t.key for t in unused] == [t.key for t in trials]
    # validation data make the trial compute more: another key, and one per content
    validated = experiment_from_dict(with_validation(small_pos_experiment(strategies=["baseline", "front:2"]),
                                                     "pos", {"fr": FR_TEST})).trials
    assert {t.key for t in validated}.isdisjoint(t.key for t in trials)
    other = experiment_from_dict(with_validation(small_pos_experiment(strategies=["baseline", "front:2"]),
                                                 "pos", {"fr": UD + "de_gsd-ud-test.first100.conllu"})).trials
    assert {t.key for t in other}.isdisjoint(t.key for t in validated)


def run_dry(tmp_path: Path, capsys, raw: dict) -> tuple[int, str]:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    code = main(["run", str(path), "--output", str(tmp_path / "out"), "--dry-run"])
    captured = capsys.readouterr()
    return code, captured.err


def one_line_error(tmp_path: Path, capsys, raw: dict) -> str:
    code, err = run_dry(tmp_path, capsys, raw)
    lines = err.splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("alignfreeze: error: "), err
    return lines[0]


def test_a_missing_validation_file_is_one_line_naming_it(tmp_path, capsys):
    missing = tmp_path / "fr-dev.conllu"
    line = one_line_error(tmp_path, capsys, baseline_pos(fr=str(missing)))
    assert str(missing) in line and "not found" in line


def test_a_malformed_validation_file_is_one_line_with_file_and_line(tmp_path, capsys):
    bad = tmp_path / "fr-dev.conllu"
    bad.write_text("1\tBonjour\tbonjour\tINTJ\t_\t_\t0\troot\t_\t_\n2\tbad\n\n", encoding="utf-8")
    line = one_line_error(tmp_path, capsys, baseline_pos(fr=str(bad)))
    assert f"{bad}:2" in line and "10 tab-separated columns" in line


def test_an_unknown_validation_language_is_refused_like_in_eval(tmp_path, capsys):
    line = one_line_error(tmp_path, capsys, baseline_pos(xx=FR_TEST))
    assert "language in data.pos.validation" in line and "'xx'" in line


def test_an_unknown_data_key_names_validation_among_the_known_ones(tmp_path, capsys):
    raw = small_pos_experiment(strategies=["baseline"])
    raw["data"]["pos"]["valid"] = FR_TEST
    line = one_line_error(tmp_path, capsys, raw)
    assert "'valid'" in line and "validation" in line


def test_the_dry_run_lists_the_validation_files(tmp_path, capsys):
    code, err = run_dry(tmp_path, capsys, baseline_pos(fr=FR_TEST))
    assert code == 0
    assert f"{bundled_path('ud/fr_gsd-ud-test.first100.conllu')}: pos test (fr), pos validation (fr)" in err


def test_validation_examples_that_are_test_examples_are_warned_about(caplog):
    with caplog.at_level(logging.WARNING, logger="orchestrator.preflight"):
        experiment_from_dict(baseline_pos(fr=FR_TEST))
    [record] = [r for r in caplog.records if "validation data" in r.getMessage()]
    assert "pos validation data of 'fr'" in record.getMessage() and "20 of its 20 examples" in record.getMessage()
    # the carved slices are disjoint: no warning
    caplog.clear()
    raw = baseline_pos(fr=UD + "dev_split/fr_gsd-ud-test.sent1-20.conllu")
    raw["data"]["pos"]["eval"]["fr"] = UD + "dev_split/fr_gsd-ud-test.sent21-100.conllu"
    with caplog.at_level(logging.WARNING, logger="orchestrator.preflight"):
        experiment_from_dict(raw)
    assert not [r for r in caplog.records if "validation data" in r.getMessage()]


# ------------------------------------------------------------------ the Hub, by construction

def test_hub_validation_splits_of_each_task():
    plan = data_plan(experiment_from_dict({
        "models": ["tiny-mbert"], "tasks": ["ner", "nli", "qa"], "seeds": [1], "languages": ["de", "ar"],
        "data": {task: {"train": "hub", "eval": "hub", "validation": "hub"} for task in ("ner", "nli", "qa")},
    }).trials)
    fetched = {(need.dataset_id, need.config, need.split) for need in plan.fetched}
    assert {("unimelb-nlp/wikiann", "de", "validation"), ("unimelb-nlp/wikiann", "en", "validation"),
            ("facebook/xnli", "ar", "validation"), ("facebook/xnli", "en", "validation"),
            ("google/xtreme", "MLQA.de.de", "validation"), ("google/xtreme", "MLQA.ar.ar", "validation"),
            ("google/xtreme", "MLQA.en.en", "validation")} <= fetched
    # the test sets stay where they were: XQuAD's one split, WikiANN and XNLI test
    assert {("google/xquad", "xquad.de", "validation"), ("unimelb-nlp/wikiann", "de", "test"),
            ("facebook/xnli", "de", "test")} <= fetched


def test_qa_validation_in_a_language_mlqa_lacks_is_one_line(tmp_path, capsys):
    raw = {"models": ["tiny-mbert"], "tasks": ["qa"], "seeds": [1], "languages": ["de", "ru"],
           "data": {"qa": {"train": "hub", "eval": "hub", "validation": "hub"}}}
    line = one_line_error(tmp_path, capsys, raw)
    assert "MLQA has no 'ru' data" in line and "data.qa.validation.ru" in line
    # a local file for the language MLQA lacks is fine
    raw["data"]["qa"]["validation"] = {"de": "hub", "ru": "bundled:qa/xquad/xquad.ru.first2articles.json"}
    [spec] = experiment_from_dict(raw).trials
    assert spec.data["validation"]["de"] == "hub"


def test_qa_hub_validation_never_reads_xquad_and_mlqa_keeps_its_test_split():
    assert qa.hub_dataset("hub", "de", "validation") == ("google/xtreme", "MLQA.de.de", "validation")
    assert qa.hub_dataset("hub:facebook/mlqa", "zh", "validation") == ("facebook/mlqa", "mlqa.zh.zh", "validation")
    assert qa.hub_dataset("hub:facebook/mlqa", "zh", "test") == ("facebook/mlqa", "mlqa.zh.zh", "test")
    assert qa.hub_dataset("hub", "de", "test") == ("google/xquad", "xquad.de", "validation")
    with pytest.raises(SpecError, match="XQuAD's only split is the test set"):
        qa.hub_dataset("hub:google/xquad", "de", "validation")
    with pytest.raises(SpecError, match="MLQA has no 'th' data"):
        qa.hub_dataset("hub:facebook/mlqa", "th", "validation")


def test_pos_hub_validation_is_the_treebank_dev_set_and_pud_has_none():
    assert pos.hub_dataset("hub:universal_dependencies", "fr", "validation") == (
        "universal_dependencies", "fr_gsd", "validation")
    # fi's paper treebank is PUD (test only): validation from its main treebank
    assert pos.hub_dataset("hub:universal_dependencies", "fi", "validation")[1] == "fi_tdt"
    assert pos.hub_dataset("hub:universal_dependencies", "fi", "test")[1] == "fi_pud"
    with pytest.raises(SpecError, match="th_pud has only a test set"):
        pos.hub_dataset("hub:universal_dependencies", "th", "validation")
    with pytest.raises(SpecError, match="ru_pud has only a test set"):
        pos.hub_dataset("hub:universal_dependencies:ru_pud", "ru", "validation")


def test_ner_and_nli_hub_validation_splits():
    assert ner.hub_dataset("hub", "de", "validation") == ("unimelb-nlp/wikiann", "de", "validation")
    assert nli.hub_dataset("hub", "en", "validation") == ("facebook/xnli", "en", "validation")


# ------------------------------------------------------------------ local directories

def copy_file(relative: str, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(bundled_path(relative).read_bytes())
    return target


def test_directories_give_their_dev_files_to_validation(tmp_path):
    ud = tmp_path / "UD_French-GSD"
    copy_file("ud/dev_split/fr_gsd-ud-test.sent1-20.conllu", ud / "fr_gsd-ud-dev.conllu")
    copy_file("ud/dev_split/fr_gsd-ud-test.sent21-100.conllu", ud / "fr_gsd-ud-test.conllu")
    task = get_task("pos").load()
    assert len(task.load_examples(str(ud), "fr", "validation")) == 20
    assert len(task.load_examples(str(ud), "fr", "test")) == 80

    wikiann = tmp_path / "wikiann"
    copy_file("ner/wikiann/en/val.first200.conllu", wikiann / "en" / "val.first200.conllu")
    copy_file("ner/wikiann/en/test.first200.conllu", wikiann / "en" / "test.first200.conllu")
    task = get_task("ner").load()
    assert task.load_examples(str(wikiann), "en", "validation") == task.load_examples(
        str(bundled_path("ner/wikiann/en/val.first200.conllu")), "en", "test")
    uner = tmp_path / "uner"
    copy_file("ner/uner_pud/de_pud-ud-test.first100.iob2", uner / "de_gsd-ud-dev.iob2")
    assert len(task.load_examples(str(uner), "de", "validation")) == 100

    xnli = tmp_path / "xnli"
    copy_file("xnli/dev-de.first100.tsv", xnli / "dev-de.tsv")
    assert len(get_task("nli").load().load_examples(str(xnli), "de", "validation")) == 100


def test_qa_validation_reads_mlqa_dev_files_never_xquad(tmp_path):
    task = get_task("qa").load()
    xquad = tmp_path / "qa"
    copy_file("qa/xquad/xquad.de.first2articles.json", xquad / "xquad.de.first2articles.json")
    with pytest.raises(DataError, match="split 'validation'"):
        task.load_examples(str(xquad), "de", "validation")
    copy_file("qa/xquad/xquad.de.first2articles.json", xquad / "dev-context-de-question-de.json")
    assert len(task.load_examples(str(xquad), "de", "validation")) == len(
        task.load_examples(str(xquad), "de", "test"))


def test_chinese_ner_validation_is_resegmented_like_the_test_data(tmp_path):
    from trainables.tasks.base import FinetuneSettings

    text = "".join(f"{i}\t{c}\t{t}\n" for i, (c, t) in enumerate(zip("我爱北京", ["O", "O", "B-LOC", "I-LOC"])))
    (tmp_path / "zh").mkdir()
    (tmp_path / "zh" / "val.txt").write_text(text, encoding="utf-8")
    jieba = FinetuneSettings(extra={"zh_segmentation": "jieba"})
    task = get_task("ner").load()
    assert task.evaluation_examples(str(tmp_path), "zh", jieba, "validation")[0].words == ("我", "爱", "北京")
    with pytest.raises(DataError, match="split 'test'"):
        task.evaluation_examples(str(tmp_path), "zh", jieba)


def test_a_directory_without_validation_files_names_what_it_looked_for(tmp_path):
    with pytest.raises(DataError, match=r"\*-ud-dev\.conllu"):
        get_task("pos").load().load_examples(str(tmp_path), "fr", "validation")


# ------------------------------------------------------------------ results

def test_result_keys_without_and_with_validation():
    assert validation_result({}, ("fr", "ru"), ("accuracy",)) == {}
    scores = {"en": {"accuracy": 0.9}, "ru": {"accuracy": 0.2}, "fr": {"accuracy": 0.5}}
    assert validation_result(scores, ("ru", "fr"), ("accuracy",)) == {
        "validation": {"fr": {"accuracy": 0.5}, "ru": {"accuracy": 0.2}},
        "validation_average": {"accuracy": pytest.approx(0.35)},
        "validation_languages": ["fr", "ru"],
        "english_validation": {"accuracy": 0.9}}
    # English alone: no target average, English kept
    assert validation_result({"en": {"accuracy": 0.9}}, ("fr",), ("accuracy",)) == {
        "english_validation": {"accuracy": 0.9}}


def test_flat_metrics_carry_the_validation_scores():
    result = {"metrics": {"fr": {"accuracy": 0.5}}, "average": {"accuracy": 0.5}, "english": {"accuracy": 0.9},
              "validation": {"fr": {"accuracy": 0.4}}, "validation_average": {"accuracy": 0.4},
              "validation_languages": ["fr"], "english_validation": {"accuracy": 0.8}}
    flat = flat_metrics(result)
    assert {k: v for k, v in flat.items() if k.startswith("val_")} == {
        "val_fr_accuracy": 0.4, "val_avg_accuracy": 0.4, "val_en_accuracy": 0.8}
    assert json.loads(flat[RESULT_KEY])["validation_languages"] == ["fr"]
    plain = {k: v for k, v in result.items() if not k.startswith(("validation", "english_validation"))}
    assert not any(k.startswith("val_") for k in flat_metrics(plain))


@pytest.mark.slow
def test_a_trial_scores_its_validation_data_beside_the_test_data():
    # validation = the test files of en and fr (ru has none): the same scores, ru left out
    raw = baseline_pos(en=EN_TEST, fr=FR_TEST)
    [spec] = experiment_from_dict(raw).trials
    result = run_trial(spec, log=lambda _: None)
    assert result["validation"] == {"fr": result["metrics"]["fr"]}
    assert result["validation_languages"] == ["fr"]
    assert result["validation_average"] == result["metrics"]["fr"]
    assert result["english_validation"] == result["english"]
    assert "validate_s" in result["provenance"]["timings"]
