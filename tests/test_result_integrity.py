"""Nothing wrong is ever recorded: result files are valid JSON, damaged ones rerun, empty scoring sets are refused.

A NaN metric (nothing to score) fails the trial instead of being saved
as ``"accuracy": NaN``; a truncated or incomplete ``results/*.json`` is
moved aside with a warning and its trial runs again; an evaluation or
training file without one annotated word is refused by the dry run's
preflight, in one line, before anything is written.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from orchestrator import results as results_dir
from orchestrator.cli import main
from orchestrator.runner import TrialSession
from orchestrator.status import run_status
from trainables.artifacts import atomic_write_json
from trainables.bundled import bundled_path
from trainables.errors import DataError
from trainables.tasks.base import FinetuneSettings
from trainables.tasks.registry import get_task
from trainables.tasks.token_classification import TaggedSentence
from trial_fixtures import small_pos_experiment

TRAIN_CONLLU = "ud/en_ewt-ud-dev.first200.conllu"
PREFIX = "alignfreeze: error: "


def planned(trial_id: str) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, to_dict=lambda: {"model": "m", "task": "pos"})


def result(trial_id: str, accuracy: float = 0.5) -> dict:
    return {"trial_id": trial_id, "status": "completed", "spec": {"model": "m", "task": "pos"},
            "metrics": {"fr": {"accuracy": accuracy}}, "average": {"accuracy": accuracy}}


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(PREFIX), lines[0]
    return lines[0][len(PREFIX):]


# ------------------------------------------------------------- valid JSON only

@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_number_is_never_written_as_json(tmp_path, value):
    path = tmp_path / "r.json"
    with pytest.raises(ValueError, match=r"r\.json: not written: metrics\.fr\.accuracy \((nan|inf|-inf)\) "
                                         r"is not a finite number"):
        atomic_write_json(path, {"metrics": {"fr": {"accuracy": value}}})
    assert list(tmp_path.iterdir()) == []     # no file, no temporary left behind


def test_a_nan_result_is_recorded_as_an_error_not_as_done(tmp_path, capsys):
    results_dir.write_manifest(tmp_path, "grid", [planned("t1")])
    written = results_dir.write_result(tmp_path, result("t1", math.nan))
    assert written == tmp_path / "errors" / "t1.json"
    assert not (tmp_path / "results" / "t1.json").exists()
    assert results_dir.completed_ids(tmp_path) == set()
    error = json.loads(written.read_text(encoding="utf-8"))["error"]
    assert error == ("result not recorded: metrics.fr.accuracy (nan), average.accuracy (nan) are not finite "
                     "numbers (nothing to score, or a diverged trial)")
    assert "WARNING: t1: result not recorded" in capsys.readouterr().err


def test_a_finite_result_is_written_and_counts_as_done(tmp_path):
    results_dir.write_result(tmp_path, result("t1"))
    assert results_dir.completed_ids(tmp_path) == {"t1"}
    assert results_dir.read_results(tmp_path) == [result("t1")]


def test_an_evaluation_with_nothing_to_score_fails_instead_of_returning_nan(train_and_evaluate):
    task = get_task("pos").load()
    train = [TaggedSentence(("The", "cat", "sleeps"), ("DET", "NOUN", "VERB"))]
    unannotated = [TaggedSentence(("Le", "chat", "dort"), ("", "", ""))]
    settings = FinetuneSettings(batch_size=2, max_length=16, eval_max_length=16, eval_batch_size=2)
    with pytest.raises(DataError, match=r"^nothing to score: no annotated word in 1 evaluation sentence\(s\), "
                                        r"so accuracy is undefined$"):
        train_and_evaluate(task, train, unannotated, settings)


# ------------------------------------------------------- damaged results rerun

DAMAGED = {
    "truncated": ('{\n  "trial_id": "t1",\n  "metrics": {"fr": {"accu', "not valid JSON"),
    "nan": ('{"trial_id": "t1", "metrics": {"fr": {"accuracy": NaN}}, "average": {"accuracy": NaN}}',
            "not valid JSON (NaN is not JSON"),
    "no metrics": ('{"trial_id": "t1", "average": {"accuracy": 0.5}}', "no 'metrics'"),
    "no average": ('{"trial_id": "t1", "metrics": {}}', "no 'average'"),
    "a list": ('[1, 2]', "not a JSON object"),
    "another trial": ('{"trial_id": "t9", "metrics": {}, "average": {}}', "holds trial 't9', not 't1'"),
    "empty": ("", "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_result_is_moved_aside_and_its_trial_runs_again(tmp_path, capsys, case):
    text, problem = DAMAGED[case]
    results_dir.write_manifest(tmp_path, "grid", [planned("t0"), planned("t1")])
    results_dir.write_result(tmp_path, result("t0"))
    (tmp_path / "results" / "t1.json").write_text(text, encoding="utf-8")
    assert results_dir.completed_ids(tmp_path) == {"t0"}
    damaged = tmp_path / "results" / "t1.json.damaged"
    assert not (tmp_path / "results" / "t1.json").exists() and damaged.read_text(encoding="utf-8") == text
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"[alignfreeze] WARNING: {tmp_path / 'results' / 't1.json'} is damaged ({problem}")
    assert line.endswith(": moved to t1.json.damaged, the trial runs again")
    assert results_dir.completed_ids(tmp_path) == {"t0"} and capsys.readouterr().err == ""


def test_a_second_damaged_result_does_not_overwrite_the_first(tmp_path, capsys):
    for text in ("{", "[]"):
        (tmp_path / "results").mkdir(exist_ok=True)
        (tmp_path / "results" / "t1.json").write_text(text, encoding="utf-8")
        assert results_dir.completed_ids(tmp_path) == set()
    assert (tmp_path / "results" / "t1.json.damaged").read_text() == "{"
    assert (tmp_path / "results" / "t1.json.damaged.1").read_text() == "[]"


def test_the_runner_runs_the_trial_whose_result_is_damaged(tmp_path, capsys):
    results_dir.write_manifest(tmp_path, "grid", [planned("t0"), planned("t1")])
    results_dir.write_result(tmp_path, result("t0"))
    results_dir.write_result(tmp_path, result("t1"))
    path = tmp_path / "results" / "t1.json"
    path.write_text(path.read_text(encoding="utf-8")[:40], encoding="utf-8")   # a write cut short
    session = TrialSession(tmp_path, {}, {})
    session._fit = lambda fit, **_: {"errors": 0, "errored": []}   # Ray Tune runs nothing
    summary = session.run([planned("t0"), planned("t1")])
    assert (summary["already_done"], summary["ran"], summary["missing"]) == (1, 1, ["t1"])
    assert (tmp_path / "results" / "t1.json.damaged").is_file()


def test_status_names_a_damaged_result_without_moving_it(tmp_path, capsys):
    results_dir.write_manifest(tmp_path, "grid", [planned("t0"), planned("t1")])
    results_dir.write_result(tmp_path, result("t0"))
    (tmp_path / "results" / "t1.json").write_text('{"trial_id": "t1", "metr', encoding="utf-8")
    status = run_status(tmp_path)
    assert status["counts"]["done"] == 1 and status["counts"]["not started"] == 1
    assert main(["status", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    warnings = [line for line in captured.out.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "Traceback" not in captured.err + captured.out
    assert warnings[0].strip().startswith(f"WARNING: {tmp_path / 'results' / 't1.json'} is damaged (not valid JSON")
    assert (tmp_path / "results" / "t1.json").is_file()   # status only reads


def test_status_survives_a_truncated_error_file_and_search_summary(tmp_path, capsys):
    results_dir.write_manifest(tmp_path, "grid", [planned("t1")])
    (tmp_path / "errors").mkdir()
    (tmp_path / "errors" / "t1.json").write_text('{"trial_id": "t1", "err', encoding="utf-8")
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "s.json").write_text("{", encoding="utf-8")
    status = run_status(tmp_path)
    assert status["counts"]["errored"] == 1 and status["studies"] == []
    assert status["trials"][0]["error"].startswith(f"(damaged error file {tmp_path / 'errors' / 't1.json'}")
    assert status["damaged"] == [
        f"{tmp_path / 'search' / 's.json'} is damaged (not a study summary: Expecting property name enclosed "
        "in double quotes: line 1 column 2 (char 1))"]


@pytest.mark.parametrize("text, message", [
    ('{"trial_id": "t1", "metrics": {"fr": {"accuracy": NaN}}, "average": {}}',
     "malformed JSON: NaN is not a number JSON allows"),
    ('{"trial_id": "t1", "metr', "malformed JSON: Unterminated string"),
])
def test_analyze_refuses_a_damaged_result_in_one_line(tmp_path, capsys, text, message):
    results_dir.write_manifest(tmp_path, "grid", [planned("t1")])
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "t1.json").write_text(text, encoding="utf-8")
    assert main(["analyze", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    line = one_error_line(captured.err)
    assert line.startswith(str(tmp_path / "results" / "t1.json")) and message in line
    assert line.endswith("; run the experiment again: alignfreeze run moves it aside and reruns its trial")
    assert captured.out == ""


# ------------------------------------------------- nothing to score: preflight

def unannotated_copy(tmp_path: Path, sentences: int | None = None) -> Path:
    """The bundled English dev slice (its first ``sentences``) with every UPOS tag replaced by '_'."""
    text = bundled_path(TRAIN_CONLLU).read_text(encoding="utf-8")
    blocks = [block for block in text.split("\n\n") if block.strip()][:sentences]
    out = []
    for line in "\n\n".join(blocks).splitlines():
        columns = line.split("\t")
        if len(columns) == 10:
            columns[3] = "_"
        out.append("\t".join(columns))
    path = tmp_path / "unannotated.conllu"
    path.write_text("\n".join(out) + "\n\n", encoding="utf-8")
    return path


def dry_run(tmp_path: Path, experiment: dict, capsys) -> tuple[int, str, str]:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False), encoding="utf-8")
    code = main(["run", str(path), "--output", str(tmp_path / "out"), "--dry-run"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


ALL_UNDERSCORES = "every UPOS tag is '_' in the first {} sentences read"


@pytest.mark.parametrize("role, expected", [
    ("eval", "no annotated word to score (test data): " + ALL_UNDERSCORES.format(20)),
    ("validation", "no annotated word to score (validation data): " + ALL_UNDERSCORES.format(20)),
    ("train", "no annotated word to train on: " + ALL_UNDERSCORES.format(48)),
])
def test_a_file_without_one_annotated_word_is_refused_before_the_run(tmp_path, capsys, role, expected):
    bad = unannotated_copy(tmp_path)
    experiment = small_pos_experiment()
    if role == "train":
        experiment["data"]["pos"]["train"] = str(bad)
    elif role == "eval":
        experiment["data"]["pos"]["eval"]["fr"] = str(bad)
    else:
        experiment["data"]["pos"]["validation"] = {"fr": str(bad)}
    code, out, err = dry_run(tmp_path, experiment, capsys)
    assert code == 2 and one_error_line(err) == f"{bad}: {expected}"
    assert out == "" and not (tmp_path / "out").exists()


def test_a_short_file_without_one_annotated_word_says_how_many_sentences_it_has(tmp_path, capsys):
    bad = unannotated_copy(tmp_path, sentences=3)
    experiment = small_pos_experiment()
    experiment["data"]["pos"]["eval"]["ru"] = str(bad)
    code, out, err = dry_run(tmp_path, experiment, capsys)
    assert code == 2 and out == ""
    assert one_error_line(err) == (f"{bad}: no annotated word to score (test data): "
                                   "every UPOS tag is '_' in its 3 sentence(s)")


def test_one_annotated_word_is_enough(tmp_path, capsys):
    bad = unannotated_copy(tmp_path, sentences=3)
    lines = bad.read_text(encoding="utf-8").splitlines(keepends=True)
    first = next(n for n, line in enumerate(lines) if line.count("\t") == 9)
    columns = lines[first].split("\t")
    lines[first] = "\t".join(columns[:3] + ["NOUN"] + columns[4:])
    bad.write_text("".join(lines), encoding="utf-8")
    experiment = small_pos_experiment()
    experiment["data"]["pos"]["eval"]["ru"] = str(bad)
    code, out, err = dry_run(tmp_path, experiment, capsys)
    assert code == 0, err
