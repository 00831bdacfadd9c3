"""``alignfreeze export DIR --out FILE``: a run directory as a tidy per-seed, per-language table."""

from __future__ import annotations

import argparse
import json

import pandas as pd
import pytest

from analysis import commands
from analysis.export import EXPORT_COLUMNS
from trainables.errors import DataError, SpecError

MODEL = "bert-base-multilingual-cased"


def result(trial_id: str, strategy: str, seed: int, validation: bool = False) -> dict:
    spec = {"model": MODEL, "task": "nli", "strategy": strategy,
            "aligner": None if strategy == "baseline" else "dico", "schedule": "before",
            "seed": seed}
    score = 0.5 + seed / 100 + (0.1 if strategy == "full" else 0.0)
    data = {"trial_id": trial_id, "status": "completed", "spec": spec,
            # out of languages.py's order on purpose
            "metrics": {"zh": {"accuracy": score}, "ar": {"accuracy": score - 0.1}},
            "average": {"accuracy": score - 0.05}, "english": {"accuracy": 0.8}}
    if validation:
        data["validation"] = {"ar": {"accuracy": 0.41}}
        data["english_validation"] = {"accuracy": 0.81}
    return data


@pytest.fixture
def run(tmp_path):
    """Three completed trials (one with validation scores), one errored, one missing."""
    directory = tmp_path / "run"
    (directory / "results").mkdir(parents=True)
    (directory / "errors").mkdir()
    trials = [("t-full-1", "full", 1), ("t-base-2", "baseline", 2), ("t-base-1", "baseline", 1),
              ("t-full-2", "full", 2), ("t-full-3", "full", 3)]
    for trial_id, strategy, seed in trials[:3]:
        (directory / "results" / f"{trial_id}.json").write_text(
            json.dumps(result(trial_id, strategy, seed, validation=trial_id == "t-full-1")))
    (directory / "errors" / "t-full-2.json").write_text(json.dumps(
        {"trial_id": "t-full-2", "status": "error", "error": "CUDA out of memory"}))
    (directory / "experiment.json").write_text(json.dumps({"name": "x", "trials": [
        {"trial_id": t, "spec": result(t, s, seed)["spec"]} for t, s, seed in trials]}))
    return directory


def export(*argv) -> int:
    parser = argparse.ArgumentParser(prog="alignfreeze export")
    commands.add_export_arguments(parser)
    return commands.run_export(parser.parse_args([str(a) for a in argv]))


def test_export_csv_is_tidy_per_seed_and_language(run, tmp_path, capsys):
    out = tmp_path / "tidy.csv"
    assert export(run, "--out", out) == 0
    captured = capsys.readouterr()
    assert captured.out == (f"wrote 11 rows (3 trials, 3 languages, rows per split: test 9, "
                            f"validation 2) to {out}\n")
    assert "warning: 1 errored trial(s)" in captured.err and "CUDA out of memory" in captured.err
    assert "warning: 1 missing trial(s)" in captured.err and "t-full-3" in captured.err
    table = pd.read_csv(out, keep_default_na=False)
    assert tuple(table.columns) == EXPORT_COLUMNS
    # baseline before full, seeds ascending, test before validation, languages.py's order, en last
    assert [(r.trial_id, r.split, r.language) for r in table.itertuples()] == [
        ("t-base-1", "test", "ar"), ("t-base-1", "test", "zh"), ("t-base-1", "test", "en"),
        ("t-base-2", "test", "ar"), ("t-base-2", "test", "zh"), ("t-base-2", "test", "en"),
        ("t-full-1", "test", "ar"), ("t-full-1", "test", "zh"), ("t-full-1", "test", "en"),
        ("t-full-1", "validation", "ar"), ("t-full-1", "validation", "en")]
    first = table.iloc[6].to_dict()
    assert first == {"trial_id": "t-full-1", "model": MODEL, "task": "nli", "strategy": "full",
                     "aligner": "dico", "schedule": "before", "seed": 1, "language": "ar",
                     "is_target": True, "split": "test", "metric": "accuracy",
                     "value": pytest.approx(0.51)}
    baseline = table[table["strategy"] == "baseline"]
    assert set(baseline["aligner"]) == {"none"} and set(baseline["schedule"]) == {"before"}
    english = table[table["language"] == "en"]
    assert not english["is_target"].any() and list(english["value"]) == [0.8, 0.8, 0.8, 0.81]


def test_export_parquet_round_trips(run, tmp_path, capsys):
    out = tmp_path / "tidy.parquet"
    assert export(run, "--out", out) == 0
    table = pd.read_parquet(out)
    assert tuple(table.columns) == EXPORT_COLUMNS and len(table) == 11
    assert table["seed"].dtype == "int64" and table["is_target"].dtype == bool


@pytest.mark.parametrize("name, message", [
    ("tidy.json", "--out must end in .csv or .parquet, got 'tidy.json'"),
    ("folder.csv", "is a directory, not a file"),
])
def test_a_bad_out_is_refused_in_one_line(run, tmp_path, name, message):
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(SpecError, match=message) as error:
        export(run, "--out", tmp_path / name)
    assert "\n" not in str(error.value)
    assert not (tmp_path / "tidy.json").exists()


def test_a_bad_directory_is_refused_in_one_line(tmp_path):
    (tmp_path / "plain").mkdir()
    cases = [(tmp_path / "absent", "no such directory"),
             (tmp_path / "plain", "not a run directory"),
             (tmp_path / "plain" / "x.csv", "no such directory")]
    (tmp_path / "empty" / "results").mkdir(parents=True)
    cases.append((tmp_path / "empty", "no completed trial to export"))
    for directory, message in cases:
        with pytest.raises(DataError, match=message) as error:
            export(directory, "--out", tmp_path / "out.csv")
        assert "\n" not in str(error.value)
    assert not (tmp_path / "out.csv").exists()


def test_a_damaged_result_is_refused(run, tmp_path):
    (run / "results" / "t-base-1.json").write_text('{"trial_id": "t-base-1", "metrics": {"ar": ')
    with pytest.raises(DataError, match="malformed JSON"):
        export(run, "--out", tmp_path / "out.csv")
