"""Ray's dashboard tells a grid's trials apart, for real: a driver runs a tiny grid on a local
Ray with the dashboard on 127.0.0.1 (``run_experiment(..., dashboard=True)``, what
``alignfreeze run --dashboard`` does); while it runs, Ray's state API lists each trial's
actor under its trial id, and the node's metrics endpoint (the Prometheus scrape target
behind the dashboard) has the grid's metrics with a trial_id label."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from trial_fixtures import small_pos_experiment

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

DRIVER = """
import sys, threading, time
sys.path[:0] = [{root!r}, {tests!r}]
from pathlib import Path
from orchestrator.experiment import load_experiment_file
from orchestrator.runner import run_experiment

def metrics_port():
    import ray
    while not ray.is_initialized():
        time.sleep(0.2)
    time.sleep(1)
    ports = [node.get("MetricsExportPort") for node in ray.nodes() if node.get("Alive")]
    print(f"metrics-port: {{ports[0]}}", file=sys.stderr, flush=True)

threading.Thread(target=metrics_port, daemon=True).start()
summary = run_experiment(load_experiment_file(sys.argv[1]), Path(sys.argv[2]), verbose=0, dashboard=True)
print(f"summary: ran {{summary['ran']}} errors {{summary['errors']}}", file=sys.stderr, flush=True)
"""


class _Instrument:
    def __init__(self):
        self.values: list[tuple[float, dict[str, str]]] = []

    def set(self, value, tags=None):
        self.values.append((value, dict(tags or {})))

    inc = set


@pytest.fixture
def instruments(monkeypatch):
    from trainables import trial_metrics

    fakes: dict[str, _Instrument] = {}
    for name in (*trial_metrics.DESCRIPTIONS, "optimizer_steps_total", "trials"):
        fakes[name] = _Instrument()
        monkeypatch.setitem(trial_metrics._instruments, name, fakes[name])
    return fakes


def test_a_trials_points_set_its_metrics_at_logging_steps_only_also_without_tensorboard(tmp_path, instruments):
    import torch

    from trainables.trial_metrics import MeteredCurves

    curves = MeteredCurves(None, "t1", every=2)
    phase = curves.phase("finetune", total_steps=5)
    for step in range(1, 6):
        phase.add(100, task=torch.tensor(float(step)), realignment=torch.tensor(0.5))
        if phase.due(step):
            phase.log(step, learning_rate=1e-3, grad_norm=torch.tensor(1.0))
    phase.scalars(5, {"test/fr/accuracy": 0.5})           # the evaluation: no training point
    curves.close()
    assert [v for v, _ in instruments["task_loss"].values] == [1.5, 3.5, 5.0]   # means since the last point
    assert [v for v, _ in instruments["optimizer_step"].values] == [2, 4, 5]
    assert [v for v, _ in instruments["optimizer_steps_total"].values] == [2, 2, 1]
    assert all(tags == {"trial_id": "t1", "phase": "finetune"} for _, tags in instruments["realignment_loss"].values)
    assert len(instruments["tokens_per_second"].values) == 3 and len(instruments["steps_per_second"].values) == 3
    assert not list(tmp_path.iterdir())                  # no TensorBoard file anywhere


def test_the_trials_by_state(instruments):
    from trainables.trial_metrics import GridMetrics

    grid = GridMetrics("out")
    grid.update(["RUNNING", "PENDING", "PENDING", "TERMINATED", "ERROR"])
    grid.update(["TERMINATED"] * 5)                      # within a second: skipped
    assert {tags["state"]: v for v, tags in instruments["trials"].values} == \
        {"pending": 2, "running": 1, "paused": 0, "done": 1, "error": 1}
    grid.update(["TERMINATED"] * 5, force=True)
    assert {tags["state"]: v for v, tags in instruments["trials"].values[-5:]}["done"] == 5
    assert all(tags["grid"] == "out" for _, tags in instruments["trials"].values)


def test_connect_starts_the_dashboard_on_loopback_only_when_asked_and_prints_its_address(monkeypatch, capsys):
    import ray

    from orchestrator import cluster

    calls = []

    class Context:
        dashboard_url = "127.0.0.1:8266"

    def init(**options):
        calls.append(options)
        return Context() if options.get("include_dashboard") or options.get("address") else type("C", (), {})()

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(cluster, "node_resources", lambda: [])
    cluster.connect(dashboard=True)
    assert calls[-1]["include_dashboard"] is True and calls[-1]["dashboard_host"] == "127.0.0.1"
    assert capsys.readouterr().err == "dashboard: http://127.0.0.1:8266\n"
    cluster.connect()
    assert calls[-1]["include_dashboard"] is False and "dashboard_host" not in calls[-1]
    assert capsys.readouterr().err == ""
    cluster.connect(address="auto")                      # a cluster's dashboard, printed either way
    assert "include_dashboard" not in calls[-1]
    assert capsys.readouterr().err == "dashboard: http://127.0.0.1:8266\n"


def test_the_trial_actor_is_named_after_its_trial(tmp_path):
    from orchestrator.experiment import load_experiment_file
    from trainables.ray_trainable import AlignfreezeTrial, trial_resources

    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(small_pos_experiment()))
    spec = load_experiment_file(path).trials[0]
    actor = AlignfreezeTrial.__new__(AlignfreezeTrial)     # what Ray calls repr() on once Tune made it
    actor.config = {"run": {"trial": spec.to_dict()}}
    assert AlignfreezeTrial.__name__ == "AlignfreezeTrial"
    assert repr(actor) == spec.trial_id
    assert AlignfreezeTrial.default_resource_request(actor.config).bundles == trial_resources(actor.config).bundles


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read().decode("utf-8", "replace")


@pytest.mark.slow
def test_the_dashboard_lists_each_trial_by_its_id_and_the_grid_metrics_reach_prometheus(tmp_path, monkeypatch):
    pytest.importorskip("ray.dashboard")
    from ray.util.state import StateApiClient
    from ray.util.state.common import ListApiOptions, StateResource

    from orchestrator.experiment import load_experiment_file

    raw = small_pos_experiment(strategies=["baseline", "full"], seeds=[1])
    raw["finetune"].update({"epochs": 6})
    raw["tensorboard"] = {"every": 1}        # a metrics point at every optimizer step
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw))
    trial_ids = {trial.trial_id for trial in load_experiment_file(path).trials}
    assert len(trial_ids) == 2
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(root=str(ROOT), tests=str(TESTS)))
    # token authentication (Ray's default): the driver's Ray and this test's state API client share it
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    token = secrets.token_hex(32)
    monkeypatch.setenv("RAY_AUTH_TOKEN", token)
    # metrics reach the node's endpoint every second (Ray's default: every 10 s)
    env = {**os.environ, "RAY_metrics_report_interval_ms": "1000", "RAY_USAGE_STATS_ENABLED": "0",
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    driver = subprocess.Popen([sys.executable, str(script), str(path), str(tmp_path / "out")], cwd=tmp_path,
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(driver.stderr), daemon=True)
    reader.start()

    def found(pattern: str) -> str | None:
        for line in list(lines):
            match = re.match(pattern, line.strip())
            if match:
                return match.group(1)
        return None

    seen_actors: set[str] = set()
    errors: list[str] = []
    metric_lines: dict[str, set[str]] = {}
    try:
        deadline = time.time() + 240
        while driver.poll() is None and time.time() < deadline:
            time.sleep(0.5)
            dashboard = found(r"dashboard: (http://127\.0\.0\.1:\d+)$")
            port = found(r"metrics-port: (\d+)$")
            if dashboard:
                try:
                    # what `ray list actors --detail` and the dashboard's actor list show
                    client = StateApiClient(address=dashboard, headers={"Authorization": f"Bearer {token}"})
                    actors = client.list(StateResource.ACTORS, options=ListApiOptions(detail=True),
                                         raise_on_missing_output=False)
                except Exception as error:     # the dashboard is still starting
                    errors.append(repr(error)[:1500])
                    actors = []
                seen_actors |= {actor.repr_name for actor in actors if actor.repr_name}
                seen_actors |= {actor.class_name for actor in actors}
            if port:
                try:
                    text = _get(f"http://127.0.0.1:{port}/metrics")
                except OSError:
                    text = ""
                for line in text.splitlines():
                    match = re.match(r"(ray_alignfreeze_\w+)\{(.*)\}", line)
                    if match:
                        metric_lines.setdefault(match.group(1), set()).add(match.group(2))
        assert driver.wait(timeout=max(1.0, deadline - time.time())) == 0, "".join(lines)[-3000:]
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, 9)
            driver.wait()
    reader.join(timeout=10)
    text = "".join(lines)
    assert "summary: ran 2 errors 0" in text, text[-3000:]
    dashboard_lines = [line for line in lines if line.startswith("dashboard: ")]
    assert len(dashboard_lines) == 1 and re.fullmatch(r"dashboard: http://127\.0\.0\.1:\d+\n", dashboard_lines[0])

    # each trial's actor by its id (Tune reuses an actor: at least the first trial's)
    assert seen_actors & trial_ids, (seen_actors, len(errors), errors[:1], errors[-1:], sorted(metric_lines))
    assert "AlignfreezeTrial" in seen_actors, seen_actors
    assert "ImplicitFunc" not in seen_actors
    print("actors seen:", sorted(seen_actors))
    # the grid's metrics, per trial where they belong
    for name in ("ray_alignfreeze_task_loss", "ray_alignfreeze_tokens_per_second",
                 "ray_alignfreeze_steps_per_second", "ray_alignfreeze_optimizer_step"):
        labels = metric_lines.get(name, set())
        assert any(f'trial_id="{trial}"' in label for label in labels for trial in trial_ids), \
            (name, sorted(metric_lines))
    assert any('phase="realignment"' in label for label in metric_lines.get("ray_alignfreeze_realignment_loss", ())), \
        sorted(metric_lines)
    states = metric_lines.get("ray_alignfreeze_trials", set())
    assert any('state="running"' in label and 'grid="out"' in label for label in states), sorted(states)
    # the trials' own log lines name their trial
    assert all(f"[{trial}] fine-tuning" in text for trial in trial_ids), text[-3000:]
    results = json.loads((tmp_path / "out" / "experiment.json").read_text())
    assert len(results["trials"]) == 2
