"""`alignfreeze status`: every planned trial's state, read from the results directory alone."""

from __future__ import annotations

import json
from types import SimpleNamespace

from orchestrator import results as results_dir
from orchestrator.cli import main
from orchestrator.status import run_status
from trainables.checkpoint_layout import CHECKPOINT_FILE, PHASE_FILE, mark_complete


def planned(trial_id):
    return SimpleNamespace(trial_id=trial_id, to_dict=lambda: {"model": "m", "task": "pos"})


def checkpoint(directory, tune_run, trial_id, number, phase):
    path = directory / "ray" / tune_run / trial_id / f"checkpoint_{number:06d}"
    path.mkdir(parents=True)
    (path / CHECKPOINT_FILE).write_bytes(b"state")
    (path / PHASE_FILE).write_text(json.dumps(phase))
    mark_complete(path)
    return path


def test_each_planned_trial_has_one_state(tmp_path, capsys):
    ids = ["a_done", "b_errored", "c_checkpointed", "d_waiting"]
    results_dir.write_manifest(tmp_path, "grid", [planned(i) for i in ids])
    results_dir.write_result(tmp_path, {"trial_id": "a_done", "metrics": {}, "average": {"accuracy": 0.5}})
    results_dir.write_error(tmp_path, "b_errored", {}, "Traceback ...\nRuntimeError: CUDA out of memory")
    checkpoint(tmp_path, "tune-1", "c_checkpointed", 0, {"phase": "realigned", "epoch": -1, "epochs": 3})
    newest = checkpoint(tmp_path, "tune-2", "c_checkpointed", 1,
                        {"phase": "finetune", "epoch": 0, "epochs": 3, "saved": "2026-11-25T05:00:00+00:00"})
    status = run_status(tmp_path)
    assert status["kind"] == "grid" and status["planned"] == 4
    assert status["counts"] == {"done": 1, "running": 0, "errored": 1, "checkpointed": 1, "not started": 1}
    rows = {row["trial_id"]: row for row in status["trials"]}
    assert rows["c_checkpointed"]["checkpoint"] == str(newest)
    assert main(["status", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "1 done, 1 errored, 1 checkpointed, 1 not started" in out
    assert "errored       b_errored: RuntimeError: CUDA out of memory" in out
    assert "c_checkpointed: resumes after fine-tuning epoch 1/3" in out
    # once everything has a result the command says so with status 0 (for scripts)
    for trial_id in ids[1:]:
        results_dir.write_result(tmp_path, {"trial_id": trial_id, "metrics": {}, "average": {"accuracy": 0.5}})
    assert main(["status", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["done"] == 4


def test_status_of_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    assert "not a results directory" in capsys.readouterr().err


def tune_result(phase, epoch, pid):
    """What Tune hands the driver's callback with a trial's report (its auto-filled fields included)."""
    return {"phase": phase, "epoch": epoch, "hostname": "node-2", "node_ip": "10.0.0.2", "pid": pid,
            "training_iteration": epoch + 2}


def a_run_going_on(directory):
    """The on-disk state of a grid while its driver (this process) runs it: written by the driver's own class."""
    from orchestrator.running import RunningTrials

    ids = ["a_done", "b_running", "c_started", "d_retrying", "e_waiting"]
    results_dir.write_manifest(directory, "grid", [planned(i) for i in ids])
    results_dir.write_result(directory, {"trial_id": "a_done", "metrics": {}, "average": {"accuracy": 0.5}})
    running = RunningTrials(directory)
    for trial_id in ("a_done", "b_running", "c_started", "d_retrying"):
        running.started(trial_id)
    running.ended("a_done")
    running.reported("b_running", tune_result("finetune", 0, 4242))
    checkpoint(directory, "tune-1", "b_running", 1, {"phase": "finetune", "epoch": 0, "epochs": 3,
                                                     "saved": "2026-11-25T05:00:00+00:00"})
    running.reported("d_retrying", tune_result("realigned", -1, 4343))
    checkpoint(directory, "tune-1", "d_retrying", 0, {"phase": "realigned", "epoch": -1, "epochs": 3,
                                                      "saved": "2026-11-25T05:00:00+00:00"})
    running.failed("d_retrying", "ray.exceptions.ActorDiedError: The actor died because its node has died.")
    return running


def test_status_tells_running_trials_from_checkpointed_and_never_started_ones(tmp_path, capsys):
    running = a_run_going_on(tmp_path)
    status = run_status(tmp_path)
    assert status["counts"] == {"done": 1, "running": 3, "errored": 0, "checkpointed": 0, "not started": 1}
    rows = {row["trial_id"]: row for row in status["trials"]}
    assert rows["b_running"]["running"]["pid"] == 4242 and rows["b_running"]["phase"]["epoch"] == 0
    assert rows["e_waiting"]["state"] == "not started"
    assert main(["status", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "1 done, 3 running, 0 errored, 0 checkpointed, 1 not started" in out
    assert "a run is going on: driver pid" in out
    assert "running       b_running: attempt 1 since" in out
    assert "on node-2 (pid 4242); latest checkpoint after fine-tuning epoch 1/3" in out
    assert "running       c_started: attempt 1 since" in out and "no report yet" in out
    assert "retrying      d_retrying: attempt 1 failed (ray.exceptions.ActorDiedError" in out
    assert "run the same alignfreeze run" not in out      # the run going on will finish them
    # a second start after the failure: attempt 2, on the node Tune chose
    running.started("d_retrying")
    running.reported("d_retrying", tune_result("finetune", 0, 4444))
    info = {row["trial_id"]: row for row in run_status(tmp_path)["trials"]}["d_retrying"]["running"]
    assert info["state"] == "running" and info["attempt"] == 2 and info["pid"] == 4444
    # the run ends: its record goes, and nothing is running
    running.close()
    assert run_status(tmp_path)["counts"]["running"] == 0 and run_status(tmp_path)["run"] is None


def test_a_record_left_by_a_driver_that_is_gone_is_not_believed(tmp_path, capsys):
    import subprocess
    import sys
    from datetime import datetime, timedelta, timezone

    from orchestrator.running import RUNNING, STALE_AFTER_S

    a_run_going_on(tmp_path)
    path = tmp_path / RUNNING
    record = json.loads(path.read_text())
    # killed outright on this host: its pid is gone, whatever the heartbeat says
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout)
    path.write_text(json.dumps({**record, "driver": {**record["driver"], "pid": dead}}))
    status = run_status(tmp_path)
    assert status["counts"] == {"done": 1, "running": 0, "errored": 0, "checkpointed": 2, "not started": 2}
    assert main(["status", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"is not going on any more (its driver (pid {dead}) is not running on this host)" in out
    assert "1 done, 0 errored, 2 checkpointed, 2 not started" in out
    assert "run the same alignfreeze run / search command again" in out
    # a driver on another host: judged by its heartbeat alone
    old = (datetime.now(timezone.utc) - timedelta(seconds=STALE_AFTER_S + 30)).isoformat(timespec="seconds")
    elsewhere = {**record, "driver": {**record["driver"], "host": "another-host"}}
    path.write_text(json.dumps(elsewhere))
    assert run_status(tmp_path)["counts"]["running"] == 3
    path.write_text(json.dumps({**elsewhere, "heartbeat": old}))
    assert run_status(tmp_path)["run"]["stale"].startswith("no heartbeat for")
    assert run_status(tmp_path)["counts"]["running"] == 0
