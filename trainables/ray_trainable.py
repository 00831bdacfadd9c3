"""The Ray Tune adapter: the one module of the project that imports ``ray.tune``.

``alignfreeze_trainable`` turns a config dict into a ``TrialSpec``, runs
the core (``trainables.trial``), reports each phase with ``tune.report``
and a checkpoint, and resumes from ``tune.get_checkpoint()``, else from
the checkpoints earlier runs left (the first complete one, newest first).
``fit_trials`` builds the Tuner over a list of specs, ``fit_search`` over
the trials a search's feed hands out as Tune has room (a ``Searcher``); a
callback writes each trial's result file from the driver as soon as the
trial ends, so results survive a driver crash and need no shared disk.
"""

from __future__ import annotations

import json
import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

from ray import tune

from trainables.checkpoint_layout import trial_checkpoints, working_directory
from trainables.storage import is_uri
from trainables.checkpoint_policy import CheckpointPolicy
from trainables.trial import run_trial
from trainables.trial_spec import TrialSpec

RESULT_KEY = "result_json"


def flat_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """Scalar metrics for Tune (``<lang>_<metric>``, ``avg_<metric>``, ``en_<metric>``; on validation
    data ``val_<lang>_<metric>``, ``val_avg_<metric>``, ``val_en_<metric>``) plus the full result."""
    metrics: dict[str, Any] = {"phase": "done"}
    for language, values in result["metrics"].items():
        metrics.update({f"{language}_{k}": v for k, v in values.items()})
    metrics.update({f"avg_{k}": v for k, v in result["average"].items()})
    metrics.update({f"en_{k}": v for k, v in result["english"].items()})
    for language, values in (result.get("validation") or {}).items():
        metrics.update({f"val_{language}_{k}": v for k, v in values.items()})
    metrics.update({f"val_avg_{k}": v for k, v in (result.get("validation_average") or {}).items()})
    metrics.update({f"val_en_{k}": v for k, v in (result.get("english_validation") or {}).items()})
    metrics[RESULT_KEY] = json.dumps(result)
    return metrics


