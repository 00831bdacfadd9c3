"""Results in: run directories (with errors, holes, resumes) and tidy files."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis import results
from trainables.errors import DataError


def spec(strategy: str, seed: int, aligner: str = "dico") -> dict:
    return {"model": "bert-base-multilingual-cased", "task": "nli", "strategy": strategy,
            "aligner": "none" if strategy == "baseline" else aligner, "schedule": "before",
            "seed": seed, "languages": ["de", "fr"], "realign_steps": 10}


def write_run(directory, completed, errored=(), planned_only=(), resumed=()):
    """A run directory as ``alignfreeze run --output`` writes it."""
    trials = []
    for trial_id, trial_spec in [*completed, *errored, *planned_only, *resumed]:
        trials.append({"trial_id": trial_id, "spec": trial_spec})
    (directory / "results").mkdir(parents=True)
    (directory / "errors").mkdir()
    (directory / "experiment.json").write_text(json.dumps(
        {"name": "t", "created": "2025-01-01T00:00:00", "trials": trials}))
    for trial_id, trial_spec in [*completed, *resumed]:
        base = 0.6 if trial_spec["strategy"] == "baseline" else 0.7
        (directory / "results" / f"{trial_id}.json").write_text(json.dumps({
            "trial_id": trial_id, "status": "completed", "spec": trial_spec,
            "metrics": {"de": {"accuracy": base + trial_spec["seed"] / 100},
                        "fr": {"accuracy": base}},
            "average": {"accuracy": base}, "english": {"accuracy": 0.8},
            "provenance": {"spec_key": f"k{trial_id}", "versions": {"torch": "2"},
                           "device": "cpu", "num_blocks": 12, "realign_steps": 10,
                           "finetune_steps": 20, "timings": {"total_s": 1.0},
                           "hostname": "h"}}))
    for trial_id, trial_spec in [*errored, *resumed]:
        (directory / "errors" / f"{trial_id}.json").write_text(json.dumps({
            "trial_id": trial_id, "status": "error", "spec": trial_spec,
            "error": "Traceback ...\nRuntimeError: CUDA out of memory"}))


def test_run_directory_reports_errored_and_missing(tmp_path):
    write_run(tmp_path, completed=[("t1", spec("baseline", 1)), ("t2", spec("front", 1))],
              errored=[("t3", spec("back", 1))], planned_only=[("t4", spec("full", 1))],
              resumed=[("t5", spec("full", 2))])
    loaded = results.run_directory_results(tmp_path)
    table = loaded.table
    # t5 errored once and completed on resume: a result, not an error.
    assert sorted(table["trial_id"].unique()) == ["t1", "t2", "t5"]
    assert [(i.trial_id, i.error) for i in loaded.errored] == [
        ("t3", "RuntimeError: CUDA out of memory")]
    assert [i.trial_id for i in loaded.missing] == ["t4"]
    assert "back" in loaded.errored[0].description
    row = table[(table["trial_id"] == "t2") & (table["language"] == "de")].iloc[0]
    assert (row["strategy"], row["aligner"], row["seed"], row["value"]) == ("front", "dico", 1,
                                                                            pytest.approx(0.71))
    assert row["num_blocks"] == 12 and row["spec_key"] == "kt2" and bool(row["is_target"])
    english = table[table["language"] == "en"]
    assert len(english) == 3 and not english["is_target"].any()
    assert list(table.columns) == list(results.TIDY_COLUMNS + results.PROVENANCE_COLUMNS)


def test_sources_dispatch_and_duplicates(tmp_path):
    write_run(tmp_path / "run", completed=[("t1", spec("baseline", 1))])
    tidy = tmp_path / "tidy.csv"
    results.write_table(results.run_directory_results(tmp_path / "run").table, tidy)
    loaded = results.sources_results([tmp_path / "run", tidy])
    assert len(loaded.table) == 3          # de, fr, en once
    assert loaded.notes and loaded.notes[0].startswith("3 duplicate measurements")


def test_tidy_csv_and_parquet_round_trip(tmp_path):
    write_run(tmp_path / "run", completed=[("t1", spec("baseline", 1)), ("t2", spec("back", 3))])
    table = results.run_directory_results(tmp_path / "run").table
    for name in ("t.csv", "t.parquet"):
        results.write_table(table, tmp_path / name)
        back = results.source_results(tmp_path / name).table
        pd.testing.assert_frame_equal(back, table, check_dtype=False)


def test_minimal_tidy_csv_gets_defaults(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("model,task,strategy,aligner,seed,language,metric,value\n"
                    "x,pos,baseline,,1,de,accuracy,0.5\nx,pos,front:3,dico,1,en,accuracy,0.9\n")
    table = results.source_results(path).table
    assert table["schedule"].tolist() == ["before", "before"]
    assert table["aligner"].tolist() == ["none", "dico"]
    assert table["is_target"].tolist() == [True, False]


@pytest.mark.parametrize("content, message", [
    ("model,task,seed\nx,pos,1\n", r"m\.csv:1: tidy table lacks column\(s\) strategy"),
    ("model,task,strategy,aligner,seed,language,metric,value\nx,pos,full,dico,1,de,accuracy,77.3\n",
     r"m\.csv:2: value 77.3 is not a fraction"),
    ("model,task,strategy,aligner,seed,language,metric,value\nx,pos,full,dico,1,de,accuracy,0.5\n"
     "x,pos,full,dico,one,de,accuracy,0.5\n", r"m\.csv:3: column seed: not a number: 'one'"),
    ("model,task,strategy,aligner,seed,language,metric,value\nx,udpos,full,dico,1,de,accuracy,.5\n",
     r"m\.csv:2: unknown task 'udpos'"),
    ("model,task,strategy,aligner,seed,language,metric,value\nx,pos,full,dico,1,de,accuracy\n"
     "x,pos,full,dico,1,de,accuracy,0.5,extra,fields\n", r"m\.csv: malformed CSV"),
])
def test_malformed_tidy_csv_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "m.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        results.source_results(path)


def test_malformed_result_json_names_file_and_line(tmp_path):
    write_run(tmp_path, completed=[("t1", spec("baseline", 1))])
    (tmp_path / "results" / "t1.json").write_text('{\n"trial_id": "t1",\n oops}')
    with pytest.raises(DataError, match=r"t1\.json:3: malformed JSON"):
        results.run_directory_results(tmp_path)


def test_missing_source_and_unknown_directory(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        results.sources_results([tmp_path / "nope"])
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="neither a run directory"):
        results.source_results(tmp_path)


def test_packaged_reference_is_a_source():
    loaded = results.source_results("reference")
    assert loaded.table["model"].nunique() == 3 and not loaded.errored and not loaded.missing


def test_write_is_atomic(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")

    def failing(temporary):
        open(temporary, "w").write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        results.write_atomically(target, failing)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
