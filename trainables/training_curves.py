"""A trial's training curves, written by the trial itself as TensorBoard event files.

Each phase that trains is one TensorBoard run, a subdirectory of the
trial's directory, on its own optimizer-step axis (step 1 = the phase's
first optimizer step): ``realignment/`` (the "before" schedule) and
``finetune/`` (fine-tuning; with the "during" schedule its realignment
loss too; the evaluation's per-language metrics at its last step). So
task-loss curves of baseline and realigned trials line up step for step.

Tags: ``loss/task``, ``loss/realignment``, ``optimizer/learning_rate``,
``optimizer/grad_norm``, ``throughput/tokens_per_s`` (non-padding tokens
fed to the encoder per second), ``test/<language>/<metric>``,
``test/average/<metric>``, ``validation/...`` likewise.

The loops keep their step losses on the device; a phase's curves read them
only at logging steps (every ``every`` optimizer steps, and the phase's
last): one device sync per logging step, no sync and no extra kernel in
between. A loss point is the mean over the steps since the previous point.

Resume: a phase's writer opens with ``purge_step`` = the first step this
process runs; TensorBoard then drops whatever an earlier, killed attempt
wrote in the same run from that step on, so the curve continues from the
checkpointed step without overlap. ``read_curves`` reads the files back
the way TensorBoard shows them (the tests use it).

The event files are written with tensorboardX (a dependency of Ray Tune).
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path
from typing import Iterable

import torch

DEFAULT_EVERY = 10
PHASES = ("realignment", "finetune")


class PhaseCurves:
    """One phase's TensorBoard run: device-side loss sums between logging steps, written at them."""

    def __init__(self, directory: Path | None, every: int, total_steps: int, first_step: int):
        self.directory = directory
        self.every = max(1, int(every))
        self.total_steps = total_steps
        self._writer = None
        self._first_step = first_step
        self._losses: dict[str, list[torch.Tensor]] = {}
        self._count = 0
        self._tokens = 0
        self._since = time.perf_counter()

    @property
    def on(self) -> bool:
        return self.directory is not None

    def due(self, step: int) -> bool:
        """Whether optimizer step ``step`` (1-based, within the phase) is a logging step."""
        return self.on and (step % self.every == 0 or step == self.total_steps)

    def add(self, tokens: int, **losses: torch.Tensor) -> None:
        """After each optimizer step: its losses (device tensors, kept, not read: no kernel, no sync)
        and the non-padding tokens it fed."""
        if not self.on:
            return
        for name, value in losses.items():
            self._losses.setdefault(name, []).append(value.detach())
        self._count += 1
        self._tokens += tokens

    def log(self, step: int, learning_rate: float | None = None, grad_norm: torch.Tensor | float | None = None,
            **scalars: float) -> None:
        """Write the point of step ``step``: mean losses since the last point, and the rest."""
        if not self.on:
            return
        names = list(self._losses)
        device = [torch.stack(self._losses[n]).float().mean() for n in names]
        if isinstance(grad_norm, torch.Tensor):
            device.append(grad_norm.detach().float().reshape(()).to(device[0].device if device else grad_norm.device))
        read = torch.stack(device).tolist() if device else []   # the one sync
        values = {f"loss/{name}": value for name, value in zip(names, read)}
        if isinstance(grad_norm, torch.Tensor):
            values["optimizer/grad_norm"] = read[-1]
        elif grad_norm is not None:
            values["optimizer/grad_norm"] = float(grad_norm)
        if learning_rate is not None:
            values["optimizer/learning_rate"] = float(learning_rate)
        now = time.perf_counter()
        if self._count and now > self._since:
            values["throughput/tokens_per_s"] = self._tokens / (now - self._since)
        values.update(scalars)
        self.scalars(step, values)
        self._losses, self._count, self._tokens, self._since = {}, 0, 0, now

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.on:
            return
        writer = self._open()
        for tag, value in values.items():
            writer.add_scalar(tag, float(value), global_step=step)
        writer.flush()     # a logging step is seconds apart at least: visible at once in TensorBoard

    def _open(self):
        if self._writer is None:
            from tensorboardX import SummaryWriter

            self.directory.mkdir(parents=True, exist_ok=True)
            # purge_step: TensorBoard drops an earlier attempt's points from this step on; the suffix
            # keeps two attempts in one second apart (the name has whole seconds and the host only)
            # and in the order they ran (TensorBoard reads a run's files in name order)
            self._writer = SummaryWriter(str(self.directory), purge_step=self._first_step + 1, flush_secs=30,
                                         filename_suffix=f".{time.time_ns()}.{os.getpid()}")
        return self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class TrainingCurves:
    """A trial's curves under ``directory`` (None: none written); ``every``: optimizer steps between points."""

    def __init__(self, directory: Path | str | None, every: int = DEFAULT_EVERY):
        self.directory = Path(directory) if directory is not None else None
        self.every = every
        self._phases: list[PhaseCurves] = []

    def phase(self, name: str, total_steps: int, first_step: int = 0) -> PhaseCurves:
        """The curves of phase ``name``, whose optimizer steps ``first_step + 1 .. total_steps`` this process runs."""
        if name not in PHASES:
            raise ValueError(f"unknown phase {name!r}")
        curves = PhaseCurves(self.directory / name if self.directory is not None else None,
                             self.every, total_steps, first_step)
        self._phases.append(curves)
        return curves

    def close(self) -> None:
        for curves in self._phases:
            curves.close()


