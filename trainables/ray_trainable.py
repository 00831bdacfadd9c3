"""The Ray Tune adapter: the one module of the project that imports ``ray.tune``.

``alignfreeze_trainable`` turns a config dict into a ``TrialSpec``, runs
the core (``trainables.trial``), reports each phase with ``tune.report``
and a checkpoint, and resumes from ``tune.get_checkpoint()``.
``fit_trials`` builds (or restores) the Tuner over a list of specs; a
callback writes each trial's result file from the driver as soon as the
trial ends, so results survive a driver crash and need no shared disk.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from ray import tune

from trainables.checkpoint_layout import latest_checkpoint
from trainables.trial import run_trial
from trainables.trial_spec import TrialSpec

RESULT_KEY = "result_json"


def flat_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """Scalar metrics for Tune (``<lang>_<metric>``, ``avg_<metric>``, ``en_<metric>``) plus the full result."""
    metrics: dict[str, Any] = {"phase": "done"}
    for language, values in result["metrics"].items():
        metrics.update({f"{language}_{k}": v for k, v in values.items()})
    metrics.update({f"avg_{k}": v for k, v in result["average"].items()})
    metrics.update({f"en_{k}": v for k, v in result["english"].items()})
    metrics[RESULT_KEY] = json.dumps(result)
    return metrics


def alignfreeze_trainable(config: dict[str, Any]) -> None:
    """Function trainable: ``config["run"]["trial"]`` is a ``TrialSpec.to_dict()``.

    Resumes from Tune's checkpoint when Tune restarts the trial, else from
    ``config["run"]["resume_from"]`` (the latest checkpoint of an earlier run).
    """
    spec = trial_spec_of(config)
    config = config["run"]
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        resume_from = Path(checkpoint.to_directory())
    else:
        resume_from = Path(config["resume_from"]) if config.get("resume_from") else None
    work = Path(tempfile.mkdtemp(prefix="alignfreeze-trial-"))

    def report_phase(metrics: dict[str, Any], directory: Path) -> None:
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(directory)))
        # Tune has copied the checkpoint to the run's storage: the local copy
        # (a model and its optimizer state) would only fill the node's disk.
        shutil.rmtree(directory, ignore_errors=True)

    try:
        result = run_trial(spec, resume_from=resume_from, checkpoint_root=work, on_checkpoint=report_phase)
        tune.report(flat_metrics(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def trial_spec_of(config: dict[str, Any]) -> TrialSpec:
    return TrialSpec.from_dict(config["run"]["trial"])


class _ResultCallback(tune.Callback):
    """Hands each finished trial to ``on_result`` / ``on_error`` in the driver."""

    def __init__(self, on_result: Callable[[dict[str, Any]], None],
                 on_error: Callable[[TrialSpec, str], None]):
        self.on_result = on_result
        self.on_error = on_error

    def on_trial_complete(self, iteration, trials, trial, **info):
        payload = (trial.last_result or {}).get(RESULT_KEY)
        if payload:
            self.on_result(json.loads(payload))

    def on_trial_error(self, iteration, trials, trial, **info):
        error = getattr(trial, "error_file", None)
        message = "trial failed"
        if error and Path(error).exists():
            lines = [l for l in Path(error).read_text(errors="replace").strip().splitlines() if l.strip()]
            message = lines[-1] if lines else message
        self.on_error(trial_spec_of(trial.config), message)


def fit_trials(specs: list[TrialSpec], storage: Path, name: str, *,
               on_result: Callable[[dict[str, Any]], None], on_error: Callable[[TrialSpec, str], None],
               max_concurrent: int | None = None, reuse_actors: bool = True,
               max_failures: int = 0, verbose: int = 1) -> dict[str, Any]:
    """Run ``specs`` as one Tuner under ``storage/name``.

    A trial that an earlier run checkpointed under ``storage`` resumes from
    its latest checkpoint. Returns counts: trials, errors, errored ids.
    """
    storage = storage.resolve()   # pyarrow rejects relative storage paths
    cpus, gpus = specs[0].cpus, specs[0].gpus
    trainable = tune.with_resources(alignfreeze_trainable, {"cpu": cpus, "gpu": gpus})
    configs = []
    for spec in specs:
        checkpoint = latest_checkpoint(storage, spec.trial_id)
        configs.append({"trial": spec.to_dict(), "resume_from": str(checkpoint) if checkpoint else None})
    tuner = tune.Tuner(
        trainable,
        param_space={"run": tune.grid_search(configs)},
        tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=reuse_actors,
                                    trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
        run_config=tune.RunConfig(
            name=name, storage_path=str(storage), verbose=verbose,
            callbacks=[_ResultCallback(on_result, on_error)],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=max_failures)))
    grid = tuner.fit()
    errored = [trial_spec_of(r.config).trial_id for r in grid if r.error is not None]
    return {"trials": len(grid), "errors": grid.num_errors, "errored": errored}


def _trial_name(trial: Any) -> str:
    return trial_spec_of(trial.config).trial_id
