"""``--output s3://...``: results, status, analysis, the driver lock and the checkpoints on object storage.

An S3-compatible server (moto's server mode) runs on 127.0.0.1 for the
module; credentials come from the environment, the endpoint from the URI's
query (``endpoint_override``, ``scheme``), as pyarrow reads them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from trial_fixtures import small_pos_experiment

BUCKET = "alignfreeze-test"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """The endpoint of a fresh S3 server with one bucket; AWS credentials set for this process and Ray's."""
    pytest.importorskip("moto")
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    try:
        deadline = time.time() + 60
        while True:     # the server answers requests
            try:
                urllib.request.urlopen(endpoint, timeout=2).close()
                break
            except OSError:
                assert server.poll() is None, "moto's server did not start"
                assert time.time() < deadline, "moto's server did not answer within 60 s"
                time.sleep(0.2)
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT")).close()
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def uri(endpoint: str, path: str) -> str:
    return f"s3://{BUCKET}/{path}?endpoint_override={endpoint}&scheme=http"


def test_an_unsupported_uri_scheme_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    from orchestrator.cli import main

    monkeypatch.chdir(tmp_path)
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(yaml.safe_dump(small_pos_experiment()), encoding="utf-8")
    assert main(["run", str(experiment), "--output", "nosuchfs://bucket/run"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("alignfreeze: error: --output nosuchfs://bucket/run: not a storage URI")
    assert "\n" not in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["experiment.yaml"]   # no ./runs, no ./nosuchfs:
    assert main(["status", "nosuchfs://bucket/run"]) == 2
    assert "results directory nosuchfs://bucket/run: not a storage URI" in capsys.readouterr().err


def test_results_status_analysis_lock_and_checkpoints_on_s3(s3, tmp_path):
    from analysis.results import source_results
    from orchestrator import results as results_dir
    from orchestrator.driver_lock import DriverLock, read_holder
    from orchestrator.experiment import load_experiment_file
    from orchestrator.status import run_status
    from trainables.checkpoint_layout import (CHECKPOINT_FILE, COMPLETE_FILE, FINAL_WEIGHTS_FILE, PHASE_FILE,
                                              latest_checkpoint, release_checkpoints, trial_checkpoints)
    from trainables.errors import SpecError
    from trainables.storage import RemotePath, location

    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(small_pos_experiment(strategies=["baseline", "back"])), encoding="utf-8")
    trials = load_experiment_file(path).trials
    assert len(trials) == 2
    output = location(uri(s3, "unit"))
    assert isinstance(output, RemotePath) and str(output / "results") == uri(s3, "unit/results")

    # the driver lock: one driver; a second is refused with who holds it; released at the end
    with DriverLock(output):
        assert read_holder(output)["pid"] == os.getpid()
        with pytest.raises(SpecError, match=f"in use by another alignfreeze driver \\(pid {os.getpid()}"):
            DriverLock(output).acquire()
        results_dir.write_manifest(output, "small", trials)
        done, left = trials
        metrics = {"fr": {"accuracy": 0.5}, "ru": {"accuracy": 0.25}}
        results_dir.write_error(output, done.trial_id, done.to_dict(), "boom")
        results_dir.write_result(output, {"trial_id": done.trial_id, "spec": done.to_dict(), "metrics": metrics,
                                          "average": {"accuracy": 0.375}, "english": {"accuracy": 0.9}, "provenance": {}})
        # a checkpoint of the other trial, as Tune stores it (complete), and a newer truncated one
        storage = output / results_dir.RAY_STORAGE
        for number, state in ((1, b"x" * 10), (2, b"x" * 4)):
            checkpoint = storage / "tune-1" / left.trial_id / f"checkpoint_00000{number}"
            (checkpoint / CHECKPOINT_FILE).write_bytes(state)
            (checkpoint / PHASE_FILE).write_text(json.dumps({"phase": "realignment", "saved": "now"}))
            (checkpoint / COMPLETE_FILE).write_text(json.dumps({"file": CHECKPOINT_FILE, "bytes": 10, "sha256": "-"}))
            (checkpoint / FINAL_WEIGHTS_FILE).write_bytes(b"weights")
            time.sleep(1.1)     # S3 mtimes are in seconds: the second is the newest
        assert [c.name for c in trial_checkpoints(storage, left.trial_id)] == ["checkpoint_000002", "checkpoint_000001"]
        assert latest_checkpoint(storage, left.trial_id).name == "checkpoint_000001"   # the truncated one skipped

        status = run_status(str(output))
        assert status["counts"] == {"done": 1, "running": 0, "errored": 0, "checkpointed": 1, "not started": 0}
        assert not (output / "errors" / f"{done.trial_id}.json").exists()   # its error went with the result

    assert read_holder(output) is None

    loaded = source_results(str(output))
    assert sorted(loaded.table.loc[loaded.table["is_target"], "value"]) == [0.25, 0.5]
    assert [issue.trial_id for issue in loaded.missing] == [left.trial_id]

    # a grid without the finished trial: its result moves to retired/, and back when planned again
    assert results_dir.write_manifest(output, "small", [left]).retired_now == [done.trial_id]
    assert run_status(str(output))["no_longer_planned"] == [done.trial_id]
    assert results_dir.write_manifest(output, "small", trials).restored == [done.trial_id]
    assert results_dir.completed_ids(output) == {done.trial_id}

    # keep: final moves the newest complete checkpoint's weights beside the result, removes every checkpoint
    weights = output / "results" / f"{left.trial_id}.safetensors"
    assert release_checkpoints(storage, left.trial_id, "final", weights) == []
    assert weights.read_bytes() == b"weights"
    assert trial_checkpoints(storage, left.trial_id) == []


@pytest.mark.slow
def test_a_grid_runs_into_s3_and_status_and_analyze_read_it(s3, tmp_path, capsys):
    """Ray Tune's storage, the results, resuming from a checkpoint in the bucket, the checkpoints'
    release, status and analyze, all on S3."""
    from orchestrator.cli import main
    from trainables.storage import location

    raw = small_pos_experiment(strategies=["baseline", "back"])
    raw["finetune"]["epochs"] = 1
    raw["checkpoint"] = {"keep": "all"}
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    output = uri(s3, "run")

    assert main(["run", str(path), "--output", output]) == 0
    run_log = capsys.readouterr()
    assert "baseline" in run_log.out     # the per-language table, read back from S3
    remote = location(output)
    results = {p.stem: json.loads(p.read_text()) for p in remote.glob("results/*.json")}
    assert len(results) == 2
    assert (remote / "experiment.json").is_file()
    assert not (remote / "running.json").exists() and not (remote / "driver.lock").exists()
    [back] = [trial_id for trial_id, result in results.items() if result["spec"]["strategy"] == "back"]
    assert list((remote / "ray").glob(f"*/{back}/checkpoint_*")), "Tune's checkpoints are in the bucket"

    assert main(["status", output]) == 0
    assert "2 done" in capsys.readouterr().out

    # a result lost: the rerun resumes that trial from its checkpoint in the bucket (downloaded),
    # to the same metrics, and with keep: none removes its checkpoints once its result is written
    (remote / "results" / f"{back}.json").unlink()
    raw["checkpoint"] = {"keep": "none"}
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert main(["run", str(path), "--output", output]) == 0
    capsys.readouterr()
    rerun = json.loads((remote / "results" / f"{back}.json").read_text())
    assert rerun["provenance"].get("resumed_from"), rerun["provenance"]
    assert rerun["metrics"] == results[back]["metrics"]
    assert list((remote / "ray").glob(f"*/{back}/checkpoint_*")) == []

    table = tmp_path / "table.csv"
    assert main(["analyze", output, "--format", "csv", "--out", str(table)]) == 0
    text = table.read_text(encoding="utf-8")
    assert "baseline" in text and "back" in text