def alignfreeze_trainable(config: dict[str, Any]) -> None:
    """Function trainable: ``config["run"]["trial"]`` is a ``TrialSpec.to_dict()``.

    Resumes from Tune's checkpoint when Tune restarts the trial, else from
    ``config["run"]["resume_from"]`` (the checkpoints earlier runs left,
    newest first): the first complete one, with a warning for each other.
    ``config["run"]["checkpoint"]``: the ``CheckpointPolicy``; with ``keep:
    final`` the last report carries the fine-tuned weights.
    """
    spec = trial_spec_of(config)
    config = config["run"]
    policy = CheckpointPolicy.from_dict(config.get("checkpoint"))
    resume_from = config.get("resume_from") or ()
    # the node's working copies of trials killed earlier go first
    work = working_directory()

    def report_phase(metrics: dict[str, Any], directory: Path) -> None:
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(directory)))
        # Tune has copied the checkpoint to the run's storage: the local copy
        # (a model and its optimizer state) would only fill the node's disk.
        shutil.rmtree(directory, ignore_errors=True)

    try:
        with ExitStack() as stack:
            # earlier runs' checkpoints on remote storage (s3://...) are downloaded, removed on exit
            candidates = [Path(stack.enter_context(tune.Checkpoint(p).as_directory())) if is_uri(p) else Path(p)
                          for p in resume_from]
            checkpoint = tune.get_checkpoint()
            if checkpoint is not None:
                # as_directory: the stored checkpoint itself on a shared disk (no copy); a
                # download from remote storage is removed on exit (to_directory's never is)
                candidates.insert(0, Path(stack.enter_context(checkpoint.as_directory())))
            final = work / "final" if policy.keep == "final" else None
            result = run_trial(spec, resume_from=candidates, checkpoint_root=work, on_checkpoint=report_phase,
                               policy=policy, final_weights=final)
        if final is not None:
            tune.report(flat_metrics(result), checkpoint=tune.Checkpoint.from_directory(str(final)))
        else:
            tune.report(flat_metrics(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def trial_spec_of(config: dict[str, Any]) -> TrialSpec:
    return TrialSpec.from_dict(config["run"]["trial"])


def trial_resources(config: dict[str, Any]) -> tune.PlacementGroupFactory:
    """What Tune reserves for one trial: its own spec's CPUs and GPUs (they vary by model and task)."""
    spec = trial_spec_of(config)
    return tune.PlacementGroupFactory([{"CPU": spec.cpus, "GPU": spec.gpus}])


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
        self.on_error(trial_spec_of(trial.config), _error_line(trial))


def _error_line(trial: Any) -> str:
    """The last line of the trial's latest error (Tune writes it to the trial's error file)."""
    error = getattr(trial, "error_file", None)
    if error and Path(error).exists():
        lines = [l for l in Path(error).read_text(errors="replace").strip().splitlines() if l.strip()]
        if lines:
            return lines[-1]
    return "trial failed"


class _RunningCallback(tune.Callback):
    """Tells ``running`` (``orchestrator.running.RunningTrials``) which trials Tune runs, where, and retries."""

    def __init__(self, running: Any):
        self.running = running

    def on_trial_start(self, iteration, trials, trial, **info):
        self.running.started(_trial_name(trial))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.running.reported(_trial_name(trial), result)

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.running.failed(_trial_name(trial), _error_line(trial))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.running.ended(_trial_name(trial))

    def on_trial_error(self, iteration, trials, trial, **info):
        self.running.ended(_trial_name(trial))

    def on_step_end(self, iteration, trials, **info):
        self.running.beat()


def _trial_config(spec: TrialSpec, storage: Path, checkpoint: CheckpointPolicy) -> dict[str, Any]:
    # every earlier checkpoint, newest first: the trial checks each before loading it (a listing only reads sizes)
    return {"trial": spec.to_dict(), "checkpoint": checkpoint.to_dict(),
            "resume_from": [str(p) for p in trial_checkpoints(storage, spec.trial_id)]}


def _tuner(param_space: dict[str, Any], storage: Path, name: str, *, search_alg: Any = None, num_samples: int = 1,
           on_result: Callable[[dict[str, Any]], None], on_error: Callable[[TrialSpec, str], None],
           max_concurrent: int | None, reuse_actors: bool, max_failures: int, verbose: int,
           running: Any) -> tune.Tuner:
    return tune.Tuner(
        tune.with_resources(alignfreeze_trainable, trial_resources),
        param_space=param_space,
        tune_config=tune.TuneConfig(search_alg=search_alg, num_samples=num_samples,
                                    max_concurrent_trials=max_concurrent, reuse_actors=reuse_actors,
                                    trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
        run_config=tune.RunConfig(
            name=name, storage_path=str(storage), verbose=verbose,
            callbacks=[_ResultCallback(on_result, on_error)]
            + ([_RunningCallback(running)] if running is not None else []),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=max_failures)))


def fit_trials(specs: list[TrialSpec], storage: Path, name: str, *,
               on_result: Callable[[dict[str, Any]], None], on_error: Callable[[TrialSpec, str], None],
               max_concurrent: int | None = None, reuse_actors: bool = True,
               max_failures: int = 0, verbose: int = 1,
               checkpoint: CheckpointPolicy = CheckpointPolicy(), running: Any = None) -> dict[str, Any]:
    """Run ``specs`` as one Tuner under ``storage/name``.

    A trial that an earlier run checkpointed under ``storage`` resumes from
    its latest complete checkpoint. Returns counts: trials, errors, errored ids.
    """
    storage = storage.resolve()   # pyarrow rejects relative storage paths
    configs = [_trial_config(spec, storage, checkpoint) for spec in specs]
    grid = _tuner({"run": tune.grid_search(configs)}, storage, name, on_result=on_result, on_error=on_error,
                  max_concurrent=max_concurrent, reuse_actors=reuse_actors, max_failures=max_failures,
                  verbose=verbose, running=running).fit()
    errored = [trial_spec_of(r.config).trial_id for r in grid if r.error is not None]
    return {"trials": len(grid), "errors": grid.num_errors, "errored": errored}


class _FeedSearcher(tune.search.Searcher):
    """Tune asks for a trial when it has room for one: the feed answers (no round barrier).

    A thin adapter: which trial comes next, and what a finished trial tells
    the search, is the feed's business (``orchestrator.depth_search``). The
    feed hears of a finished trial from the result callbacks, once its file
    is written, not from ``on_trial_complete`` (called before the callbacks).
    Its state lives in the Optuna storage and ``results/``: nothing to save.
    """

    def __init__(self, feed: Any, config_of: Callable[[TrialSpec], dict[str, Any]]):
        super().__init__()
        self.feed = feed
        self.config_of = config_of

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        spec = self.feed.next_trial()
        if spec is None:
            return tune.search.Searcher.FINISHED if self.feed.finished else None
        return {"run": self.config_of(spec)}

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        return None

    def save(self, checkpoint_path: str) -> None:
        return None


def fit_search(feed: Any, storage: Path, name: str, *,
               on_result: Callable[[dict[str, Any]], None], on_error: Callable[[TrialSpec, str], None],
               max_concurrent: int | None = None, reuse_actors: bool = True,
               max_failures: int = 0, verbose: int = 1,
               checkpoint: CheckpointPolicy = CheckpointPolicy(), running: Any = None) -> dict[str, Any]:
    """Run the trials ``feed`` hands out (``next_trial``) as one Tuner under ``storage/name``, until it is done."""
    storage = storage.resolve()
    searcher = _FeedSearcher(feed, lambda spec: _trial_config(spec, storage, checkpoint))
    grid = _tuner({}, storage, name, search_alg=searcher, num_samples=-1, on_result=on_result, on_error=on_error,
                  max_concurrent=max_concurrent, reuse_actors=reuse_actors, max_failures=max_failures,
                  verbose=verbose, running=running).fit()
    errored = [trial_spec_of(r.config).trial_id for r in grid if r.error is not None]
    return {"trials": len(grid), "errors": grid.num_errors, "errored": errored}


def _trial_name(trial: Any) -> str:
    return trial_spec_of(trial.config).trial_id