NO_CURVES = TrainingCurves(None)


def evaluation_scalars(split: str, scores: dict[str, dict[str, float]],
                       average: dict[str, float] | None = None) -> dict[str, float]:
    """``<split>/<language>/<metric>`` for every language scored, ``<split>/average/<metric>``."""
    values = {f"{split}/{language}/{metric}": value
              for language, metrics in scores.items() for metric, value in metrics.items()}
    values.update({f"{split}/average/{metric}": value for metric, value in (average or {}).items()})
    return values


def grad_norm(parameters: Iterable[torch.nn.Parameter]) -> torch.Tensor | None:
    """The total L2 norm of the gradients (a device tensor, not read), as clipping computes it."""
    grads = [p.grad for p in parameters if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else None


# ------------------------------------------------------------------ reading back
def _records(path: Path) -> Iterable[bytes]:
    """The records of a TFRecord file (length, its CRC, data, its CRC); a torn last record is skipped."""
    data = path.read_bytes()
    offset = 0
    while offset + 12 <= len(data):
        (length,) = struct.unpack("<Q", data[offset:offset + 8])
        end = offset + 12 + length + 4
        if end > len(data):
            return
        yield data[offset + 12:offset + 12 + length]
        offset = end


def read_curves(run: Path | str) -> dict[str, list[tuple[int, float]]]:
    """Scalars of one TensorBoard run directory as TensorBoard shows them: tag -> [(step, value)],
    the files in write order, a ``purge_step`` start dropping the earlier points from its step on."""
    from tensorboardX.proto.event_pb2 import Event, SessionLog

    curves: dict[str, list[tuple[int, float]]] = {}
    files = sorted(Path(run).glob("events.out.tfevents.*"))     # TensorBoard's order: by name
    for path in files:
        for record in _records(path):
            event = Event.FromString(record)
            if event.HasField("session_log") and event.session_log.status == SessionLog.START:
                curves = {tag: [(s, v) for s, v in points if s < event.step] for tag, points in curves.items()}
            elif event.HasField("summary"):
                for value in event.summary.value:
                    if value.HasField("simple_value"):
                        curves.setdefault(value.tag, []).append((event.step, value.simple_value))
    return curves


def curves_directories(root: Path | str) -> list[Path]:
    """Every phase run under ``root`` (a results directory's Ray storage, or one trial's directory)."""
    return sorted({p.parent for p in Path(root).rglob("events.out.tfevents.*") if p.parent.name in PHASES})

