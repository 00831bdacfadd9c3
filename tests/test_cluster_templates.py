"""The KubeRay and cluster-launcher templates cannot run here (no Kubernetes, no cloud):
they are parsed, and their command, image and resources checked against the project."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest
import ray
import yaml

from orchestrator.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "search_spaces" / "paper.yaml"
STORAGE = "s3://bucket/runs/paper"
IMAGE = f"rayproject/ray:{ray.__version__}-py{sys.version_info.major}{sys.version_info.minor}-gpu"


def _printed(capsys, *argv) -> str:
    assert main(["template", *argv]) == 0
    return capsys.readouterr().out


def _runs_the_experiment(command: str, experiment: str) -> None:
    """``command`` is an alignfreeze run this CLI accepts, of ``experiment``, to STORAGE, on the cluster."""
    words = shlex.split(command)
    assert words[0] == "alignfreeze"
    args = build_parser().parse_args(words[1:])
    assert (args.command, str(args.experiment), args.output, args.address) == ("run", experiment, STORAGE, "auto")


def test_kuberay_manifest(capsys):
    config_map, job = yaml.safe_load_all(_printed(capsys, "kuberay", str(PAPER), STORAGE, "--workers", "6"))
    assert config_map["kind"] == "ConfigMap" and config_map["data"] == {"paper.yaml": PAPER.read_text()}
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    spec = job["spec"]
    _runs_the_experiment(spec["entrypoint"], "/alignfreeze/paper.yaml")
    assert yaml.safe_load(spec["runtimeEnvYAML"])["pip"][0].startswith("alignfreeze[cluster]")
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == ray.__version__
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    (workers,) = cluster["workerGroupSpecs"]
    assert workers["replicas"] == 6
    for group in (head, workers):
        (container,) = group["template"]["spec"]["containers"]
        assert container["image"] == IMAGE
        assert container["volumeMounts"][0]["mountPath"] == "/alignfreeze"
        assert group["template"]["spec"]["volumes"][0]["configMap"]["name"] == config_map["metadata"]["name"]
    (worker,) = workers["template"]["spec"]["containers"]
    limits = worker["resources"]["limits"]
    # the paper: 4 CPUs and 1 GPU a trial, DistilmBERT 0.5 GPU: two of them share a worker's GPU
    assert limits["nvidia.com/gpu"] == workers["rayStartParams"]["num-gpus"] == "1"
    assert limits["cpu"] == workers["rayStartParams"]["num-cpus"] == "8"


def test_ray_up_config(capsys):
    text = _printed(capsys, "ray-up", str(PAPER), STORAGE)
    config = yaml.safe_load(text)
    assert config["provider"]["type"] == "aws" and config["docker"]["image"] == IMAGE
    worker = config["available_node_types"]["gpu_worker"]
    assert worker["resources"]["GPU"] == 1 and worker["resources"]["CPU"] >= 8
    assert config["available_node_types"]["head"]["resources"]["GPU"] == 0
    assert config["file_mounts"] == {"~/alignfreeze/paper.yaml": str(PAPER)}
    assert config["setup_commands"][0] == "pip install -q 'torch==2.13.0'"
    assert any(c.startswith("pip install -q 'alignfreeze[cluster]") for c in config["setup_commands"])
    command = next(line for line in text.splitlines() if line.startswith("#   ray job submit"))
    _runs_the_experiment(command.split(" -- ", 1)[1], "~/alignfreeze/paper.yaml")


def test_slurm_script_is_printed_as_shipped(capsys):
    text = _printed(capsys, "slurm")
    assert text == (ROOT / "orchestrator" / "templates" / "slurm.sbatch").read_text()
    assert text.startswith("#!/bin/bash")


@pytest.mark.parametrize("argv, message", [
    (["kuberay", str(PAPER)], "template kuberay needs EXPERIMENT and STORAGE"),
    (["kuberay", str(PAPER), "/local/dir"], "a cluster's nodes write results to a storage URI they share"),
    (["ray-up", str(PAPER), "ftp://host/x"], "storage 'ftp://host/x'"),
    (["slurm", str(PAPER)], "template slurm takes no experiment"),
    (["kuberay", str(PAPER), STORAGE, "--workers", "0"], "--workers must be from 1 to 10000, got 0"),
])
def test_bad_template_arguments_are_one_line(capsys, argv, message):
    assert main(["template", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
