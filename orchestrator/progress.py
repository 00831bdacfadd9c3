"""The live view of a run: trials done / running / pending / failed, each running trial's phase and step, an ETA.

On a terminal (stderr is a tty) the view is a block redrawn in place under
the lines it prints; in a log file or a pipe it is plain timestamped lines
without ANSI codes: a status line every ``STATUS_EVERY_S`` and one line per
trial finished or failed. Its state comes from what the driver already
hears: Tune's callbacks (``orchestrator.running.RunningTrials`` forwards
them), the trials' progress reports (``progress_of``) and the result and
error files the driver writes (``finished`` / ``failed``).

Ray's own output is off by default (``quiet_ray``): Tune's tables and hints,
the token-authentication notice, worker lines about checkpoints; worker
lines go through ``WorkerLines``, which prints each with its trial id and
never deduplicates. ``--verbose 1|2`` brings Ray's output back (and plain
lines, which do not fight Ray's own prints for the terminal).

The ETA scales each remaining trial's planned device time (``alignfreeze
plan``'s estimate, ``planned_seconds``) by what the finished trials took
against theirs, and divides it over the trials running at once.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TextIO

STATUS_EVERY_S = 30.0       # plain lines: one status line this often
REDRAW_EVERY_S = 1.0        # a terminal: the block is redrawn at most this often
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# What a trial reports between checkpoints (``trainables.ray_trainable``), flat scalars: where it stands.
PROGRESS_KEYS = ("progress_phase", "progress_step", "progress_steps", "progress_epoch", "progress_epochs")
PHASE_WORDS = {"realigning": "realigning", "finetuning": "fine-tuning", "evaluating": "evaluating",
               "starting": "starting", "retrying": "waiting for a retry"}

# Worker lines that repeat what the view shows or are Ray's own bookkeeping (shown with --verbose).
RAY_CHATTER = (re.compile(r"^Checkpoint successfully created at"),
               re.compile(r"^Trial \S+ (completed|finished|started)"),
               re.compile(r"__ray_tqdm_magic_token__"))
# Driver-side Ray loggers whose notices say nothing about the run (the token notice is one per start).
QUIET_LOGGERS = ("ray._private.authentication", "ray.tune.utils.callback", "ray.tune.experimental.output")


def quiet_ray(verbose: int, environ: dict[str, str] | None = None) -> None:
    """Before ``import ray``: no log line lost to deduplication; with ``verbose`` 0, Ray's own output off.

    RAY_DEDUP_LOGS is read when ray is imported, RAY_AIR_NEW_OUTPUT when Tune
    starts: 0 selects Tune's older reporter, silent at verbosity 0 (the newer
    one prints its tables and hints at every verbosity). A value the user set
    is kept.
    """
    environ = os.environ if environ is None else environ
    environ.setdefault("RAY_DEDUP_LOGS", "0")
    if verbose == 0:
        environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        # Tune's words on Ctrl-C / SIGTERM ("Resume experiment with: Tuner.restore(...)"): the
        # resume is the same alignfreeze command, which the driver says itself
        for name in ("ray.tune.tune", "ray.tune.analysis.experiment_analysis"):
            logging.getLogger(name).setLevel(logging.ERROR)


def planned_seconds(experiment: Any) -> dict[str, float]:
    """Each trial's planned device seconds (``alignfreeze plan``), a shared realignment split over its trials.

    Empty when the plan cannot be made (a file it counts is unreadable): the
    ETA then weighs every trial alike; a run never fails for its estimate.
    """
    from orchestrator.plan import build_plan

    try:
        plan = build_plan(experiment)
    except Exception:      # noqa: BLE001 - the estimate is optional; the run reports real problems itself
        return {}
    shared = {r.key: r.seconds / max(r.trials, 1) for r in plan.realignments}
    return {t.trial_id: t.finetune_s + t.during_realign_s + t.eval_s + shared.get(t.realignment or "", 0.0)
            for t in plan.trials}


# ---------------------------------------------------------------------- state


@dataclass
class RunningTrial:
    trial_id: str
    since: float                     # when Tune started it (this attempt)
    phase: str = "starting"
    step: int = 0
    steps: int = 0
    epoch: int = 0                   # fine-tuning: the epoch under way (1-based); 0: not fine-tuning
    epochs: int = 0
    rate_from: tuple[str, int, float] | None = None   # (phase, steps done in it, time) of the phase's first report
    steps_per_s: float | None = None
    pid: Any = None


@dataclass
class GridState:
    """What the view knows. ``planned``: every trial of this run, in the grid's order."""
    planned: list[str]
    started: float
    weights: dict[str, float] = field(default_factory=dict)          # planned seconds, by trial
    done: set[str] = field(default_factory=set)                      # results, also of earlier runs
    failed: set[str] = field(default_factory=set)
    running: dict[str, RunningTrial] = field(default_factory=dict)
    finished: list[tuple[str, float]] = field(default_factory=list)  # (trial, seconds) ended in this run
    most_at_once: int = 0                                            # trials seen running at once

    @property
    def pending(self) -> list[str]:
        return [t for t in self.planned if t not in self.done and t not in self.failed and t not in self.running]


