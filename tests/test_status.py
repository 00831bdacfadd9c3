"""`alignfreeze status`: every planned trial's state, read from the results directory alone."""

from __future__ import annotations

import json
from types import SimpleNamespace

from orchestrator import results as results_dir
from orchestrator.cli import main
from orchestrator.status import run_status
from trainables.checkpoint_layout import CHECKPOINT_FILE, PHASE_FILE


def planned(trial_id):
    return SimpleNamespace(trial_id=trial_id, to_dict=lambda: {"model": "m", "task": "pos"})


def checkpoint(directory, tune_run, trial_id, number, phase):
    path = directory / "ray" / tune_run / trial_id / f"checkpoint_{number:06d}"
    path.mkdir(parents=True)
    (path / CHECKPOINT_FILE).write_bytes(b"state")
    (path / PHASE_FILE).write_text(json.dumps(phase))
    return path


def test_each_planned_trial_has_one_state(tmp_path, capsys):
    ids = ["a_done", "b_errored", "c_checkpointed", "d_waiting"]
    results_dir.write_manifest(tmp_path, "grid", [planned(i) for i in ids])
    results_dir.write_result(tmp_path, {"trial_id": "a_done", "average": {"accuracy": 0.5}})
    results_dir.write_error(tmp_path, "b_errored", {}, "Traceback ...\nRuntimeError: CUDA out of memory")
    checkpoint(tmp_path, "tune-1", "c_checkpointed", 0, {"phase": "realigned", "epoch": -1, "epochs": 3})
    newest = checkpoint(tmp_path, "tune-2", "c_checkpointed", 1,
                        {"phase": "finetune", "epoch": 0, "epochs": 3, "saved": "2026-11-25T05:00:00+00:00"})
    status = run_status(tmp_path)
    assert status["kind"] == "grid" and status["planned"] == 4
    assert status["counts"] == {"done": 1, "errored": 1, "checkpointed": 1, "not started": 1}
    rows = {row["trial_id"]: row for row in status["trials"]}
    assert rows["c_checkpointed"]["checkpoint"] == str(newest)
    assert main(["status", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "1 done, 1 errored, 1 checkpointed, 1 not started" in out
    assert "errored       b_errored: RuntimeError: CUDA out of memory" in out
    assert "c_checkpointed: resumes after fine-tuning epoch 1/3" in out
    # once everything has a result the command says so with status 0 (for scripts)
    for trial_id in ids[1:]:
        results_dir.write_result(tmp_path, {"trial_id": trial_id, "average": {"accuracy": 0.5}})
    assert main(["status", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["done"] == 4


def test_status_of_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    assert "not a results directory" in capsys.readouterr().err
