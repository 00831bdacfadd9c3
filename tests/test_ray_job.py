"""A grid submitted as a Ray Job, for real: a local head with the dashboard on 127.0.0.1
(token authentication, as a cluster has by default), the job's own runtime env setting a
variable the driver also forwards (HF_HUB_OFFLINE), the job SUCCEEDED with every result;
then a job stopped mid-grid and submitted again finishes the rest without rerunning a
finished trial."""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from pathlib import Path

import pytest
import yaml

from local_ray import LocalNode, free_port
from trial_fixtures import small_pos_experiment

pytestmark = pytest.mark.slow
ALIGNFREEZE = Path(sys.executable).with_name("alignfreeze")


def _wait(predicate, timeout_s: float, what: str, log: Path):
    deadline = time.time() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        assert time.time() < deadline, f"{what} (head log: {log.read_text()[-1500:] if log.exists() else ''})"
        time.sleep(1)


def test_a_grid_as_a_ray_job_with_its_own_environment_and_resumed_after_a_stop(tmp_path):
    pytest.importorskip("ray.dashboard.modules.job.sdk")
    from ray.job_submission import JobStatus, JobSubmissionClient

    token = secrets.token_hex(32)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_USAGE_STATS_ENABLED": "0"}
    dashboard = free_port()
    log = tmp_path / "head.log"
    head = LocalNode(["--head", f"--port={free_port()}", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                      f"--dashboard-port={dashboard}"], env, log)
    try:
        def client():
            try:
                return JobSubmissionClient(f"http://127.0.0.1:{dashboard}",
                                           headers={"Authorization": f"Bearer {token}"})
            except Exception:             # the dashboard is still starting
                return None
        jobs = _wait(client, 120, "the dashboard did not come up", log)
        output = tmp_path / "out"

        def submit(seeds: list[int]) -> str:
            path = tmp_path / f"grid-{len(seeds)}.yaml"
            path.write_text(yaml.safe_dump(small_pos_experiment(strategies=["baseline"], seeds=seeds)))
            return jobs.submit_job(
                entrypoint=f"{ALIGNFREEZE} run {path} --address auto --output {output}",
                runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}})

        def ended(job: str):
            status = jobs.get_job_status(job)
            return status if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED) else None

        def results() -> dict[str, int]:
            return {p.stem: p.stat().st_mtime_ns for p in (output / "results").glob("*.json")}

        first = submit([1, 2])
        assert _wait(lambda: ended(first), 300, "the first job did not end", log) == JobStatus.SUCCEEDED, \
            jobs.get_job_logs(first)[-3000:]
        assert len(results()) == 2
        before = results()

        # the same grid grown to four seeds, stopped once a third trial has its result
        second = submit([1, 2, 3, 4])
        _wait(lambda: len(results()) >= 3 or ended(second), 300, "no third result", log)
        jobs.stop_job(second)
        assert _wait(lambda: ended(second), 120, "the job did not stop", log) in (JobStatus.STOPPED,
                                                                                   JobStatus.SUCCEEDED)
        third = submit([1, 2, 3, 4])
        assert _wait(lambda: ended(third), 300, "the resubmitted job did not end", log) == JobStatus.SUCCEEDED, \
            jobs.get_job_logs(third)[-3000:]
        after = results()
        assert len(after) == 4
        assert {k: after[k] for k in before} == before          # no finished trial ran again
        manifest = json.loads((output / "experiment.json").read_text())
        assert len(manifest["trials"]) == 4
    finally:
        head.stop()
