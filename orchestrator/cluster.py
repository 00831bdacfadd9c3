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
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping

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


# Set by Ray for the entrypoint of a Ray Job (ray job submit): the job's config, its runtime env
# included. Ray refuses a driver's runtime env that sets a variable the job's also sets.
JOB_CONFIG_VARIABLE = "RAY_JOB_CONFIG_JSON_ENV_VAR"


def job_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables a Ray Job's own runtime env sets (empty outside a Ray Job)."""
    import json

    environ = os.environ if environ is None else environ
    try:
        config = json.loads(environ.get(JOB_CONFIG_VARIABLE) or "{}")
    except ValueError:
        return {}
    runtime_env = config.get("runtime_env") if isinstance(config, dict) else None
    env_vars = runtime_env.get("env_vars") if isinstance(runtime_env, dict) else None
    return dict(env_vars) if isinstance(env_vars, dict) else {}


def driver_runtime_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The runtime env this driver gives Ray: the trial environment, less what a Ray Job's
    runtime env already sets (those reach every worker through the job, with the job's values)."""
    job = job_environment(environ)
    forwarded = {k: v for k, v in trial_environment(environ).items() if k not in job}
    return {"env_vars": forwarded} if forwarded else {}


def connect(address: str | None = None, num_cpus: int | None = None,
            num_gpus: int | None = None, dashboard: bool = False) -> list[dict[str, float]]:
    """Start or join Ray; return the resources of each alive node.

    ``dashboard``: a local Ray starts Ray's dashboard on 127.0.0.1 (off by default);
    a cluster has its own. Either way its address goes to stderr, one line
    ``dashboard: http://HOST:PORT``.
    """
    import ray

    if ray.is_initialized():
        return node_resources()
    # Per-epoch checkpoints of short trials trip a snapshot-frequency warning meant for long runs.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    options: dict[str, Any] = {"log_to_driver": True, "configure_logging": True, "logging_level": "WARNING"}
    runtime_env = driver_runtime_env()
    if address:
        try:
            context = ray.init(address=address, runtime_env=runtime_env, **options)
        except (ConnectionError, RuntimeError) as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise SpecError(f"cannot connect to the Ray cluster at {address}: {first[:160]} (a cluster "
                            f"with token authentication, the default from Ray 2.59, needs RAY_AUTH_MODE=token "
                            f"and its token in ~/.ray/auth_token or RAY_AUTH_TOKEN)") from None
    else:
        local = {"include_dashboard": True, "dashboard_host": DASHBOARD_HOST} if dashboard \
            else {"include_dashboard": False}
        context = ray.init(num_cpus=num_cpus, num_gpus=num_gpus, runtime_env=runtime_env, **local, **options)
    url = dashboard_address(context)
    if url:
        print(f"dashboard: {url}", file=sys.stderr, flush=True)
    elif dashboard:
        print("dashboard: none (Ray's dashboard needs ray[default]: pip install 'alignfreeze[cluster]')",
              file=sys.stderr, flush=True)
    return node_resources()


DASHBOARD_HOST = "127.0.0.1"      # a local dashboard: this machine only (ssh -L to see it from another)


def dashboard_address(context: Any) -> str | None:
    """``http://HOST:PORT`` of the dashboard of the Ray that ``ray.init`` returned ``context`` for (None: none)."""
    url = getattr(context, "dashboard_url", None) or ""
    if not url:
        return None
    return url if "://" in url else f"http://{url}"


@contextmanager
def forward_worker_lines(handler: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """While the block runs, the lines Ray forwards from workers go to ``handler`` instead of Ray's printer.

    Ray's printer tags a line by pid and deduplicates; ``handler`` gets each
    batch (``{"pid", "lines", "is_err", ...}``) as Ray's log thread receives it.
    A Ray without the dispatcher (its internals moved) keeps its own printer.
    """
    try:
        from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher
    except ImportError:
        yield
        return
    with dispatcher._lock:
        ray_printers = [pair for pair in dispatcher.handlers if pair[0] == "ray_print_logs"]

    def route(data: dict[str, Any]) -> None:
        if data.get("pid") == "autoscaler":     # Ray's printer keeps only its events (a request no node fits)
            for _, printer in ray_printers:
                printer(data)
        else:
            handler(data)

    dispatcher.remove_handler("ray_print_logs")
    dispatcher.add_handler("alignfreeze_print_logs", route)
    try:
        yield
    finally:
        dispatcher.remove_handler("alignfreeze_print_logs")
        for name, printer in ray_printers:
            dispatcher.add_handler(name, printer)


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
