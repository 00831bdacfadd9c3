"""The experiment's ``checkpoint:`` key: when a trial checkpoints inside a phase, what a finished trial keeps.

    checkpoint:
      every_steps: null      # also every N optimizer steps of a phase (null: by time only)
      every_minutes: 30      # and M minutes after the last checkpoint (null: never by time)
      keep: none             # none | final (the fine-tuned weights, safetensors) | all

Phase ends (after realignment, after each fine-tuning epoch) always
checkpoint. A checkpoint of the paper's models is 1.6 to 3.3 GB (the model
and Adam's two moments): by default only time adds checkpoints inside a
phase, so a long phase loses at most half an hour. None of these settings
changes what a trial computes, so none is part of its identity.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable


KEEP_CHOICES = ("none", "final", "all")


@dataclass(frozen=True)
class CheckpointPolicy:
    every_steps: int | None = None
    every_minutes: float | None = 30.0
    keep: str = "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "CheckpointPolicy":
        return cls(**(data or {}))


def parse_checkpoint_policy(raw: Any) -> CheckpointPolicy:
    """The ``checkpoint:`` mapping of an experiment file, checked (one-line SpecErrors)."""
    if raw is None:
        return CheckpointPolicy()
    from trainables.settings_schema import CHECKPOINT, check_section

    check_section(raw, CHECKPOINT, "checkpoint")      # keys, types and ranges
    defaults = CheckpointPolicy()
    minutes = raw.get("every_minutes", defaults.every_minutes)
    return CheckpointPolicy(raw.get("every_steps", defaults.every_steps),
                            None if minutes is None else float(minutes), raw.get("keep", defaults.keep))


class CheckpointClock:
    """Says when a checkpoint inside a phase is due: at every multiple of ``every_steps``
    optimizer steps of the phase, or ``every_minutes`` after the trial's last checkpoint."""

    def __init__(self, policy: CheckpointPolicy, clock: Callable[[], float] = time.monotonic):
        self.policy = policy
        self.clock = clock
        self.last = clock()

    def due(self, steps_done: int) -> bool:
        steps = self.policy.every_steps
        minutes = self.policy.every_minutes
        return bool((steps and steps_done % steps == 0)
                    or (minutes and self.clock() - self.last >= 60 * minutes))

    def saved(self) -> None:
        self.last = self.clock()
