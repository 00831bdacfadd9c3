"""Running trials on Ray and keeping the results directory up to date.

``TrialSession`` connects to Ray once (embedded or ``--address``) and runs
batches of trials, each as one Tuner, writing every result or error file
from the driver as the trial ends. ``run_experiment`` runs a whole grid in
one batch; the depth search (``orchestrator.depth_search``) runs one Tune
experiment whose trials a feed hands out as slots free (``run_search``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from orchestrator import results as results_dir
from orchestrator.cluster import check_resources, connect, forward_worker_lines, shutdown
from orchestrator.driver_lock import DriverLock
from orchestrator.experiment import Experiment
from orchestrator.progress import ProgressView, WorkerLines, planned_seconds, quiet_ray
from orchestrator.running import RunningTrials
from trainables.checkpoint_policy import CheckpointPolicy
from trainables.errors import SpecError
from trainables.trial_spec import TrialSpec


class TrialSession:
    """One Ray connection for any number of trial batches written under ``output``.

    Entering the session takes ``output``'s driver lock (one driver per
    results directory); leaving it releases the lock, also on an exception or
    Ctrl-C. ``resources``: (cpus, gpus) per trial, by (model, task).
    """

    def __init__(self, output: Path, ray_options: dict[str, Any],
                 resources: dict[tuple[str, str], tuple[int, float]],
                 address: str | None = None, verbose: int = 1,
                 checkpoint: CheckpointPolicy = CheckpointPolicy(), weights: dict[str, float] | None = None,
                 loggers: dict[str, Any] | None = None, dashboard: bool | None = None):
        quiet_ray(verbose)               # before ray is imported: no deduplication; Ray's own output off at 0
        self.weights = weights or {}     # each trial's planned seconds: the live view's ETA
        self.loggers = loggers           # TensorBoard / MLflow / W&B settings (orchestrator.logger_settings)
        self.output = output.resolve()
        self.checkpoint = checkpoint     # mid-phase checkpoints, and what a finished trial keeps
        self.ray_options = ray_options
        self.resources = resources
        self.address = address or ray_options.get("address")
        # a local Ray with its dashboard on 127.0.0.1 (--dashboard); a cluster's is printed either way
        self.dashboard = bool(ray_options.get("dashboard", False) if dashboard is None else dashboard)
        self.verbose = verbose
        self._connected = False
        self._nodes: list[dict[str, float]] = []
        self._batches = 0
        self._lock = DriverLock(self.output)

    def __enter__(self) -> "TrialSession":
        self._lock.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            if self._connected and not self.address:
                shutdown()
        finally:
            self._lock.release()

    def _connect(self) -> None:
        if self._connected:
            return
        nodes = connect(self.address, self.ray_options.get("num_cpus"), self.ray_options.get("num_gpus"),
                        dashboard=self.dashboard)
        self._connected = True
        self._nodes = nodes
        check_resources(nodes, self.resources)

    def run(self, trials: list[TrialSpec]) -> dict[str, Any]:
        """Run the trials of ``trials`` that have no result yet; return counts and wall time.

        Trials checkpointed by an interrupted earlier run resume from their
        latest checkpoint.
        """
        done = results_dir.completed_ids(self.output)
        pending = [t for t in trials if t.trial_id not in done]
        summary: dict[str, Any] = {"planned": len(trials), "already_done": len(trials) - len(pending),
                                   "ran": len(pending), "errors": 0, "errored": [], "missing": [],
                                   "output": str(self.output)}
        if not pending:
            return summary
        started = time.perf_counter()
        from trainables.ray_trainable import fit_trials

        outcome = self._fit(lambda storage, name, **options: fit_trials(pending, storage, name, **options),
                            planned=[t.trial_id for t in trials], done=done)
        finished = results_dir.completed_ids(self.output)
        summary.update(errors=outcome["errors"], errored=outcome["errored"],
                       missing=[t.trial_id for t in pending if t.trial_id not in finished],
                       wall_s=time.perf_counter() - started)
        return summary

    def run_search(self, feed: Any) -> dict[str, Any]:
        """Run the trials ``feed`` hands out, as slots free, in one Tune experiment.

        ``feed`` (``orchestrator.depth_search.SearchFeed``): ``next_trial()`` gives a
        spec, or None (nothing now; ``feed.finished``: nothing ever again);
        ``trial_ended(trial_id, failed)`` is called once the trial's result or
        error file is written.
        """
        started = time.perf_counter()
        from trainables.ray_trainable import fit_search

        self._connect()
        # Tune asks a Searcher for one trial at a time, and starts one trial actor at a time, unless
        # the trials in flight are capped: the cap = the trials the cluster holds at once, so that
        # every free slot is asked for (and started) at once, and no more than that is asked ahead
        slots = self.ray_options.get("max_concurrent_trials") or trial_slots(self._nodes, self.resources)

        def fit(storage: Path, name: str, **options: Any) -> dict[str, Any]:
            return fit_search(feed, storage, name, **{**options, "max_concurrent": slots})

        outcome = self._fit(fit, ended=feed.trial_ended)
        return {**outcome, "wall_s": time.perf_counter() - started}

    def _fit(self, fit: Any, ended: Any = None, planned: list[str] = (), done: Any = ()) -> dict[str, Any]:
        """One Tune experiment (``fit``) whose trials' result and error files the driver writes as they end.

        ``planned``: the trials of the grid (a search's are added as they start), ``done``: those with results.
        """
        self._connect()
        output = self.output
        keep = self.checkpoint.keep
        # the console's live view; redrawn on a terminal only when Ray prints nothing of its own
        view = ProgressView(planned, done, self.weights, live=None if self.verbose == 0 else False)

        def on_result(result: dict[str, Any]) -> None:
            from trainables.checkpoint_layout import release_checkpoints

            if results_dir.write_result(output, result).parent.name != results_dir.RESULTS:
                return   # not a valid result (a NaN or inf): recorded as the trial's error, not as done
            # the result is safe on disk: its checkpoints (model + Adam state, ~3x the model) go
            weights = output / results_dir.RESULTS / f"{result['trial_id']}.safetensors"
            for warning in release_checkpoints(output / results_dir.RAY_STORAGE, result["trial_id"], keep, weights):
                view.say(f"WARNING: {warning}")
            average = ", ".join(f"{k} {v:.4f}" for k, v in result["average"].items())
            view.finished(result["trial_id"], f"target average {average} "
                          f"({result['provenance']['timings'].get('total_s', 0):.1f} s)")
            if ended is not None:
                ended(result["trial_id"], False)

        def on_error(spec: TrialSpec, message: str) -> None:
            results_dir.write_error(output, spec.trial_id, spec.to_dict(), message)
            view.failed(spec.trial_id, f"{message} (see {output / results_dir.ERRORS / spec.trial_id}.json)")
            if ended is not None:
                ended(spec.trial_id, True)

        options = self.ray_options
        # one Tune experiment per call; the counter keeps two calls of one second apart
        self._batches += 1
        name = f"tune-{time.strftime('%Y%m%d-%H%M%S')}-{self._batches}"
        max_failures = int(options.get("max_failures", 2))

        def on_retry(trial_id: str, message: str, failures: int) -> None:
            message = message if len(message) <= 160 else message[:157] + "..."
            view.say(f"{trial_id} failed ({message}); Ray Tune restarts it from its latest "
                     f"checkpoint (failure {failures} of at most {max_failures})")

        # which trials run where, for alignfreeze status while this experiment runs (removed after it)
        running = RunningTrials(output, on_retry, view=view)
        try:
            # worker lines tagged with their trial, none deduplicated (Ray's chatter only with --verbose)
            with forward_worker_lines(WorkerLines(view, chatter=self.verbose > 0)):
                return fit(output / results_dir.RAY_STORAGE, name,
                           on_result=on_result, on_error=on_error,
                           max_concurrent=options.get("max_concurrent_trials"),
                           reuse_actors=bool(options.get("reuse_actors", True)),
                           max_failures=max_failures, verbose=self.verbose,
                           checkpoint=self.checkpoint, running=running, loggers=self.loggers)
        finally:
            running.close()      # also the view's last status


def trial_slots(nodes: list[dict[str, float]], resources: dict[tuple[str, str], tuple[int, float]]) -> int:
    """How many of the smallest trials the cluster runs at once (at least 1)."""
    if not resources:
        return 1
    cpus, gpus = min(resources.values(), key=lambda request: (request[1], request[0]))
    slots = 0
    for node in nodes:
        fits = int(node.get("CPU", 0) // cpus) if cpus else 1 << 20
        if gpus:
            fits = min(fits, int(node.get("GPU", 0) // gpus))
        slots += fits
    return max(1, slots)


def run_experiment(experiment: Experiment, output: Path, address: str | None = None,
                   verbose: int = 1, dashboard: bool | None = None) -> dict[str, Any]:
    """Run every trial of ``experiment`` that has no result under ``output`` yet
    (``dashboard``: a local Ray with its dashboard; None: ``experiment.ray["dashboard"]``)."""
    output = output.resolve()
    prepare_output(output, search=False)
    with TrialSession(output, experiment.ray, experiment.resources, address, verbose,
                      checkpoint=experiment.checkpoint, weights=planned_seconds(experiment),
                      loggers=experiment.loggers.to_dict(), dashboard=dashboard) as session:
        reconciled = results_dir.write_manifest(output, experiment.name, experiment.trials, experiment.source)
        _report_reconciled(reconciled, output)
        summary = session.run(experiment.trials)
    summary["no_longer_planned"] = reconciled.no_longer_planned
    if not summary["ran"]:
        print(f"all {len(experiment.trials)} trials already have results in {output}", file=sys.stderr)
    return summary


def prepare_output(output: Path, search: bool) -> None:
    """Check the results directory and create it, before Ray starts: a bad one is one line, nothing written.

    ``search``: a depth search's directory (True) or a grid's (False); one never resumes the other.
    """
    results_dir.check_output_location(output, search=search)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:    # a read-only disk (root passes os.access), a race with another process
        raise SpecError(f"--output {output}: cannot be created ({error.strerror or type(error).__name__})") from None


def _report_reconciled(reconciled: results_dir.Reconciled, output: Path) -> None:
    """Say which kept results the experiment file no longer plans (a grown grid keeps them all)."""
    if reconciled.restored:
        print(f"{len(reconciled.restored)} result(s) of trials planned again moved back from "
              f"{output / results_dir.RETIRED}", file=sys.stderr)
    if reconciled.no_longer_planned:
        now = f" ({len(reconciled.retired_now)} moved there now)" if reconciled.retired_now else ""
        print(f"{len(reconciled.no_longer_planned)} result(s) of trials no longer in the experiment file "
              f"kept in {output / results_dir.RETIRED}{now}; alignfreeze status lists them", file=sys.stderr)
