"""Connecting to Ray: an embedded local instance by default, or an existing cluster.

``ray`` (core) is imported here and nowhere else in the orchestrator;
``ray.tune`` lives in ``trainables.ray_trainable``.

The driver's environment that trials read (``trial_environment``: cache
locations, offline flags, Hugging Face settings, tokenizer threads) goes
to every worker through Ray's job-level runtime environment, so a worker
started by ``ray start`` on another node, in another shell, sees the
driver's values, not its own.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from trainables.errors import SpecError

# What trials read from the environment: the caches (ALIGNFREEZE_CACHE,
# ALIGNFREEZE_REALIGNED_CACHE), MUSE's mirror (ALIGNFREEZE_MUSE_URL), the Hub's
# offline flags, cache and token (HF_HUB_OFFLINE, HF_DATASETS_OFFLINE, HF_HOME,
# HF_TOKEN...), transformers' settings, tokenizer threads.
FORWARDED_PREFIXES = ("ALIGNFREEZE_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_")
FORWARDED_NAMES = ("TOKENIZERS_PARALLELISM",)
# A trial's torch threads follow its CPUs; the tokenizers' own thread pool would oversubscribe them.
TRIAL_DEFAULTS = {"TOKENIZERS_PARALLELISM": "false"}


def trial_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of the driver's environment that every trial gets."""
    environ = os.environ if environ is None else environ
    chosen = {k: v for k, v in environ.items() if k.startswith(FORWARDED_PREFIXES) or k in FORWARDED_NAMES}
    return {**TRIAL_DEFAULTS, **chosen}


def connect(address: str | None = None, num_cpus: int | None = None,
            num_gpus: int | None = None) -> list[dict[str, float]]:
    """Start or join Ray; return the resources of each alive node."""
    import ray

    if ray.is_initialized():
        return node_resources()
    # Per-epoch checkpoints of short trials trip a snapshot-frequency warning meant for long runs.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True,
                               "configure_logging": True, "logging_level": "WARNING"}
    runtime_env = {"env_vars": trial_environment()}
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
    return node_resources()


def node_resources() -> list[dict[str, float]]:
    """Each alive node's total resources (``CPU``, ``GPU``, ...)."""
    import ray

    return [dict(node.get("Resources") or {}) for node in ray.nodes() if node.get("Alive")]


def check_resources(nodes: list[dict[str, float]], requests: dict[tuple[str, str], tuple[int, float]]) -> None:
    """Refuse trials no single node can hold (Tune would leave them PENDING forever).

    ``requests``: (cpus, gpus) of one trial, by (model, task). A trial runs on
    one node, so the cluster's total does not count, its largest node does.
    """
    cluster_gpus = sum(node.get("GPU", 0) for node in nodes)
    for (model, task), (cpus, gpus) in requests.items():
        if gpus > 0 and cluster_gpus == 0:
            raise SpecError(f"trials ask for {gpus:g} GPU each but the Ray cluster has 0 ({model} on {task}): "
                            f"set their resources' gpus to 0 or connect to a GPU cluster")
        if any(node.get("CPU", 0) >= cpus and node.get("GPU", 0) >= gpus for node in nodes):
            continue
        # the node closest to the request: most GPUs first when GPUs are asked for
        largest = max(nodes, default={}, key=lambda node: (node.get("GPU", 0), node.get("CPU", 0)) if gpus
                      else (node.get("CPU", 0), node.get("GPU", 0)))
        raise SpecError(f"trials of {model} on {task} ask for {cpus} CPU(s) and {gpus:g} GPU(s) each, more "
                        f"than any node of the Ray cluster has (largest: {largest.get('CPU', 0):g} CPU(s), "
                        f"{largest.get('GPU', 0):g} GPU(s); {len(nodes)} node(s)): lower their resources "
                        f"or add a larger node")


def shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
