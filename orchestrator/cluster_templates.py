"""Launch files for the clusters researchers' GPUs sit in, written for one experiment.

``alignfreeze template kuberay EXPERIMENT STORAGE`` prints a KubeRay
``RayJob`` (a Kubernetes cluster with the KubeRay operator): the experiment
file in a ConfigMap, a head without GPUs, GPU workers sized from the
experiment's largest trial, the driver as the job's entrypoint writing to
the storage URI. ``alignfreeze template ray-up EXPERIMENT STORAGE`` prints a
Ray cluster launcher config (``ray up``) for AWS with GPU workers. Both use
the Ray and Python versions installed here, and install alignfreeze on the
nodes through the job's runtime environment or the setup commands. Neither
could be run here (no Kubernetes, no cloud account): their tests parse them
and check that the command, the image and the resources agree with the
project. ``alignfreeze template slurm`` prints ``templates/slurm.sbatch``
as it is (it takes the experiment and the output directory as arguments).
"""

from __future__ import annotations

import math
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from trainables.errors import SpecError

TEMPLATES = ("slurm", "kuberay", "ray-up")
GPUS_PER_WORKER = 1        # one GPU a worker pod / instance: trials of a GPU each, or fractions sharing it
CONFIG_PATH = "/alignfreeze"   # where the experiment file is mounted in a KubeRay pod
DEFAULT_WORKERS = 4
STORAGE_SCHEMES = ("s3", "gs", "gcs", "hdfs", "abfs", "abfss")   # what pyarrow's file systems take (no network here)


def ray_version() -> str:
    """The installed Ray's version (read from its metadata: ray is imported by orchestrator.cluster only)."""
    from importlib import metadata

    return metadata.version("ray")


def ray_image() -> str:
    """Ray's GPU image of the installed Ray and Python versions."""
    return f"rayproject/ray:{ray_version()}-py{sys.version_info.major}{sys.version_info.minor}-gpu"


def package_requirement() -> str:
    """What the nodes install: this version of alignfreeze with its cluster extra."""
    from importlib import metadata

    try:
        version = metadata.version("alignfreeze")
    except metadata.PackageNotFoundError:
        return "alignfreeze[cluster]"
    return f"alignfreeze[cluster]=={version}"


def worker_size(experiment: Any) -> tuple[int, int]:
    """(CPUs, GPUs) of one worker: room for its GPU's share of trials, each with its CPUs."""
    requests = list(experiment.resources.values()) or [(1, 0.0)]
    largest = max(g for _, g in requests)
    if largest > GPUS_PER_WORKER:
        raise SpecError(f"a trial asks for {largest:g} GPUs; the templates' workers have {GPUS_PER_WORKER} each: "
                        f"edit the template's worker size")
    # two trials of half a GPU run side by side on one worker, each with its CPUs
    cpus = max(c * (max(1, math.floor(GPUS_PER_WORKER / g)) if g else 1) for c, g in requests)
    return cpus, GPUS_PER_WORKER


def slurm_script() -> str:
    return resources.files("orchestrator").joinpath("templates", "slurm.sbatch").read_text(encoding="utf-8")


def kuberay_manifest(experiment_path: Path, storage: str, workers: int = DEFAULT_WORKERS) -> str:
    """A ConfigMap holding the experiment file and the RayJob that runs it."""
    experiment, text = _experiment(experiment_path, storage)
    name = _kubernetes_name(experiment.name)
    cpus, gpus = worker_size(experiment)
    image = ray_image()
    mount = [{"name": "experiment", "mountPath": CONFIG_PATH, "readOnly": True}]
    volume = [{"name": "experiment", "configMap": {"name": f"alignfreeze-{name}"}}]
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"alignfreeze-{name}"},
                  "data": {experiment_path.name: text}}
    job = {
        "apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": f"alignfreeze-{name}"},
        "spec": {
            "entrypoint": _entrypoint(f"{CONFIG_PATH}/{experiment_path.name}", storage),
            # the nodes install alignfreeze for the job, from the package index the pods use (a
            # custom image FROM the one below, with alignfreeze installed, starts faster)
            "runtimeEnvYAML": yaml.safe_dump({"pip": [package_requirement()]}, sort_keys=False),
            "shutdownAfterJobFinishes": True, "ttlSecondsAfterFinished": 3600,
            "rayClusterSpec": {
                "rayVersion": ray_version(),
                "headGroupSpec": {
                    "rayStartParams": {"dashboard-host": "0.0.0.0", "num-gpus": "0"},
                    "template": {"spec": {"containers": [{
                        "name": "ray-head", "image": image, "volumeMounts": mount,
                        "resources": {"limits": {"cpu": "4", "memory": "16Gi"},
                                      "requests": {"cpu": "4", "memory": "16Gi"}}}],
                        "volumes": volume}}},
                "workerGroupSpecs": [{
                    "groupName": "gpu", "replicas": workers, "minReplicas": workers, "maxReplicas": workers,
                    "rayStartParams": {"num-gpus": str(gpus), "num-cpus": str(cpus)},
                    "template": {"spec": {"containers": [{
                        "name": "ray-worker", "image": image, "volumeMounts": mount,
                        "resources": {"limits": {"cpu": str(cpus), "memory": f"{16 * cpus}Gi",
                                                 "nvidia.com/gpu": str(gpus)},
                                      "requests": {"cpu": str(cpus), "memory": f"{16 * cpus}Gi",
                                                   "nvidia.com/gpu": str(gpus)}}}],
                        "volumes": volume}}}],
            },
        },
    }
    header = (f"# alignfreeze on Kubernetes (KubeRay operator >= 1.1): kubectl apply -f this file.\n"
              f"# Written by `alignfreeze template kuberay` for {experiment_path.name}; untested on a live\n"
              f"# cluster. Results go to {storage}: the pods need its credentials (AWS_* / GOOGLE_*\n"
              f"# env vars in the containers, or the cloud's workload identity). Ray's token\n"
              f"# authentication: see KubeRay's docs for your operator version.\n")
    return header + yaml.dump_all([config_map, job], Dumper=_Dumper, sort_keys=False)


