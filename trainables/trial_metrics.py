"""A grid's figures as Ray metrics (``ray.util.metrics``), for the Prometheus/Grafana behind Ray's dashboard.

Ray exports them from each node's metrics endpoint with its ``ray_`` prefix:

- driver side, ``alignfreeze_trials{grid, state}``: the run's trials by Tune state
  (pending, running, paused, done, error);
- trial side, by ``trial_id`` and ``phase`` (realignment / finetune), at the
  trial's logging steps only (the points of its TensorBoard curves, every
  ``loggers.every`` optimizer steps, nothing in between):
  ``alignfreeze_task_loss``, ``alignfreeze_realignment_loss`` (the mean since
  the previous point), ``alignfreeze_tokens_per_second``,
  ``alignfreeze_steps_per_second``, ``alignfreeze_optimizer_step`` (the
  phase's step), and ``alignfreeze_optimizer_steps_total`` (a counter).

``MeteredCurves`` is a ``TrainingCurves`` whose phases also report these;
with TensorBoard off (no directory) they still compute the points and write
no file. Ray core only: the driver side is fed by ``trainables.ray_trainable``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from trainables.training_curves import DEFAULT_EVERY, PHASES, PhaseCurves, TrainingCurves

PREFIX = "alignfreeze_"
TRIAL_TAGS = ("trial_id", "phase")
# a curve's tag -> the gauge it sets
CURVE_GAUGES = {"loss/task": "task_loss", "loss/realignment": "realignment_loss",
                "throughput/tokens_per_s": "tokens_per_second"}
TRIAL_STATES = {"PENDING": "pending", "RUNNING": "running", "PAUSED": "paused",
                "TERMINATED": "done", "ERROR": "error"}

_instruments: dict[str, Any] = {}     # one instrument per name and process (Ray keeps them by name)


def _gauge(name: str, description: str, tag_keys: tuple[str, ...]) -> Any:
    if name not in _instruments:
        from ray.util.metrics import Gauge

        _instruments[name] = Gauge(PREFIX + name, description=description, tag_keys=tag_keys)
    return _instruments[name]


def _counter(name: str, description: str, tag_keys: tuple[str, ...]) -> Any:
    if name not in _instruments:
        from ray.util.metrics import Counter

        _instruments[name] = Counter(PREFIX + name, description=description, tag_keys=tag_keys)
    return _instruments[name]


DESCRIPTIONS = {
    "task_loss": "a trial's task loss (mean over the optimizer steps since its previous logging step)",
    "realignment_loss": "a trial's realignment loss (mean over the optimizer steps since its previous logging step)",
    "tokens_per_second": "non-padding tokens a trial fed its encoder per second",
    "steps_per_second": "a trial's optimizer steps per second",
    "optimizer_step": "a trial's optimizer step within its phase",
}


class TrialMetrics:
    """The Ray metrics of one trial (``trial_id``), set at its logging steps."""

    def __init__(self, trial_id: str):
        self.trial_id = trial_id

    def record(self, phase: str, step: int, values: dict[str, float], steps: int, seconds: float) -> None:
        """The point of ``step``: the curves' ``values`` (tags as in ``training_curves``), and
        ``steps`` optimizer steps done in ``seconds`` since the previous point."""
        tags = {"trial_id": self.trial_id, "phase": phase}
        for tag, name in CURVE_GAUGES.items():
            if tag in values:
                _gauge(name, DESCRIPTIONS[name], TRIAL_TAGS).set(float(values[tag]), tags=tags)
        _gauge("optimizer_step", DESCRIPTIONS["optimizer_step"], TRIAL_TAGS).set(float(step), tags=tags)
        if steps > 0 and seconds > 0:
            _gauge("steps_per_second", DESCRIPTIONS["steps_per_second"], TRIAL_TAGS).set(steps / seconds, tags=tags)
            _counter("optimizer_steps_total", "optimizer steps the trials ran",
                     TRIAL_TAGS).inc(float(steps), tags=tags)


class MeteredPhase(PhaseCurves):
    """A phase's curves that also set the trial's Ray metrics at each logging step
    (and write TensorBoard files only when they have a directory)."""

    def __init__(self, directory: Path | None, every: int, total_steps: int, first_step: int,
                 metrics: TrialMetrics, name: str):
        super().__init__(directory, every, total_steps, first_step)
        self.metrics = metrics
        self.name = name
        self._last_step = first_step
        self._last_time = time.perf_counter()

    @property
    def on(self) -> bool:       # the points are computed for the metrics even without TensorBoard
        return True

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self.directory is not None:
            super().scalars(step, values)
        if not any(tag in values for tag in CURVE_GAUGES):
            return              # the evaluation's scores at the phase's end: not a training point
        now = time.perf_counter()
        try:
            self.metrics.record(self.name, step, values, step - self._last_step, now - self._last_time)
        except Exception:       # metrics are a view: never a trial's failure
            pass
        self._last_step, self._last_time = step, now


class MeteredCurves(TrainingCurves):
    """A trial's TensorBoard curves (``directory``; None: none written) and its Ray metrics."""

    def __init__(self, directory: Path | str | None, trial_id: str, every: int = DEFAULT_EVERY):
        super().__init__(directory, every)
        self.metrics = TrialMetrics(trial_id)

    def phase(self, name: str, total_steps: int, first_step: int = 0) -> PhaseCurves:
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r}")
        curves = MeteredPhase(self.directory / name if self.directory is not None else None,
                              self.every, total_steps, first_step, self.metrics, name)
        self._phases.append(curves)
        return curves


class GridMetrics:
    """Driver side: the run's trials by state, for the grid ``grid`` (its results directory's name)."""

    def __init__(self, grid: str, every_s: float = 1.0):
        self.grid = grid
        self.every_s = every_s
        self._last = float("-inf")

    def update(self, statuses: list[str], force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        counts = dict.fromkeys(TRIAL_STATES.values(), 0)
        for status in statuses:
            state = TRIAL_STATES.get(status)
            if state is not None:
                counts[state] += 1
        gauge = _gauge("trials", "the trials of a grid's run by state", ("grid", "state"))
        for state, count in counts.items():
            gauge.set(float(count), tags={"grid": self.grid, "state": state})