def progress_of(result: dict[str, Any]) -> dict[str, Any] | None:
    """The position a Tune result carries: a progress report's, or a checkpoint's; None if neither."""
    if result.get("progress_phase"):
        return {"phase": result["progress_phase"], "step": int(result.get("progress_step") or 0),
                "steps": int(result.get("progress_steps") or 0), "epoch": int(result.get("progress_epoch") or 0),
                "epochs": int(result.get("progress_epochs") or 0)}
    phase = result.get("phase")
    if phase == "realigning":
        return {"phase": "realigning", "step": int(result.get("realign_step") or result.get("step") or 0),
                "steps": 0, "epoch": 0, "epochs": 0}
    if phase == "finetuning":     # a checkpoint inside an epoch names the last completed one
        return {"phase": "finetuning", "step": int(result.get("step") or 0), "steps": 0,
                "epoch": int(result.get("epoch", -1)) + 2, "epochs": 0}
    if phase == "finetune":       # an epoch's end: its last step (step None: the epoch's total, once known)
        return {"phase": "finetuning", "step": None, "steps": 0, "epoch": int(result.get("epoch", -1)) + 1,
                "epochs": 0}
    if phase == "realigned":
        return {"phase": "finetuning", "step": 0, "steps": 0, "epoch": 1, "epochs": 0}
    return None


def apply_report(trial: RunningTrial, position: dict[str, Any], now: float) -> None:
    """Move ``trial`` to ``position``; steps per second over the reports of the same phase (across epochs)."""
    same = trial.phase == position["phase"] and trial.epoch == position["epoch"]
    # a checkpoint's report knows no totals: the last progress report's stand
    steps = position["steps"] or (trial.steps if same else 0)
    step = position["step"] if position["step"] is not None else steps
    trial.phase, trial.step, trial.steps, trial.epoch = position["phase"], step, steps, position["epoch"]
    trial.epochs = position["epochs"] or trial.epochs
    # fine-tuning counts its steps per epoch: the phase's count runs on over the epochs
    done = trial.step + (max(trial.epoch - 1, 0) * trial.steps if trial.phase == "finetuning" else 0)
    if trial.rate_from is None or trial.rate_from[0] != trial.phase or done < trial.rate_from[1]:
        trial.rate_from = (trial.phase, done, now)
        trial.steps_per_s = None
    elif now > trial.rate_from[2] and done > trial.rate_from[1]:
        trial.steps_per_s = (done - trial.rate_from[1]) / (now - trial.rate_from[2])


def position_words(position: dict[str, Any]) -> str:
    """One report's position in words (``alignfreeze status``: no rate, it knows one report)."""
    trial = RunningTrial("", 0.0)
    apply_report(trial, position, 0.0)
    return position_text(trial)


# ---------------------------------------------------------------------- the ETA


def eta_seconds(state: GridState, now: float) -> float | None:
    """Seconds until every trial has ended, or None before the first trial of this run finished.

    scale = what the finished trials took / what the plan gave them; the
    work left (pending trials' plan, running trials' plan less their time so
    far, each x scale) runs ``most_at_once`` trials at a time.
    """
    finished = [(state.weights.get(t), s) for t, s in state.finished]
    if not finished:
        return None
    known = [w for w in state.weights.values() if w > 0]
    default = sum(known) / len(known) if known else 1.0

    def weight(trial_id: str) -> float:
        value = state.weights.get(trial_id)
        return value if value and value > 0 else default

    took = sum(s for _, s in finished)
    planned = sum(weight(t) for t, _ in state.finished)
    scale = took / planned
    left = sum(weight(t) * scale for t in state.pending)
    left += sum(max(weight(t) * scale - (now - r.since), 0.0) for t, r in state.running.items())
    at_once = max(1, min(state.most_at_once or 1, len(state.pending) + len(state.running)))
    return left / at_once


# ---------------------------------------------------------------------- formatting


