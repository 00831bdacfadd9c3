"""The ``search:`` section of an experiment file: an Optuna search over the freezing depth.

    search:
      trials: 8              # distinct freezing settings to evaluate per study
      sides: [front, back]   # front / back: the lowest / highest blocks; window: any
                             #   contiguous range of blocks
      objective: target-dev  # what Optuna maximises, on held-out data (never test):
                             #   target-dev: the target languages' validation data
                             #   english-dev: the source language's validation only
      depths: [0, 11]        # frozen blocks, inclusive; 0 = full realignment
                             #   (default: 0 .. blocks-1)
      metric: accuracy       # the objective's metric, averaged over the languages,
                             #   mean over the seeds (default: the task's primary metric)
      sampler: tpe           # tpe | random | grid
      seed: 0                # the sampler's seed
      parallel: 2            # at most this many settings in flight (each runs every seed);
                             #   default null: as many as the cluster has free slots for
      baseline: true         # also run fine-tuning only, once per seed, for comparison
      storage: null          # an Optuna storage URL (default: sqlite DIR/optuna.db)

One study per (model, task, aligner, schedule); the experiment's seeds
are the repeats of every setting. Everything is checked here, before any
trial starts; ``check_objective`` checks that the trials have the
validation data the objective reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from orchestrator.experiment_schema import SEARCH
from search_spaces.freezing_depth import ALL_SIDES, SIDES, FreezingDepthSpace
from trainables.errors import SpecError, unknown_name
from trainables.languages import SOURCE_LANGUAGE
from trainables.settings_schema import check_section

SEARCH_KEYS = tuple(SEARCH)
SAMPLERS = ("tpe", "random", "grid")
OBJECTIVES = ("target-dev", "english-dev")


@dataclass(frozen=True)
class SearchSettings:
    trials: int = 8
    sides: tuple[str, ...] = SIDES
    depths: tuple[int, int | None] = (0, None)
    objective: str = "target-dev"
    metric: str | None = None
    sampler: str = "tpe"
    seed: int = 0
    parallel: int | None = None          # settings in flight at most; None: the cluster decides
    baseline: bool = True
    storage: str | None = None

    @property
    def space(self) -> FreezingDepthSpace:
        return FreezingDepthSpace(self.sides, self.depths[0], self.depths[1])

    def fingerprint(self) -> dict[str, Any]:
        """What must not change between a search and its resumption (``trials`` and ``parallel`` may)."""
        data = asdict(self)
        for key in ("trials", "parallel", "storage"):
            data.pop(key)
        data["sides"], data["depths"] = list(self.sides), list(self.depths)
        return data


def parse_search(raw: Any) -> SearchSettings:
    if not isinstance(raw, dict):
        raise SpecError(f"search must be a mapping, got {type(raw).__name__}")
    check_section(raw, SEARCH, "search")      # keys, types and ranges of the scalar settings
    defaults = SearchSettings()
    sides = raw.get("sides", list(SIDES))
    sides = sides if isinstance(sides, list) else [sides]
    if not sides:
        raise SpecError("search.sides is empty")
    for side in sides:
        if side not in ALL_SIDES:
            raise unknown_name("side in search.sides", side, ALL_SIDES)
    depths = raw.get("depths", [0, None])
    if (not isinstance(depths, list) or len(depths) != 2
            or any(d is not None and (not isinstance(d, int) or isinstance(d, bool) or d < 0) for d in depths)
            or depths[0] is None):
        raise SpecError(f"search.depths must be [lowest, highest] frozen blocks (integers >= 0; "
                        f"highest may be null), got {depths!r}")
    if depths[1] is not None and depths[1] < depths[0]:
        raise SpecError(f"search.depths: highest {depths[1]} is below lowest {depths[0]}")
    storage = raw.get("storage")
    if storage is not None and "://" not in storage:
        raise SpecError(f"search.storage must be an Optuna storage URL such as sqlite:///path/optuna.db, "
                        f"got {storage!r}")
    return SearchSettings(
        trials=raw.get("trials", defaults.trials), sides=tuple(dict.fromkeys(str(s) for s in sides)),
        depths=(depths[0], depths[1]), objective=raw.get("objective", defaults.objective),
        metric=raw.get("metric"), sampler=raw.get("sampler", defaults.sampler),
        seed=raw.get("seed", defaults.seed), parallel=raw.get("parallel"),
        baseline=raw.get("baseline", defaults.baseline), storage=storage)


def check_space(settings: SearchSettings, model: str, num_blocks: int) -> None:
    """The depth range must fit the model: a one-line error naming both otherwise."""
    low, high = settings.space.depth_range(num_blocks)
    if high > num_blocks or low > high:
        raise SpecError(f"search.depths [{low}, {high}] outside 0..{num_blocks} for {model} "
                        f"({num_blocks} blocks)")


def validation_languages(spec: Any) -> set[str] | None:
    """Languages a trial has validation data for; None: a directory (every language it holds)."""
    validation = spec.data.get("validation")
    if not validation:
        return set()
    return set(validation) if isinstance(validation, dict) else None


def check_objective(settings: SearchSettings, trials: list[Any]) -> None:
    """Every searched trial must have the validation data its objective reads: a one-line error otherwise."""
    for spec in trials:
        languages = validation_languages(spec)
        if languages is None:
            continue
        if settings.objective == "english-dev" and SOURCE_LANGUAGE not in languages:
            raise SpecError(f"search.objective english-dev: task {spec.task} has no validation data for "
                            f"{SOURCE_LANGUAGE} (data.{spec.task}.validation.{SOURCE_LANGUAGE})")
        if settings.objective == "target-dev" and not languages & set(spec.languages):
            raise SpecError(f"search.objective target-dev: task {spec.task} has no validation data for any "
                            f"target language (data.{spec.task}.validation)")
