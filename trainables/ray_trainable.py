"""The Ray Tune adapter: the one module of the project that imports ``ray.tune``.

``alignfreeze_trainable`` turns a config dict into a ``TrialSpec``, runs
the core (``trainables.trial``), reports each phase with ``tune.report``
and a checkpoint, and resumes from ``tune.get_checkpoint()``, else from
the checkpoints earlier runs left (the first complete one, newest first).
``fit_trials`` builds the Tuner over a list of specs, ``fit_search`` over
the trials a search's feed hands out as Tune has room (a ``Searcher``); a
callback writes each trial's result file from the driver as soon as the
trial ends, so results survive a driver crash and need no shared disk.

On Ray's dashboard: each trial's actor is an ``AlignfreezeTrial`` whose
``repr_name`` is its trial id (``ray list actors --detail``, the state API),
and Ray names its log lines after it; the trial reports its losses, steps/s
and tokens/s as Ray metrics at its logging steps, the driver its trials by
state (``trainables.trial_metrics``).

Loggers (``run_config["loggers"]``, from ``orchestrator.logger_settings``):
each trial writes its TensorBoard curves into its own Tune trial directory,
``STORAGE/<tune run>/<trial_id>/{realignment,finetune}/`` (Tune's own
TensorBoard files, its reported values on its iteration axis, are left
out); MLflow and W&B are Ray Tune's logger callbacks, fed the trial's
definition as parameters, its model, task, strategy, seed, aligner and
schedule as tags, and the per-language metrics and averages it reports.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

from ray import tune
from ray.tune.trainable.function_trainable import wrap_function

from trainables.checkpoint_layout import trial_checkpoints, working_directory
from trainables.checkpoint_policy import CheckpointPolicy
from trainables.storage import is_uri
from trainables.training_curves import DEFAULT_EVERY
from trainables.trial import run_trial
from trainables.trial_metrics import GridMetrics, MeteredCurves
from trainables.trial_spec import TrialSpec

RESULT_KEY = "result_json"
PROGRESS_EVERY_S = 5.0      # a trial's position goes to the driver's live view this often (a phase's end at once)


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
    curves = trial_curves(config.get("curves"), spec.trial_id)
    # the node's working copies of trials killed earlier go first
    work = working_directory()

    def report_phase(metrics: dict[str, Any], directory: Path) -> None:
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(str(directory)))
        # Tune has copied the checkpoint to the run's storage: the local copy
        # (a model and its optimizer state) would only fill the node's disk.
        shutil.rmtree(directory, ignore_errors=True)

    last_progress = [float("-inf")]

    def report_progress(position: dict[str, Any]) -> None:
        # progress_phase/_step/_steps/_epoch/_epochs, no checkpoint: what orchestrator.progress shows
        now = time.monotonic()
        if now - last_progress[0] >= PROGRESS_EVERY_S or position["progress_step"] == position["progress_steps"]:
            last_progress[0] = now
            tune.report(position)

    def log(message: str) -> None:
        # the driver prints workers' lines: each names its trial
        print(f"[{spec.trial_id}] {message}", flush=True)

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
                               policy=policy, final_weights=final, curves=curves, log=log,
                               on_progress=report_progress)
        if final is not None:
            tune.report(flat_metrics(result), checkpoint=tune.Checkpoint.from_directory(str(final)))
        else:
            tune.report(flat_metrics(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def trial_curves(settings: dict[str, Any] | None, trial_id: str) -> MeteredCurves:
    """The trial's TensorBoard curves, in its Tune trial directory, and its Ray metrics
    (``trainables.trial_metrics``; without tensorboard in loggers: the metrics alone).

    On a local (shared) storage path the trial writes there directly, so the
    curves grow while it runs; on remote storage it writes to its working
    directory, which Tune uploads to the trial directory (``sync_artifacts``).
    """
    if not settings:
        return MeteredCurves(None, trial_id)
    context = tune.get_context()
    if is_uri(settings["storage"]):
        directory = Path(context.get_trial_dir())
    else:
        directory = Path(settings["storage"]) / context.get_experiment_name() / context.get_trial_name()
    return MeteredCurves(directory, trial_id, int(settings["every"]))


def trial_spec_of(config: dict[str, Any]) -> TrialSpec:
    return TrialSpec.from_dict(config["run"]["trial"])


def trial_resources(config: dict[str, Any]) -> tune.PlacementGroupFactory:
    """What Tune reserves for one trial: its own spec's CPUs and GPUs (they vary by model and task)."""
    spec = trial_spec_of(config)
    return tune.PlacementGroupFactory([{"CPU": spec.cpus, "GPU": spec.gpus}])