def duration(seconds: float) -> str:
    """``45s``, ``3m05s``, ``2h07m``, ``1d03h``."""
    seconds = round(max(seconds, 0.0))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def position_text(trial: RunningTrial) -> str:
    """``fine-tuning epoch 2/3 step 40/98, 3.1 steps/s``; ``realigning step 12/26``; ``starting``."""
    text = PHASE_WORDS.get(trial.phase, trial.phase)
    if trial.phase == "finetuning" and trial.epoch:
        text += f" epoch {trial.epoch}" + (f"/{trial.epochs}" if trial.epochs else "")
    if trial.phase in ("realigning", "finetuning", "evaluating") and (trial.step or trial.steps):
        text += f" step {trial.step}" + (f"/{trial.steps}" if trial.steps else "")
    if trial.steps_per_s is not None:
        text += f", {trial.steps_per_s:.1f} steps/s"
    return text


def summary_text(state: GridState, now: float) -> str:
    """``3/8 done, 2 running, 3 pending, 0 failed; elapsed 1m20s, ETA 2m10s``."""
    eta = eta_seconds(state, now)
    return (f"{len(state.done & set(state.planned))}/{len(state.planned)} done, {len(state.running)} running, "
            f"{len(state.pending)} pending, {len(state.failed)} failed; elapsed {duration(now - state.started)}, "
            f"ETA {duration(eta) if eta is not None else 'after the first trial'}")


def view_lines(state: GridState, now: float) -> list[str]:
    """The terminal's block: the summary, then one line per running trial (in the grid's order)."""
    running = sorted(state.running.values(), key=lambda r: _order(state, r.trial_id))
    width = max((len(r.trial_id) for r in running), default=0)
    return ([f"alignfreeze: {summary_text(state, now)}"]
            + [f"  {r.trial_id:<{width}}  {position_text(r)} ({duration(now - r.since)})" for r in running])


def timestamp(now: float) -> str:
    return datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_line(state: GridState, now: float) -> str:
    """The plain mode's status line: the summary and every running trial's position, on one line."""
    running = sorted(state.running.values(), key=lambda r: _order(state, r.trial_id))
    text = f"{timestamp(now)} {summary_text(state, now)}"
    if running:
        text += "; running: " + "; ".join(f"{r.trial_id} {position_text(r)}" for r in running)
    return text


def _order(state: GridState, trial_id: str) -> int:
    try:
        return state.planned.index(trial_id)
    except ValueError:
        return len(state.planned)


# ---------------------------------------------------------------------- the view


