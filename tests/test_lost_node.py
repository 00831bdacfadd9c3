"""A node lost mid-run: the grid completes, no finished trial reruns, nothing is lost.

A two-node Ray cluster on this machine (loopback only, token
authentication as on a real cluster): a head node and a worker node, each
``ray start --block`` with one CPU, its own temporary directory and its
own process group, so that the worker node (raylet, agents and the trial
worker it runs) is killed as a whole, as if the machine went away. The
kill comes once a trial running on the worker node has a checkpoint in
storage and another trial has finished; Ray Tune (``max_failures``)
restarts the killed trial on the head node from that checkpoint.

Run with ``pytest -s`` to see the timeline and what the user sees on stderr.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.status import run_status
from trainables.checkpoint_layout import checkpoint_phase, latest_checkpoint

from local_ray import RAY, LocalNode, free_port
from trial_fixtures import small_pos_experiment

pytestmark = pytest.mark.slow

def cluster_cpus(address: str, env: dict[str, str]) -> float:
    report = subprocess.run([str(RAY), "status", f"--address={address}"], env=env, capture_output=True,
                            text=True).stdout
    found = re.search(r"/([\d.]+) CPU", report)
    return float(found.group(1)) if found else 0.0


def results(output: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (output / "results").glob("*.json")}


def test_a_node_lost_mid_run_costs_only_the_interrupted_trial_s_last_steps(tmp_path):
    started = time.time()
    timeline: list[str] = []
    finished_at: dict[str, float] = {}

    def mark(event: str) -> None:
        timeline.append(f"{time.time() - started:6.1f} s  {event}")

    def watch(output: Path) -> dict | None:
        """The run's status now (None before its manifest); every new result goes on the timeline."""
        if not (output / "experiment.json").is_file():
            return None
        status = run_status(output)
        for row in status["trials"]:
            if row["state"] == "done" and row["trial_id"] not in finished_at:
                finished_at[row["trial_id"]] = time.time()
                pid = results(output)[row["trial_id"]]["provenance"]["pid"]
                where = "head" if head.owns(pid) else "worker" if worker and worker.owns(pid) else "a lost"
                mark(f"result of {row['trial_id']} (from the {where} node)")
        return status

    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           "RAY_USAGE_STATS_ENABLED": "0"}
    port = free_port()
    address = f"127.0.0.1:{port}"
    head = LocalNode(["--head", f"--port={port}", "--include-dashboard=false"], env, tmp_path / "head.log")
    nodes = [head]
    driver = worker = None
    try:
        deadline = time.time() + 90
        while cluster_cpus(address, env) < 2:
            assert head.process.poll() is None, (tmp_path / "head.log").read_text()[-2000:]
            if worker is None and cluster_cpus(address, env) >= 1:
                worker = LocalNode([f"--address={address}"], env, tmp_path / "worker.log")
                nodes.append(worker)
            assert time.time() < deadline, "the two-node cluster did not come up"
            time.sleep(0.5)
        mark("cluster up: head and worker node, 1 CPU each")

        # Four trials on two one-CPU nodes: the first two run side by side and end together; the
        # worker node takes the third or the fourth, and runs it while another trial has finished.
        raw = small_pos_experiment(strategies=["baseline"], seeds=[1, 2, 3, 4])
        # long enough that a trial still runs for seconds after its first checkpoints
        raw["finetune"].update({"epochs": 4, "max_train_examples": 200})
        raw["ray"] = {"max_failures": 2}
        path = tmp_path / "experiment.yaml"
        path.write_text(yaml.safe_dump(raw), encoding="utf-8")
        output = tmp_path / "out"
        stderr = tmp_path / "driver.stderr"
        driver = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "run", str(path), "--output",
                                   str(output), "--address", address],
                                  env=env, stdout=subprocess.DEVNULL, stderr=stderr.open("w"),
                                  start_new_session=True)
        mark("driver started: 4 trials, max_failures 2")

        # Wait for a trial that runs on the worker node and has a complete checkpoint in storage
        # with two epochs still to go, while another trial has its result: states really reached.
        victim = None
        deadline = time.time() + 240
        while victim is None:
            assert driver.poll() is None, "the grid ended before the worker node could be lost:\n" + \
                stderr.read_text()[-3000:]
            assert time.time() < deadline, "no trial ran on the worker node after a finished one"
            status = watch(output)
            for row in status["trials"] if status else []:
                info = row.get("running") or {}
                phase = row.get("phase") or {}
                if (row["state"] == "running" and info.get("pid") and worker.owns(info["pid"]) and finished_at
                        and phase.get("phase") == "finetune" and phase.get("epoch", 9) <= 1):
                    victim, victim_pid, seen = row["trial_id"], info["pid"], status
            time.sleep(0.2)
        before = {trial_id: (output / "results" / f"{trial_id}.json").read_bytes() for trial_id in finished_at}
        checkpoint = latest_checkpoint(output / "ray", victim)
        worker.kill()
        mark(f"worker node killed (SIGKILL to all its processes) while {victim} ran there (pid {victim_pid}), "
             f"after its {checkpoint.name} ({(checkpoint_phase(checkpoint) or {}).get('phase')} "
             f"epoch {(checkpoint_phase(checkpoint) or {}).get('epoch')}); {len(before)} trial(s) done")
        assert victim not in results(output), f"{victim} ended before the kill: the machine was too slow to poll"
        # status, read during the run, told the running trials from the others
        states = {row["trial_id"]: row["state"] for row in seen["trials"]}
        assert states[victim] == "running" and all(states[trial_id] == "done" for trial_id in before)

        # Ray notices the lost node; Tune restarts the trial on the head node from its checkpoint
        seen_states: list[tuple[str, int]] = []
        restarted_pid = None
        deadline = time.time() + 240
        while driver.poll() is None:
            assert time.time() < deadline, "the grid did not finish after the node was lost"
            status = watch(output)
            row = {r["trial_id"]: r for r in status["trials"]}[victim]
            info = row.get("running") or {}
            state = (info.get("state", row["state"]), info.get("attempt", 0))
            if state not in seen_states:
                seen_states.append(state)
                failure = (info.get("failures") or [{}])[-1].get("error", "")
                mark(f"status says {victim} {state[0]}" + (f", attempt {state[1]}" if state[1] else "")
                     + (f" (after: {failure[:100]})" if failure else ""))
            if info.get("attempt") == 2 and info.get("pid") and restarted_pid is None:
                restarted_pid = info["pid"]
                mark(f"{victim} reports again, from pid {restarted_pid}")
                assert head.owns(restarted_pid)
            time.sleep(0.2)
        watch(output)
        mark(f"driver exited with status {driver.returncode}")
        user_sees = stderr.read_text()
        assert driver.returncode == 0, user_sees[-4000:]

        # Nothing lost: every planned trial has a result; the lost node's trial resumed from its checkpoint.
        planned = {t["trial_id"] for t in json.loads((output / "experiment.json").read_text())["trials"]}
        finished = results(output)
        assert set(finished) == planned and len(planned) == 4
        assert finished[victim]["provenance"].get("resumed_from", "").startswith("finetune"), \
            finished[victim]["provenance"].get("resumed_from")
        assert finished[victim]["provenance"]["pid"] == restarted_pid
        assert ("retrying", 1) in seen_states and ("running", 2) in seen_states
        assert re.search(rf"{victim} failed \(.+\); Ray Tune restarts it from its latest "
                         rf"checkpoint \(failure 1 of at most 2\)", user_sees)
        # No finished trial reran: results written before the loss are untouched, each trial ended once.
        for trial_id, content in before.items():
            assert (output / "results" / f"{trial_id}.json").read_bytes() == content
        for trial_id in planned:
            assert user_sees.count(f"done {trial_id}: target average") == 1, trial_id
        assert "FAILED" not in user_sees
        final = run_status(output)
        assert final["counts"]["done"] == 4 and final["run"] is None
        assert not (output / "running.json").exists()
    finally:
        print("\n".join(["", "timeline:", *timeline]))
        if driver is not None:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait()
            print("driver stderr (what the user sees):\n" + (tmp_path / "driver.stderr").read_text())
        for node in reversed(nodes):
            node.stop()
        print(f"{time.time() - started:6.1f} s  both nodes stopped")