# Ray prints this line's rest as the name of the actor's next log lines (its driver-side prefix)
_ACTOR_NAME_LINE = ":actor_name:"


class AlignfreezeTrial(wrap_function(alignfreeze_trainable)):
    """The trial actor: ``alignfreeze_trainable`` as Tune's function trainable, its resources
    from its own spec, and its trial id as its ``repr``.

    Ray takes an actor class's own ``__repr__`` as the actor's ``repr_name`` when it
    creates the actor: Ray's state API (``ray list actors --detail``, ``list_actors``)
    and the dashboard's actor list show it, and Ray names the actor's log lines
    after it. An actor that Tune reuses (``reuse_actors``) names its later trials
    in its log lines (the line below); its ``repr_name`` stays its first trial's.
    """

    def __repr__(self) -> str:
        try:
            return trial_spec_of(self.config).trial_id
        except (AttributeError, KeyError, TypeError, ValueError):
            return "alignfreeze_trial"

    @classmethod
    def default_resource_request(cls, config: dict[str, Any]) -> tune.PlacementGroupFactory:
        return trial_resources(config)

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        reset = super().reset_config(new_config)
        if reset:
            import sys

            for stream in (sys.stdout, sys.stderr):      # Ray reads each of the worker's log files
                print(f"{_ACTOR_NAME_LINE}{trial_spec_of(new_config).trial_id}", file=stream, flush=True)
        return reset


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