class ProgressView:
    """The state, fed by the driver's callbacks, printed to ``stream``: redrawn (``live``) or as plain lines.

    Tune's callbacks and Ray's log thread both call it: a lock keeps their prints whole.
    """

    def __init__(self, planned: Iterable[str], done: Iterable[str] = (), weights: dict[str, float] | None = None,
                 stream: TextIO | None = None, live: bool | None = None, clock: Callable[[], float] = time.time):
        self.stream = stream if stream is not None else sys.stderr
        self.live = _is_terminal(self.stream) if live is None else live
        self.clock = clock
        planned = list(planned)
        self.state = GridState(planned, clock(), dict(weights or {}), set(done) & set(planned))
        self._lock = threading.RLock()
        self._drawn = 0               # lines of the block now on the terminal
        self._redrawn = 0.0
        self._status_at = self.state.started
        self._pids: dict[Any, str] = {}

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks (this view among them) with the experiment's state: no lock, no stream
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "stream")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.RLock(), stream=sys.stderr)

    # -- what Tune tells the driver (through ``RunningTrials``)
    def started(self, trial_id: str) -> None:
        with self._lock:
            if trial_id not in self.state.planned:      # a search plans its trials as it goes
                self.state.planned.append(trial_id)
            self.state.running[trial_id] = RunningTrial(trial_id, self.clock())
            self.state.failed.discard(trial_id)
            self.state.most_at_once = max(self.state.most_at_once, len(self.state.running))
            self.tick(force=True)

    def reported(self, trial_id: str, result: dict[str, Any]) -> None:
        with self._lock:
            trial = self.state.running.get(trial_id)
            if trial is None:
                trial = self.state.running[trial_id] = RunningTrial(trial_id, self.clock())
            if result.get("pid") is not None:
                trial.pid = result["pid"]
                self._pids[result["pid"]] = trial_id
            position = progress_of(result)
            if position is not None:
                apply_report(trial, position, self.clock())
            self.tick()

    def retrying(self, trial_id: str) -> None:
        """Tune restarts the trial from its latest checkpoint (the driver says so in a line of its own)."""
        with self._lock:
            trial = self.state.running.get(trial_id)
            if trial is not None:
                trial.phase, trial.steps_per_s, trial.rate_from = "retrying", None, None
            self.tick(force=True)

    def ended(self, trial_id: str) -> None:
        """Tune is done with the trial; one that neither ``finished`` nor ``failed`` has no valid result."""
        with self._lock:
            self.state.running.pop(trial_id, None)
            if trial_id not in self.state.done and trial_id not in self.state.failed:
                self.state.failed.add(trial_id)
            self.tick(force=True)

    # -- what the driver writes
    def finished(self, trial_id: str, text: str) -> None:
        with self._lock:
            trial = self.state.running.pop(trial_id, None)
            self.state.done.add(trial_id)
            self.state.failed.discard(trial_id)
            if trial is not None:
                self.state.finished.append((trial_id, self.clock() - trial.since))
            self.say(f"done {trial_id}: {text}")

    def failed(self, trial_id: str, text: str) -> None:
        with self._lock:
            self.state.running.pop(trial_id, None)
            self.state.failed.add(trial_id)
            self.say(f"FAILED {trial_id}: {text}")

    def trial_of_pid(self, pid: Any) -> str | None:
        with self._lock:
            return self._pids.get(pid)

    # -- printing
    def say(self, line: str) -> None:
        """One line above the block (a terminal) or timestamped (plain)."""
        with self._lock:
            if self.live:
                self._clear()
                self.stream.write(line + "\n")
                self._draw()
            else:
                self.stream.write(f"{timestamp(self.clock())} {ANSI.sub('', line)}\n")
            self.stream.flush()

    def tick(self, force: bool = False) -> None:
        """Redraw the block (a terminal), or write the status line when it is due (plain)."""
        with self._lock:
            now = self.clock()
            if self.live:
                if force or now - self._redrawn >= REDRAW_EVERY_S:
                    self._clear()
                    self._draw()
                    self.stream.flush()
            elif now - self._status_at >= STATUS_EVERY_S:
                self._status_at = now
                self.stream.write(status_line(self.state, now) + "\n")
                self.stream.flush()

    def close(self) -> None:
        """The last status: the block stays on the terminal; plain mode writes a final status line."""
        with self._lock:
            if self.live:
                self._clear()
                self._draw()
                self._drawn = 0
            else:
                self.stream.write(status_line(self.state, self.clock()) + "\n")
            self.stream.flush()

    def _clear(self) -> None:
        if self._drawn:
            # to the first line of the block, then erase to the end of the screen
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self) -> None:
        columns = shutil.get_terminal_size((120, 24)).columns
        lines = [line[:columns - 1] for line in view_lines(self.state, self.clock())]   # never wrap a line
        self.stream.write("".join(line + "\n" for line in lines))
        self._drawn = len(lines)
        self._redrawn = self.clock()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


# ---------------------------------------------------------------------- worker lines


TRIAL_PREFIX = re.compile(r"^\[([^\]\s]+)\] ")


class WorkerLines:
    """Prints the lines Ray forwards from workers, each once, tagged ``[trial id]``; drops Ray's chatter.

    Replaces Ray's own printer (which deduplicates and tags lines by pid):
    ``data`` is Ray's batch, ``{"pid", "lines", "is_err", "actor_name", ...}``.
    A line the trial tagged itself keeps its tag; any other (a warning, a
    traceback) gets the trial whose worker (pid) reported last, else the pid;
    the raylet's notices (a worker killed for memory) are tagged ``[ray raylet]``.
    """

    def __init__(self, view: ProgressView, chatter: bool = False):
        self.view = view
        self.chatter = chatter       # --verbose: Ray's own lines too

    def lines(self, data: dict[str, Any]) -> list[str]:
        out = []
        pid = data.get("pid")
        for raw in data.get("lines") or []:
            line = ANSI.sub("", str(raw)).rstrip()
            if not line.strip() or not self.chatter and any(p.search(line) for p in RAY_CHATTER):
                continue
            if TRIAL_PREFIX.match(line):
                out.append(line)
                continue
            if pid in ("autoscaler", "raylet"):
                out.append(f"[ray {pid}] {line}")
                continue
            trial = self.view.trial_of_pid(pid)
            out.append(f"[{trial}] {line}" if trial else f"[worker pid {pid}] {line}")
        return out

    def __call__(self, data: dict[str, Any]) -> None:
        for line in self.lines(data):
            self.view.say(line)
