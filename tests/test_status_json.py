"""``status --json``: each trial's state, scores, duration and end; ``status --watch``."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from orchestrator import results as results_dir
from orchestrator.cli import main


def _planned(trial_id):
    return SimpleNamespace(trial_id=trial_id, to_dict=lambda: {"model": "m", "task": "pos"})


def _result(trial_id, average, english, total_s):
    return {"trial_id": trial_id, "status": "completed", "spec": {}, "metrics": {},
            "average": {"accuracy": average}, "english": {"accuracy": english},
            "provenance": {"timings": {"total_s": total_s}}}


def test_json_gives_each_finished_trial_its_scores_duration_and_end(tmp_path, capsys):
    results_dir.write_manifest(tmp_path, "grid", [_planned(i) for i in ("a", "b", "c")])
    results_dir.write_result(tmp_path, _result("a", 0.25, 0.75, 52.5))
    results_dir.write_error(tmp_path, "b", {}, "RuntimeError: boom")
    assert main(["status", str(tmp_path), "--json"]) == 1
    rows = {row["trial_id"]: row for row in json.loads(capsys.readouterr().out)["trials"]}
    assert {k: rows["a"][k] for k in ("state", "average", "english", "duration_s")} == \
        {"state": "done", "average": {"accuracy": 0.25}, "english": {"accuracy": 0.75}, "duration_s": 52.5}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", rows["a"]["finished"])
    assert rows["b"]["state"] == "errored" and rows["b"]["finished"]
    assert rows["c"] == {"trial_id": "c", "state": "not started"}


def test_watch_prints_until_every_trial_is_done(tmp_path, capsys, monkeypatch):
    results_dir.write_manifest(tmp_path, "grid", [_planned(i) for i in ("a", "b")])
    results_dir.write_result(tmp_path, _result("a", 0.25, 0.75, 1.0))
    sleeps = []

    def sleep(seconds):       # the second trial ends while the watch waits
        sleeps.append(seconds)
        results_dir.write_result(tmp_path, _result("b", 0.5, 0.75, 1.0))
    monkeypatch.setattr("time.sleep", sleep)
    assert main(["status", str(tmp_path), "--watch", "2"]) == 0
    out = capsys.readouterr().out
    assert sleeps == [2.0]
    assert out.count("--- ") == 2                  # not a terminal: stamped blocks, no escape codes
    assert "\033" not in out, repr(out)
    assert "1 done, 0 errored, 0 checkpointed, 1 not started" in out and "2 done" in out


@pytest.mark.parametrize("seconds", ["0", "-1"])
def test_watch_needs_a_positive_interval(tmp_path, capsys, seconds):
    results_dir.write_manifest(tmp_path, "grid", [_planned("a")])
    assert main(["status", str(tmp_path), "--watch", seconds]) == 2
    assert "--watch must be a number of seconds > 0" in capsys.readouterr().err