class _GridMetricsCallback(tune.Callback):
    """The run's trials by state as a Ray metric (``alignfreeze_trials``), at most once a second."""

    def __init__(self, grid: str):
        self.metrics = GridMetrics(grid)

    def _update(self, trials: list[Any], force: bool = False) -> None:
        try:
            self.metrics.update([trial.status for trial in trials], force=force)
        except Exception:       # metrics are a view: never the run's failure
            pass

    def on_step_end(self, iteration, trials, **info):
        self._update(trials)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._update(trials, force=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._update(trials, force=True)

    def on_experiment_end(self, trials, **info):
        self._update(trials, force=True)


def _trial_config(spec: TrialSpec, storage: Path, checkpoint: CheckpointPolicy,
                  loggers: dict[str, Any] | None = None) -> dict[str, Any]:
    # every earlier checkpoint, newest first: the trial checks each before loading it (a listing only reads sizes)
    config = {"trial": spec.to_dict(), "checkpoint": checkpoint.to_dict(),
              "resume_from": [str(p) for p in trial_checkpoints(storage, spec.trial_id)]}
    if "tensorboard" in _loggers(loggers)["loggers"]:
        config["curves"] = {"every": _loggers(loggers)["every"], "storage": str(storage)}
    return config


# without loggers settings (a caller that passes none): TensorBoard curves only
DEFAULT_LOGGERS = {"loggers": ["tensorboard"], "every": DEFAULT_EVERY, "mlflow": {}, "wandb": {}}


def _loggers(loggers: dict[str, Any] | None) -> dict[str, Any]:
    return {**DEFAULT_LOGGERS, **(loggers or {})}


# Keys Ray adds to every report: bookkeeping, not the trial's metrics.
_RAY_KEYS = frozenset({"timestamp", "pid", "done", "time_this_iter_s", "time_total_s", "time_since_restore",
                       "iterations_since_restore", "training_iteration", "trial_id", "date", "hostname",
                       "node_ip", "config", "checkpoint_dir_name", "should_checkpoint", "experiment_tag"})
_MAX_PARAM = 500       # characters of a parameter's value (MLflow's limit on older servers)


def trial_tags(spec: TrialSpec) -> dict[str, str]:
    """What a trial is, as tags: model, task, strategy, seed, aligner, schedule, trial id."""
    return {"trial_id": spec.trial_id, "model": spec.model, "task": spec.task, "strategy": spec.strategy,
            "seed": str(spec.seed), "aligner": spec.aligner, "schedule": spec.schedule}


def trial_params(spec: TrialSpec) -> dict[str, str]:
    """The trial's definition flattened (``finetune.learning_rate``), each value as text."""
    flat: dict[str, str] = {"trial_id": spec.trial_id, "spec_key": spec.key}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            text = json.dumps(value) if isinstance(value, (list, tuple, dict)) else str(value)
            flat[prefix] = text if len(text) <= _MAX_PARAM else text[:_MAX_PARAM - 3] + "..."
    walk("", spec.to_dict())
    return flat


def reported_metrics(result: dict[str, Any]) -> dict[str, float]:
    """The numbers a trial reported (per-language metrics, averages, losses, steps), without Ray's,
    nor the position reports the driver's live view reads (``progress_*``)."""
    return {k: v for k, v in result.items() if k not in _RAY_KEYS and k != RESULT_KEY
            and not k.startswith("progress_") and isinstance(v, (int, float)) and not isinstance(v, bool)}


def logger_callbacks(loggers: dict[str, Any] | None) -> list[tune.Callback]:
    """Tune callbacks for ``loggers``: Tune's result.json and progress.csv, MLflow and W&B as asked.

    Tune's own TensorBoard logger is left out (``_tuner`` turns Tune's automatic loggers off):
    it would write the phase reports on Tune's iteration axis beside the trials' own curves,
    and make Tune print a hint to its temporary copy of them.
    """
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    loggers = _loggers(loggers)
    callbacks: list[tune.Callback] = [CSVLoggerCallback(), JsonLoggerCallback()]
    if "mlflow" in loggers["loggers"]:
        callbacks.append(_mlflow_callback(loggers["mlflow"]))
    if "wandb" in loggers["loggers"]:
        callbacks.append(_wandb_callback(loggers["wandb"]))
    return callbacks


def _mlflow_callback(settings: dict[str, Any]) -> tune.Callback:
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    class AlignfreezeMLflow(MLflowLoggerCallback):
        """One MLflow run per trial: parameters = its definition, tags = what it is, metrics = what it reports."""

        def log_trial_start(self, trial):
            if trial not in self._trial_runs:
                spec = trial_spec_of(trial.config)
                run = self.mlflow_util.start_run(tags={**self.tags, **trial_tags(spec)}, run_name=spec.trial_id)
                self._trial_runs[trial] = run.info.run_id
                self.mlflow_util.log_params(run_id=self._trial_runs[trial], params_to_log=trial_params(spec))

        def log_trial_result(self, iteration, trial, result):
            if "progress_phase" in result:      # a position report of the driver's live view
                return
            self.mlflow_util.log_metrics(run_id=self._trial_runs[trial], metrics_to_log=reported_metrics(result),
                                         step=result.get("training_iteration", iteration))

    # tracking_uri None: mlflow reads MLFLOW_TRACKING_URI (else ./mlruns)
    return AlignfreezeMLflow(tracking_uri=settings.get("tracking_uri"), experiment_name=settings.get("experiment_name"))


def _wandb_callback(settings: dict[str, Any]) -> tune.Callback:
    from ray.air.integrations.wandb import WandbLoggerCallback

    class AlignfreezeWandb(WandbLoggerCallback):
        """One W&B run per trial: config = its definition, tags = what it is, logs = what it reports."""

        def setup(self, *args, **kwargs):
            if self.kwargs.get("mode") in ("offline", "disabled"):   # nothing is sent: no API key needed
                self.api_key_file = None
                return
            super().setup(*args, **kwargs)

        def log_trial_start(self, trial):
            spec = trial_spec_of(trial.config)
            excluded = [*self._exclude_results, *self.excludes, "config", RESULT_KEY, "phase", *_RAY_KEYS]
            init = dict(id=trial.trial_id, name=spec.trial_id, resume=False, reinit=True, allow_val_change=True,
                        group=self.group, project=self.project, config=trial_params(spec),
                        tags=[f"{key}:{value}" for key, value in trial_tags(spec).items() if key != "trial_id"])
            self._start_logging_actor(trial, excluded, **{**init, **self.kwargs})

        def log_trial_result(self, iteration, trial, result):
            if "progress_phase" not in result:  # not a position report of the driver's live view
                super().log_trial_result(iteration, trial, result)

    # entity, mode and dir go to wandb.init in the logging actor, so they need not be in its environment
    extra = {key: settings[key] for key in ("entity", "mode", "dir") if settings.get(key)}
    return AlignfreezeWandb(project=settings.get("project"), group=settings.get("group"), **extra)


def _tuner(param_space: dict[str, Any], storage: Path, name: str, *, search_alg: Any = None, num_samples: int = 1,
           on_result: Callable[[dict[str, Any]], None], on_error: Callable[[TrialSpec, str], None],
           max_concurrent: int | None, reuse_actors: bool, max_failures: int, verbose: int,
           running: Any, loggers: dict[str, Any] | None = None) -> tune.Tuner:
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"    # the loggers are logger_callbacks' alone
    return tune.Tuner(
        AlignfreezeTrial,
        param_space=param_space,
        tune_config=tune.TuneConfig(search_alg=search_alg, num_samples=num_samples,
                                    max_concurrent_trials=max_concurrent, reuse_actors=reuse_actors,
                                    trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
        run_config=tune.RunConfig(
            name=name, storage_path=str(storage), verbose=verbose,
            callbacks=[_ResultCallback(on_result, on_error)]
            + ([_RunningCallback(running)] if running is not None else [])
            + [_GridMetricsCallback(storage.parent.name)] + logger_callbacks(loggers),
            # curves on remote storage: each trial's working directory is uploaded to its trial directory
            sync_config=tune.SyncConfig(sync_artifacts=is_uri(storage)),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=max_failures)))


def fit_trials(specs: list[TrialSpec], storage: Path, name: str, *,
               on_result: Callable[[dict[str, Any]], None], on_error: Callable[[TrialSpec, str], None],
               max_concurrent: int | None = None, reuse_actors: bool = True,
               max_failures: int = 0, verbose: int = 1,
               checkpoint: CheckpointPolicy = CheckpointPolicy(), running: Any = None,
               loggers: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``specs`` as one Tuner under ``storage/name``.

    A trial that an earlier run checkpointed under ``storage`` resumes from
    its latest complete checkpoint. Returns counts: trials, errors, errored ids.
    """
    storage = storage.resolve()   # pyarrow rejects relative storage paths
    configs = [_trial_config(spec, storage, checkpoint, loggers) for spec in specs]
    grid = _tuner({"run": tune.grid_search(configs)}, storage, name, on_result=on_result, on_error=on_error,
                  max_concurrent=max_concurrent, reuse_actors=reuse_actors, max_failures=max_failures,
                  verbose=verbose, running=running, loggers=loggers).fit()
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
               checkpoint: CheckpointPolicy = CheckpointPolicy(), running: Any = None,
               loggers: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the trials ``feed`` hands out (``next_trial``) as one Tuner under ``storage/name``, until it is done."""
    storage = storage.resolve()
    searcher = _FeedSearcher(feed, lambda spec: _trial_config(spec, storage, checkpoint, loggers))
    grid = _tuner({}, storage, name, search_alg=searcher, num_samples=-1, on_result=on_result, on_error=on_error,
                  max_concurrent=max_concurrent, reuse_actors=reuse_actors, max_failures=max_failures,
                  verbose=verbose, running=running, loggers=loggers).fit()
    errored = [trial_spec_of(r.config).trial_id for r in grid if r.error is not None]
    return {"trials": len(grid), "errors": grid.num_errors, "errored": errored}


def _trial_name(trial: Any) -> str:
    return trial_spec_of(trial.config).trial_id
