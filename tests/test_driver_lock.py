"""One driver per results directory: a second driver is refused, a stale lock is taken over,
the lock goes when its driver ends (also on an exception or Ctrl-C)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from orchestrator import results as results_dir
from orchestrator.cli import main
from orchestrator.driver_lock import LOCK_NAME, STALE_AFTER_S, DriverLock, read_holder
from orchestrator.experiment import experiment_from_dict
from orchestrator.runner import TrialSession
from trainables.errors import SpecError

from trial_fixtures import small_pos_experiment

ROOT = Path(__file__).resolve().parents[1]

# A driver in a process of its own: takes the lock, says so on stdout, then waits (Ctrl-C ends it).
HOLDER = """
import sys, time
from orchestrator.driver_lock import DriverLock
with DriverLock(sys.argv[1]):
    print("held", flush=True)
    while True:
        time.sleep(0.1)
"""


@pytest.fixture
def other_driver():
    """Start a process that holds a directory's lock; returns once the lock really exists."""
    started = []

    def start(directory: Path) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory)], cwd=ROOT,
                                   stdout=subprocess.PIPE, text=True)
        started.append(process)
        assert process.stdout.readline().strip() == "held", "the other driver did not take the lock"
        assert read_holder(directory)["pid"] == process.pid
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def lock_path(directory: Path) -> Path:
    return directory / LOCK_NAME


def test_a_second_driver_is_refused_and_status_still_reads(tmp_path, capsys, other_driver):
    raw = small_pos_experiment(strategies=["baseline"])
    experiment_file = tmp_path / "experiment.yaml"
    experiment_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    output = tmp_path / "out"
    experiment = experiment_from_dict(raw)
    results_dir.write_manifest(output.resolve(), "small", experiment.trials)
    holder = other_driver(output)

    assert main(["run", str(experiment_file), "--output", str(output)]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"alignfreeze: error: {output.resolve()} is in use by another alignfreeze driver "
                           f"(pid {holder.pid} on {socket.gethostname()}, started 20")
    assert line.endswith("wait for it to end, or use another --output")
    assert not (output / "ray").exists() and not (output / "results").exists()

    # status only reads: it works while the lock is held, and leaves the lock alone
    assert main(["status", str(output)]) == 1
    assert "small" in capsys.readouterr().out
    assert read_holder(output)["pid"] == holder.pid and holder.poll() is None


def test_a_killed_drivers_lock_is_taken_over_with_a_warning(tmp_path, capsys, other_driver):
    holder = other_driver(tmp_path)
    holder.kill()          # SIGKILL: no chance to remove its lock
    holder.wait()
    assert read_holder(tmp_path)["pid"] == holder.pid
    with DriverLock(tmp_path):
        assert read_holder(tmp_path)["pid"] == os.getpid()
        warning = capsys.readouterr().err
        assert f"taking over the stale lock of {tmp_path} (pid {holder.pid} on {socket.gethostname()}" in warning
        assert "is not running on this host" in warning
    assert not lock_path(tmp_path).exists()


def test_a_lock_nobody_refreshed_is_taken_over_a_fresh_one_is_not(tmp_path, capsys):
    # a driver on another host: its pid means nothing here, only the lock's age does
    lock_path(tmp_path).write_text(json.dumps({"host": "node-7", "pid": os.getpid(), "started": "2025-01-01T00:00:00+00:00",
                                               "token": "x"}), encoding="utf-8")
    with pytest.raises(SpecError, match=r"in use by another alignfreeze driver \(pid \d+ on node-7, started 2025"):
        DriverLock(tmp_path).acquire()
    old = time.time() - STALE_AFTER_S - 60
    os.utime(lock_path(tmp_path), (old, old))
    with DriverLock(tmp_path):
        assert read_holder(tmp_path)["host"] == socket.gethostname()
    assert "not refreshed for" in capsys.readouterr().err
    assert not lock_path(tmp_path).exists()


def test_the_lock_is_refreshed_while_held(tmp_path):
    with DriverLock(tmp_path, heartbeat_s=0.05):
        old = time.time() - 3600
        os.utime(lock_path(tmp_path), (old, old))
        deadline = time.time() + 10
        while read_holder(tmp_path)["age_s"] > 60:
            assert time.time() < deadline, "the lock was not refreshed"
            time.sleep(0.05)


def test_the_lock_is_released_on_return_and_on_exception(tmp_path):
    with DriverLock(tmp_path):
        holder = json.loads(lock_path(tmp_path).read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname() and holder["started"]
    assert not lock_path(tmp_path).exists()
    with pytest.raises(RuntimeError):
        with DriverLock(tmp_path):
            raise RuntimeError("trial crashed the driver")
    assert not lock_path(tmp_path).exists()
    assert [p.name for p in tmp_path.iterdir()] == []      # no temporary file left behind


def test_the_lock_is_released_on_ctrl_c(tmp_path, other_driver):
    holder = other_driver(tmp_path)
    holder.send_signal(signal.SIGINT)
    assert holder.wait(timeout=30) != 0
    assert not lock_path(tmp_path).exists()


def test_a_trial_session_holds_the_lock_while_open(tmp_path):
    with TrialSession(tmp_path, {}, {}) as session:
        assert read_holder(tmp_path)["pid"] == os.getpid()
        with pytest.raises(SpecError, match="in use by another alignfreeze driver"):
            with TrialSession(tmp_path, {}, {}):
                pass
        assert session.run([])["planned"] == 0
    assert read_holder(tmp_path) is None
