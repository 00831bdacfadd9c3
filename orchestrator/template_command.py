"""``alignfreeze template slurm|kuberay|ray-up``: a launch file on stdout (see ``cluster_templates``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestrator.cluster_templates import DEFAULT_WORKERS, TEMPLATES
from trainables.errors import SpecError


def add_template_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=TEMPLATES,
                        help="slurm: an sbatch script (sbatch job.sbatch EXPERIMENT OUTPUT_DIR); kuberay: a "
                             "RayJob manifest; ray-up: a cluster launcher config for AWS")
    parser.add_argument("experiment", type=Path, nargs="?", default=None,
                        help="kuberay, ray-up: the experiment file (its largest trial sizes the GPU workers)")
    parser.add_argument("storage", nargs="?", default=None,
                        help="kuberay, ray-up: where results go, a storage URI every node writes (s3://...)")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help=f"kuberay, ray-up: GPU workers (default {DEFAULT_WORKERS})")


def run_template(args: argparse.Namespace) -> int:
    from orchestrator import cluster_templates

    if args.name == "slurm":
        if args.experiment is not None:
            raise SpecError("template slurm takes no experiment: the script does "
                            "(sbatch job.sbatch EXPERIMENT OUTPUT_DIR)")
        print(cluster_templates.slurm_script(), end="")
        return 0
    if args.experiment is None or args.storage is None:
        raise SpecError(f"template {args.name} needs EXPERIMENT and STORAGE (alignfreeze template {args.name} "
                        f"paper.yaml s3://bucket/runs/paper)")
    if not 1 <= args.workers <= 10_000:
        raise SpecError(f"--workers must be from 1 to 10000, got {args.workers}")
    make = cluster_templates.kuberay_manifest if args.name == "kuberay" else cluster_templates.ray_up_config
    print(make(args.experiment, args.storage, args.workers), end="")
    return 0
