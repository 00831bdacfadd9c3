"""The sbatch script that ``alignfreeze template slurm`` prints, for real, on a one-node Slurm
the test starts from Debian's packages (slurmctld, slurmd, munged on 127.0.0.1, see
slurm_cluster.py): a tiny grid COMPLETED with its results and a short job log; then a grid
sent SIGTERM mid-way (``scancel --signal=TERM --batch``, what Slurm sends before a time limit
or on preemption) stops at a checkpoint, requeues itself and finishes without rerunning a
finished trial."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from slurm_cluster import SlurmCluster, missing
from trial_fixtures import small_pos_experiment

pytestmark = pytest.mark.slow
TEMPLATE = Path(__file__).resolve().parents[1] / "orchestrator" / "templates" / "slurm.sbatch"
MAX_LOG_LINES = 40          # the hand-written script of issue 17 logged 255 lines for such a grid


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    reason = missing()
    if reason:
        pytest.skip(f"no Slurm here: {reason}")
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    ray_tmp = tempfile.mkdtemp(prefix="af-sl-", dir="/tmp")     # Ray's node-local dir: short, this test's own
    try:
        yield cluster, ray_tmp
    finally:
        cluster.stop()
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _submit(cluster: SlurmCluster, ray_tmp: str, work: Path, seeds: list[int], nodes: int = 1) -> str:
    """The template as a user edits it for these nodes (2 CPUs each, no GPU), submitted."""
    work.mkdir()
    script = TEMPLATE.read_text()
    script = re.sub(r"^#SBATCH --nodes=.*$", f"#SBATCH --nodes={nodes}", script, flags=re.M)
    script = re.sub(r"^#SBATCH --cpus-per-task=.*$", "#SBATCH --cpus-per-task=2", script, flags=re.M)
    script = re.sub(r"^#SBATCH --gpus-per-node=.*\n", "", script, flags=re.M)
    (work / "job.sbatch").write_text(script)
    experiment = work / "exp.yaml"
    experiment.write_text(yaml.safe_dump(small_pos_experiment(strategies=["baseline"], seeds=seeds)))
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "RAY_NODE_IP": "127.0.0.1", "TMPDIR": ray_tmp, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return cluster.sbatch(f"--chdir={work}", str(work / "job.sbatch"), str(experiment), str(work / "out"), env=env)


def _results(output: Path) -> dict[str, int]:
    return {p.stem: p.stat().st_mtime_ns for p in (output / "results").glob("*.json")}


def _wait(predicate, timeout_s: float, what: str):
    deadline = time.time() + timeout_s
    while not (value := predicate()):
        assert time.time() < deadline, what
        time.sleep(1)
    return value


def test_a_tiny_grid_completes_with_a_short_job_log(slurm, tmp_path):
    cluster, ray_tmp = slurm
    job = _submit(cluster, ray_tmp, tmp_path / "grid", [1, 2])
    ended = cluster.wait_ended(job, 600)
    log = (tmp_path / "grid" / f"alignfreeze-{job}.log").read_text()
    assert ended["JobState"] == "COMPLETED" and ended["ExitCode"] == "0:0", f"{ended}\n{log[-3000:]}"
    assert cluster.client("squeue", "-h", "-j", job, check=False).strip() == ""
    assert len(_results(tmp_path / "grid" / "out")) == 2
    lines = log.splitlines()
    assert len(lines) < MAX_LOG_LINES, log
    assert "[state-dump]" not in log and "raylet" not in log.lower(), log
    assert "baseline      2" in log                               # the run's own table
    assert (tmp_path / "grid" / f"alignfreeze-{job}.ray.log").stat().st_size > 0    # Ray's lines, beside it
    assert not os.path.exists(os.path.join(ray_tmp, f"ray-{job}"))                   # Ray stopped, its files gone


def test_sigterm_mid_grid_requeues_and_the_requeued_job_resumes(slurm, tmp_path):
    cluster, ray_tmp = slurm
    work = tmp_path / "grid"
    job = _submit(cluster, ray_tmp, work, [1, 2, 3, 4])
    output = work / "out"
    _wait(lambda: _results(output) or cluster.job(job)["JobState"] not in ("PENDING", "RUNNING"), 600,
          f"no first result: {cluster.job(job)}")
    assert cluster.job(job)["JobState"] == "RUNNING"
    # what Slurm sends the batch script before the time limit (--signal=B:TERM@120) or on preemption
    cluster.client("scancel", "--signal=TERM", "--batch", job)
    _wait(lambda: int(cluster.job(job)["Restarts"]) >= 1, 300, f"the job did not requeue: {cluster.job(job)}")
    before = _results(output)
    assert 1 <= len(before) < 4, before
    # Slurm holds a requeued job back ~2 minutes (its begin time): let it start now
    cluster.client("scontrol", "update", f"JobId={job}", "StartTime=now", check=False)
    ended = cluster.wait_ended(job, 600)
    log = (work / f"alignfreeze-{job}.log").read_text()                       # both runs (--open-mode=append)
    assert ended["JobState"] == "COMPLETED" and ended["ExitCode"] == "0:0", f"{ended}\n{log[-3000:]}"
    assert "interrupted" in log and f"requeueing job {job}" in log, log
    after = _results(output)
    assert len(after) == 4
    assert {k: after[k] for k in before} == before                 # no finished trial ran again
    assert int(re.findall(r"^ran (\d+) trials", log, flags=re.M)[-1]) == 4 - len(before)    # only the rest


def test_two_nodes_a_head_and_a_worker_through_srun(tmp_path):
    """The multi-node path: two slurmd on this machine (n1, n2), the head on the first, a worker
    started by srun on the second; the grid waits for both, then runs."""
    reason = missing()
    if reason:
        pytest.skip(f"no Slurm here: {reason}")
    ray_tmp = tempfile.mkdtemp(prefix="af-sl-", dir="/tmp")
    cluster = SlurmCluster(tmp_path / "slurm", nodes=2)
    try:
        job = _submit(cluster, ray_tmp, tmp_path / "grid", [1, 2], nodes=2)
        ended = cluster.wait_ended(job, 600)
        log = (tmp_path / "grid" / f"alignfreeze-{job}.log").read_text()
        ray_log = (tmp_path / "grid" / f"alignfreeze-{job}.ray.log").read_text()
        assert ended["JobState"] == "COMPLETED" and ended["ExitCode"] == "0:0", \
            f"{ended}\n{log[-3000:]}\n{ray_log[-3000:]}"
        assert "Ray sees all 2 node(s)" in log
        assert len(_results(tmp_path / "grid" / "out")) == 2
        assert len(log.splitlines()) < MAX_LOG_LINES, log
        assert [d for d in os.listdir(ray_tmp) if d.startswith("ray-")] == []   # head's and worker's Ray files gone
    finally:
        cluster.stop()
        shutil.rmtree(ray_tmp, ignore_errors=True)