def ray_up_config(experiment_path: Path, storage: str, workers: int = DEFAULT_WORKERS) -> str:
    """A Ray cluster launcher config for AWS: a CPU head, GPU workers, alignfreeze installed."""
    experiment, _ = _experiment(experiment_path, storage)
    cpus, gpus = worker_size(experiment)
    remote = f"~/alignfreeze/{experiment_path.name}"
    setup = ["pip install -q 'torch==2.13.0'", f"pip install -q '{package_requirement()}'"]
    config = {
        "cluster_name": f"alignfreeze-{_kubernetes_name(experiment.name)}",
        "max_workers": workers,
        "provider": {"type": "aws", "region": "us-east-1", "cache_stopped_nodes": False},
        "auth": {"ssh_user": "ubuntu"},
        "docker": {"image": ray_image(), "container_name": "ray", "pull_before_run": True,
                   "run_options": ["--ulimit nofile=65536:65536"]},
        "available_node_types": {
            "head": {"node_config": {"InstanceType": "m5.2xlarge"}, "resources": {"CPU": 8, "GPU": 0},
                     "min_workers": 0, "max_workers": 0},
            "gpu_worker": {"node_config": {"InstanceType": "g5.2xlarge"},   # 1 A10G (24 GB), 8 vCPUs
                           "resources": {"CPU": max(cpus, 8), "GPU": gpus},
                           "min_workers": workers, "max_workers": workers},
        },
        "head_node_type": "head",
        "file_mounts": {remote: str(experiment_path.resolve())},
        "setup_commands": setup,
        "head_start_ray_commands": ["ray stop", "ray start --head --port=6379 --dashboard-host=0.0.0.0 "
                                    "--autoscaling-config=~/ray_bootstrap_config.yaml"],
        "worker_start_ray_commands": ["ray stop", "ray start --address=$RAY_HEAD_IP:6379"],
    }
    header = (f"# alignfreeze on AWS with Ray's cluster launcher; untested on a live cloud account.\n"
              f"#   ray up cluster.yaml\n"
              f"#   ray exec cluster.yaml '{_entrypoint(remote, storage)}' --tmux\n"
              f"# or, with the dashboard forwarded (ray dashboard cluster.yaml), as a Ray Job:\n"
              f"#   ray job submit --address http://127.0.0.1:8265 -- {_entrypoint(remote, storage)}\n"
              f"# Results go to {storage}: give the instances an IAM role that can write it. Only the\n"
              f"# experiment file is copied: its data must be Hub sources or paths the nodes have.\n")
    return header + yaml.dump(config, Dumper=_Dumper, sort_keys=False)


def _entrypoint(experiment: str, storage: str) -> str:
    return f"alignfreeze run {experiment} --output {storage} --address auto"


def _experiment(path: Path, storage: str) -> tuple[Any, str]:
    """The validated experiment (its resources size the workers) and the file's text."""
    from orchestrator.experiment import load_experiment_file

    scheme = storage.partition("://")[0]
    if "://" not in storage or scheme not in STORAGE_SCHEMES:
        raise SpecError(f"storage {storage!r}: a cluster's nodes write results to a storage URI they share "
                        f"({', '.join(s + '://' for s in STORAGE_SCHEMES)})")
    experiment = load_experiment_file(path)
    return experiment, path.read_text(encoding="utf-8")


def _kubernetes_name(name: str) -> str:
    """A DNS-1123 label from the experiment's name (without a leading "alignfreeze-": it is added)."""
    cleaned = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    cleaned = cleaned.removeprefix("alignfreeze-")
    return cleaned[:40].strip("-") or "experiment"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the experiment file in the ConfigMap) as readable literal blocks;
    no anchors and aliases (kubectl reads them, people reading the manifest stumble on them)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _literal(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _literal)
