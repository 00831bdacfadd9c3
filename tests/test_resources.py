"""Resources per model and per task, checked against the largest node; ``ray:`` settings
validated; the driver's environment reaching trials on another node."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.cluster import check_resources, trial_environment
from orchestrator.experiment import experiment_from_dict
from trainables.errors import SpecError

from trial_fixtures import small_nli_experiment, small_pos_experiment

ROOT = Path(__file__).resolve().parents[1]


def two_by_two(resources=None, ray=None) -> dict:
    """tiny-mbert and tiny-distilmbert x PoS and NLI, baselines only."""
    raw = small_pos_experiment(strategies=["baseline"], models=["tiny-mbert", "tiny-distilmbert"],
                               tasks=["pos", "nli"])
    raw["data"]["nli"] = small_nli_experiment()["data"]["nli"]
    raw.pop("resources", None)
    if resources is not None:
        raw["resources"] = resources
    if ray is not None:
        raw["ray"] = ray
    return raw


def requests_of(raw: dict) -> dict[tuple[str, str], tuple[int, float]]:
    experiment = experiment_from_dict(raw)
    assert len(experiment.trials) == 4
    # every trial carries its own request, and the experiment's view agrees with the trials
    assert experiment.resources == {(t.model, t.task): (t.cpus, t.gpus) for t in experiment.trials}
    return experiment.resources


def write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def error_line(tmp_path: Path, capsys, raw: dict) -> str:
    assert main(["run", str(write(tmp_path, raw)), "--dry-run"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines, "no error printed"
    return lines[-1]


# ------------------------------------------------------------------ resources

def test_flat_resources_apply_to_every_trial():
    requests = requests_of(two_by_two({"cpus": 2, "gpus": 0.25}))
    assert set(requests.values()) == {(2, 0.25)}
    assert set(requests_of(two_by_two()).values()) == {(1, 0.0)}     # built-in default


def test_model_overrides_task_overrides_default_key_by_key():
    requests = requests_of(two_by_two({"default": {"cpus": 4, "gpus": 1},
                                       "tasks": {"nli": {"cpus": 8}},
                                       "models": {"tiny-distilmbert": {"gpus": 0.5}, "tiny-mbert": {"cpus": 2}}}))
    assert requests == {("tiny-mbert", "pos"): (2, 1.0),           # model's cpus, default's gpus
                        ("tiny-mbert", "nli"): (2, 1.0),           # model beats task
                        ("tiny-distilmbert", "pos"): (4, 0.5),     # default's cpus, model's gpus
                        ("tiny-distilmbert", "nli"): (8, 0.5)}     # task's cpus, model's gpus


def test_resources_do_not_change_trial_ids():
    plain = {t.trial_id for t in experiment_from_dict(two_by_two()).trials}
    more = {t.trial_id for t in experiment_from_dict(two_by_two({"default": {"cpus": 3},
                                                                 "models": {"tiny-mbert": {"gpus": 1}}})).trials}
    assert plain == more


@pytest.mark.parametrize("resources, expected", [
    ({"cpus": 0}, "resources.cpus must be an integer from 1 to 4096, got 0"),
    ({"cpus": 1.5}, "resources.cpus must be an integer from 1 to 4096, got 1.5"),
    ({"gpus": "one"}, "resources.gpus must be a number from 0 to 1024, got 'one'"),
    ({"default": {"gpus": -1}}, "resources.default.gpus must be a number from 0 to 1024, got -1"),
    ({"tasks": {"nli": {"cpus": True}}}, "resources.tasks.nli.cpus must be an integer from 1 to 4096, got True"),
    ({"models": {"tiny-mbrt": {"gpus": 1}}}, "unknown model in resources.models 'tiny-mbrt'; did you mean tiny-mbert"),
    ({"tasks": {"qa": {"cpus": 2}}}, "unknown task in resources.tasks 'qa'"),
    ({"models": {"tiny-mbert": {"gpu": 1}}}, "unknown key in resources.models.tiny-mbert 'gpu'; did you mean gpus"),
    ({"defaults": {"cpus": 2}}, "unknown key in resources 'defaults'; did you mean default"),
    ({"cpus": 2, "default": {"cpus": 2}}, "resources: give either 'default' or flat cpus/gpus, not both"),
    ({"models": ["tiny-mbert"]}, "resources.models must be a mapping, got list"),
])
def test_bad_resources_are_one_line(tmp_path, capsys, resources, expected):
    line = error_line(tmp_path, capsys, two_by_two(resources))
    assert line.startswith("alignfreeze: error: ") and expected in line


# ------------------------------------------------------------------ ray settings

def test_ray_settings_defaults():
    ray = experiment_from_dict(two_by_two()).ray
    assert ray["max_failures"] == 2 and ray["reuse_actors"] is True
    chosen = experiment_from_dict(two_by_two(ray={"max_failures": 0, "max_concurrent_trials": 3,
                                                  "reuse_actors": False, "address": "auto",
                                                  "num_cpus": 2, "num_gpus": 0})).ray
    assert chosen == {"max_failures": 0, "max_concurrent_trials": 3, "reuse_actors": False,
                      "address": "auto", "num_cpus": 2, "num_gpus": 0}


@pytest.mark.parametrize("ray, expected", [
    ({"max_failures": "two"}, "ray.max_failures must be an integer from 0 to 1000, got 'two'"),
    ({"max_failures": -1}, "ray.max_failures must be an integer from 0 to 1000, got -1"),
    ({"max_concurrent_trials": 0}, "ray.max_concurrent_trials must be an integer from 1 to 100000, or null (as many as fit), got 0"),
    ({"max_concurrent_trials": 2.5}, "ray.max_concurrent_trials must be an integer from 1 to 100000, or null (as many as fit), got 2.5"),
    ({"reuse_actors": "false"}, "ray.reuse_actors must be true or false, got 'false'"),
    ({"num_cpus": "4"}, "ray.num_cpus must be an integer from 1 to 100000, got '4' (a number, not a string: remove the quotes)"),
    ({"num_gpus": 0.5}, "ray.num_gpus must be an integer from 0 to 100000, got 0.5"),
    ({"address": 6379}, "ray.address must be a string, got 6379"),
    ({"max_failure": 1}, "unknown key in ray 'max_failure'; did you mean max_failures"),
    ("auto", "ray must be a mapping, got str"),
])
def test_bad_ray_settings_are_one_line(tmp_path, capsys, ray, expected):
    line = error_line(tmp_path, capsys, two_by_two(ray=ray))
    assert line.startswith("alignfreeze: error: ") and expected in line


# ------------------------------------------------------------------ the cluster check

ONE_BIG_CPU_NODE = {"CPU": 16.0, "memory": 1e11}
TWO_SMALL_GPU_NODES = [{"CPU": 4.0, "GPU": 1.0}, {"CPU": 4.0, "GPU": 1.0}]


def test_a_trial_fits_when_one_node_holds_it():
    check_resources(TWO_SMALL_GPU_NODES, {("m", "pos"): (4, 1.0), ("m", "nli"): (2, 0.5)})
    check_resources([ONE_BIG_CPU_NODE, {"CPU": 1.0, "GPU": 2.0}], {("m", "pos"): (1, 2.0), ("n", "pos"): (16, 0)})


def test_the_cluster_total_does_not_count_only_the_largest_node():
    # 8 CPUs and 2 GPUs in all, but no node has 8 CPUs, nor 2 GPUs
    for request in [(8, 1.0), (2, 2.0)]:
        with pytest.raises(SpecError) as error:
            check_resources(TWO_SMALL_GPU_NODES, {("m", "pos"): (1, 0.0), ("xlm-roberta-base", "nli"): request})
        message = str(error.value)
        assert "\n" not in message
        assert message.startswith(f"trials of xlm-roberta-base on nli ask for {request[0]} CPU(s) and "
                                  f"{request[1]:g} GPU(s) each, more than any node")
        assert "largest: 4 CPU(s), 1 GPU(s); 2 node(s)" in message
    # CPUs and GPUs on different nodes: the GPU node is named as the largest for a GPU trial
    with pytest.raises(SpecError, match=r"largest: 1 CPU\(s\), 1 GPU\(s\)"):
        check_resources([ONE_BIG_CPU_NODE, {"CPU": 1.0, "GPU": 1.0}], {("m", "pos"): (2, 1.0)})


def test_gpus_on_a_cluster_without_any_keep_their_clear_refusal():
    with pytest.raises(SpecError) as error:
        check_resources([ONE_BIG_CPU_NODE, ONE_BIG_CPU_NODE], {("tiny-mbert", "pos"): (1, 0.5)})
    assert str(error.value).startswith("trials ask for 0.5 GPU each but the Ray cluster has 0 (tiny-mbert on pos)")


# ------------------------------------------------------------------ what trials get

def test_trial_environment_carries_caches_offline_flags_and_tokenizer_threads():
    driver = {"ALIGNFREEZE_CACHE": "/shared/cache", "ALIGNFREEZE_REALIGNED_CACHE": "/shared/realigned",
              "ALIGNFREEZE_MUSE_URL": "http://mirror/muse", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
              "HF_HOME": "/shared/hf", "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "true",
              "PATH": "/usr/bin", "AWS_SECRET_ACCESS_KEY": "x", "CUDA_VISIBLE_DEVICES": "0", "HOME": "/root"}
    env = trial_environment(driver)
    assert env == {k: v for k, v in driver.items()
                   if k not in ("PATH", "AWS_SECRET_ACCESS_KEY", "CUDA_VISIBLE_DEVICES", "HOME")}
    # tokenizers' own threads stay off unless the driver says otherwise
    assert trial_environment({})["TOKENIZERS_PARALLELISM"] == "false"


def test_tune_reserves_each_trials_own_resources():
    from ray import tune
    from ray.tune.trainable.function_trainable import wrap_function

    from trainables.ray_trainable import alignfreeze_trainable, trial_resources

    experiment = experiment_from_dict(two_by_two({"default": {"cpus": 2}, "models": {"tiny-distilmbert": {"gpus": 0.5}}}))
    trainable = wrap_function(tune.with_resources(alignfreeze_trainable, trial_resources))
    for spec in experiment.trials:
        config = {"run": {"trial": spec.to_dict(), "resume_from": None}}
        reserved = trainable.default_resource_request(config).required_resources
        assert reserved.get("CPU") == spec.cpus and reserved.get("GPU", 0) == spec.gpus
    assert {t.gpus for t in experiment.trials} == {0.0, 0.5}


# ------------------------------------------------------------------ a two-node cluster

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def two_node_cluster(tmp_path):
    """A head with no CPU and one fake GPU, and a worker node with 1 CPU and no GPU, each started
    by ``ray start`` in an environment of its own: the node's realigned-encoder cache differs from
    the driver's, and the node has no offline flags. Yields the address and the environment a
    driver needs (Ray reads its authentication mode once per process: drivers run as subprocesses)."""
    ray_bin = str(Path(sys.executable).parent / "ray")
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0"}
    node_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("ALIGNFREEZE_REALIGNED", "HF_", "TOKENIZERS", "RAY_"))}
    node_env.update(auth, ALIGNFREEZE_REALIGNED_CACHE=str(tmp_path / "node-realigned"))
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # The head's own temp dir keeps its address out of /tmp/ray: other Ray instances on this machine
    # (ray.init() without an address) must not join it. Short: Ray's socket paths must fit in 107 bytes.
    temp_dir = tempfile.mkdtemp(prefix="af-ray-", dir="/tmp")
    common = ["--block", "--node-ip-address=127.0.0.1"]
    nodes = [subprocess.Popen([ray_bin, "start", "--head", f"--port={port}", "--num-cpus=0", "--num-gpus=1",
                               "--include-dashboard=false", f"--temp-dir={temp_dir}", *common],
                              env=node_env, start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    driver_env = {**os.environ, **auth}
    count_nodes = [sys.executable, "-c", "import ray; ray.init(address=%r, logging_level='ERROR'); "
                   "print(sum(1 for n in ray.nodes() if n['Alive']))" % address]
    try:
        deadline = time.time() + 120
        while True:
            assert all(node.poll() is None for node in nodes), "a node of the test cluster died"
            counted = subprocess.run(count_nodes, env=driver_env, capture_output=True, text=True, timeout=60)
            joined = int(counted.stdout.strip() or 0) if counted.returncode == 0 else 0
            if joined == 2:
                break
            if joined == 1 and len(nodes) == 1:
                nodes.append(subprocess.Popen([ray_bin, "start", f"--address={address}", "--num-cpus=1", *common],
                                              env=node_env, start_new_session=True, stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
            assert time.time() < deadline, f"the two-node cluster did not come up ({joined} node(s))"
            time.sleep(1)
        yield {"address": address, "driver_env": driver_env, "node_cache": tmp_path / "node-realigned"}
    finally:
        for node in nodes:
            try:
                os.killpg(node.pid, signal.SIGKILL)     # the node's raylet, GCS and workers share its group
            except ProcessLookupError:
                pass
            node.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.slow
def test_trials_on_a_two_node_cluster(tmp_path, two_node_cluster):
    address = two_node_cluster["address"]
    driver_cache = tmp_path / "driver-realigned"
    env = {**two_node_cluster["driver_env"], "ALIGNFREEZE_REALIGNED_CACHE": str(driver_cache),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}

    def run(raw: dict, output: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "orchestrator.cli", "run", str(write(tmp_path, raw)),
                               "--output", str(output), "--address", address],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)

    # 1 CPU and 1 GPU in all, but on two nodes: a trial asking for both is refused at once
    raw = small_pos_experiment(strategies=["front"], resources={"cpus": 1, "gpus": 1})
    raw["finetune"]["epochs"] = 1
    refused = run(raw, tmp_path / "refused")
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert refused.stderr.strip().splitlines()[-1] == (
        "alignfreeze: error: trials of tiny-mbert on pos ask for 1 CPU(s) and 1 GPU(s) each, more than any node "
        "of the Ray cluster has (largest: 0 CPU(s), 1 GPU(s); 2 node(s)): lower their resources or add a "
        "larger node")
    assert not (tmp_path / "refused" / "driver.lock").exists()

    # a CPU trial runs on the worker node (the head has no CPU) and realigns into the driver's cache
    raw["resources"] = {"cpus": 1, "gpus": 0}
    output = tmp_path / "out"
    ran = run(raw, output)
    assert ran.returncode == 0, ran.stderr[-3000:]
    [result] = [json.loads(p.read_text()) for p in (output / "results").glob("*.json")]
    assert result["provenance"]["realignment_cache"]["hit"] is False
    assert list(driver_cache.rglob("complete")), "the trial did not use the driver's ALIGNFREEZE_REALIGNED_CACHE"
    assert not two_node_cluster["node_cache"].exists(), "the trial used the node's own cache"


def test_a_ray_jobs_own_variables_are_not_forwarded_again():
    """Inside a Ray Job, a variable the job's runtime env sets is left to the job: Ray
    refuses a driver runtime env that sets it again ("Failed to merge the Job's runtime env")."""
    import json

    from orchestrator.cluster import driver_runtime_env

    job = json.dumps({"runtime_env": {"env_vars": {"HF_HUB_OFFLINE": "1"}, "working_dir": "gcs://x.zip"}})
    environ = {"HF_HUB_OFFLINE": "1", "HF_HOME": "/cache/hf", "PATH": "/bin", "RAY_JOB_CONFIG_JSON_ENV_VAR": job}
    assert driver_runtime_env(environ) == {"env_vars": {"HF_HOME": "/cache/hf", "TOKENIZERS_PARALLELISM": "false"}}
    # outside a job, everything the trials read is forwarded
    assert driver_runtime_env({"HF_HUB_OFFLINE": "1"}) == \
        {"env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}}
    # a job that sets every forwarded variable leaves the driver nothing to add
    job = json.dumps({"runtime_env": {"env_vars": {"TOKENIZERS_PARALLELISM": "true"}}})
    assert driver_runtime_env({"RAY_JOB_CONFIG_JSON_ENV_VAR": job}) == {}
