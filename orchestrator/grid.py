"""Grid expansion: the parsed axes of an experiment -> one validated ``TrialSpec`` per trial.

The grid crosses models x tasks x strategies x aligners x schedules x
seeds. Baseline trials do not realign, so there is one per (model, task,
seed), whatever the aligners and schedules. Each trial carries the
content fingerprints of the local data it reads (taken once per file for
the whole grid): its ID follows the data's content, not its location.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainables.errors import SpecError
from trainables.trial_spec import BASELINE, TrialSpec, validate, with_fingerprints


@dataclass(frozen=True)
class TaskSettings:
    """What one task contributes to each of its trials."""
    languages: tuple[str, ...]
    data: dict[str, Any]
    finetune: dict[str, Any]


@dataclass(frozen=True)
class GridAxes:
    models: list[str]
    tasks: dict[str, TaskSettings]               # task -> its settings, in grid order
    strategies: dict[str, list[str]]             # model -> strategies (a depth search varies them)
    aligners: list[str]
    schedules: list[str]
    seeds: list[int]
    realignment: dict[str, Any]                  # shared by every realigning trial
    common: dict[str, Any] = field(default_factory=dict)   # freeze_embeddings, device, precision, cpus, gpus


def expand_grid(axes: GridAxes, num_blocks: dict[str, int]) -> list[TrialSpec]:
    """Every trial of the grid, each validated and fingerprinted; a repeated trial is an error."""
    trials: list[TrialSpec] = []
    fingerprints: dict[str, str | None] = {}    # by location, shared by the grid's trials
    for model in axes.models:
        for task, settings in axes.tasks.items():
            for strategy in axes.strategies[model]:
                combos = [("none", "before")] if strategy == BASELINE else [
                    (aligner, schedule) for aligner in axes.aligners for schedule in axes.schedules]
                for aligner, schedule in combos:
                    for seed in axes.seeds:
                        spec = TrialSpec(
                            model=model, task=task, strategy=strategy, seed=seed,
                            languages=settings.languages, data=settings.data, aligner=aligner,
                            schedule=schedule,
                            realignment=axes.realignment if strategy != BASELINE else {},
                            finetune=settings.finetune, **axes.common)
                        validate(spec, num_blocks=num_blocks[model])
                        trials.append(with_fingerprints(spec, fingerprints))
    ids = [t.trial_id for t in trials]
    if len(set(ids)) != len(ids):
        raise SpecError("experiment: the grid contains the same trial twice (repeated model, seed or strategy?)")
    return trials
