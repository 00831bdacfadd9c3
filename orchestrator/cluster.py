"""Connecting to Ray: an embedded local instance by default, or an existing cluster.

``ray`` (core) is imported here and nowhere else in the orchestrator;
``ray.tune`` lives in ``trainables.ray_trainable``.
"""

from __future__ import annotations

import os
from typing import Any

from trainables.errors import SpecError


def connect(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None) -> dict[str, float]:
    """Start or join Ray; return the cluster's resources."""
    import ray

    if ray.is_initialized():
        return dict(ray.cluster_resources())
    # Per-epoch checkpoints of short trials trip a snapshot-frequency warning meant for long runs.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True,
                               "configure_logging": True, "logging_level": "WARNING"}
    # The driver's Hugging Face and cache settings (offline flags, cache
    # location) go to every worker, on this machine or on a cluster.
    env = {k: v for k, v in os.environ.items() if k.startswith(("HF_", "ALIGNFREEZE_", "TRANSFORMERS_"))}
    runtime_env = {"env_vars": env} if env else None
    if address:
        try:
            ray.init(address=address, runtime_env=runtime_env, **options)
        except (ConnectionError, RuntimeError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise SpecError(f"cannot connect to the Ray cluster at {address}: {first[:160]} (a cluster "
                            f"with token authentication, the default from Ray 2.59, needs RAY_AUTH_MODE=token "
                            f"and its token in ~/.ray/auth_token or RAY_AUTH_TOKEN)") from None
    else:
        ray.init(num_cpus=num_cpus, num_gpus=num_gpus, runtime_env=runtime_env, **options)
    return dict(ray.cluster_resources())


def check_resources(resources: dict[str, float], cpus: int, gpus: float) -> None:
    """Refuse a grid the cluster can never schedule (Tune would leave it PENDING forever)."""
    if gpus > 0 and resources.get("GPU", 0) < gpus:
        raise SpecError(f"trials ask for {gpus:g} GPU each but the Ray cluster has "
                        f"{resources.get('GPU', 0):g}: set resources.gpus: 0 or connect to a GPU cluster")
    if resources.get("CPU", 0) < cpus:
        raise SpecError(f"trials ask for {cpus} CPUs each but the Ray cluster has {resources.get('CPU', 0):g}")


def shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
