"""The grid through Ray Tune: results on disk, errors recorded, a killed run resumed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.cli import main
from trainables.checkpoint_layout import damage

from trial_fixtures import small_pos_experiment

pytestmark = pytest.mark.slow


def write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def results(output: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (output / "results").glob("*.json")}


def test_grid_runs_through_ray_and_records_an_errored_trial(tmp_path, capsys):
    raw = small_pos_experiment(strategies=["baseline", "front"])
    raw["finetune"]["epochs"] = 1
    output = tmp_path / "out"
    assert main(["run", str(write(tmp_path, raw)), "--output", str(output)]) == 0
    manifest = json.loads((output / "experiment.json").read_text())
    planned = {t["trial_id"] for t in manifest["trials"]}
    done = results(output)
    assert set(done) == planned and len(planned) == 2
    for result in done.values():
        assert set(result["metrics"]) == {"fr", "ru"} and "accuracy" in result["english"]
    front = next(r for r in done.values() if r["spec"]["strategy"] == "front")
    baseline = next(r for r in done.values() if r["spec"]["strategy"] == "baseline")
    assert front["provenance"]["realign_steps"] > 0 and baseline["provenance"]["realign_steps"] == 0
    capsys.readouterr()

    # Running again: nothing left to do.
    assert main(["run", str(write(tmp_path, raw)), "--output", str(output)]) == 0
    assert "already have results" in capsys.readouterr().err

    # A trial that fails at run time (a GPU the machine lacks) is recorded, not dropped.
    raw_bad = dict(raw, device="cuda", strategies=["baseline"])
    bad_output = tmp_path / "bad"
    assert main(["run", str(write(tmp_path, raw_bad)), "--output", str(bad_output)]) == 1
    [error_file] = (bad_output / "errors").glob("*.json")
    error = json.loads(error_file.read_text())
    assert error["status"] == "error" and "no GPU" in error["error"]
    assert "errored" in capsys.readouterr().err


def test_asking_for_gpus_on_a_cluster_without_any_fails_before_trials(tmp_path, capsys):
    raw = small_pos_experiment(strategies=["baseline"], resources={"cpus": 1, "gpus": 0.5})
    assert main(["run", str(write(tmp_path, raw)), "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("alignfreeze: error: trials ask for 0.5 GPU each but the Ray cluster has 0")
    assert not (tmp_path / "out" / "results").exists()


def test_killed_run_resumes_from_checkpoints(tmp_path, capsys):
    raw = small_pos_experiment(strategies=["front"], seeds=[3, 4])
    raw["finetune"]["epochs"] = 3
    raw["ray"] = {"max_concurrent_trials": 1}
    path = write(tmp_path, raw)
    output = tmp_path / "out"
    command = [sys.executable, "-m", "orchestrator.cli", "run", str(path), "--output", str(output)]
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ})
    try:
        deadline = time.time() + 240
        # wait for the first fine-tuning checkpoint of the first trial, then kill everything
        while time.time() < deadline:
            # complete (Ray copies a checkpoint file by file: its state may be there before its marker)
            checkpoints = [c for c in (output / "ray").glob("*/*/checkpoint_000001") if damage(c) is None]
            if checkpoints:
                break
            assert process.poll() is None, "the run ended before it could be interrupted"
            time.sleep(0.5)
        else:
            pytest.fail("no checkpoint appeared")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert len(results(output)) < 2
    # status reads the interrupted directory: the killed trial will resume after its first epoch
    assert main(["status", str(output)]) == 1
    # (epoch 1, or 2 if the trial got that far between the poll and the kill)
    assert re.search(r"resumes after fine-tuning epoch [12]/3", capsys.readouterr().out)

    assert main(["run", str(path), "--output", str(output)]) == 0
    assert main(["status", str(output)]) == 0
    done = results(output)
    assert len(done) == 2
    resumed = [r for r in done.values() if r["provenance"].get("resumed_from")]
    assert resumed, "no trial resumed from the killed run's checkpoints"
    assert resumed[0]["provenance"]["resumed_from"].startswith(("realigned", "finetune"))
