"""What data a grid reads: datasets fetched at run time, local files it reads.

``alignfreeze run FILE --dry-run`` prints this plan after validating the
grid, so that a researcher sees before a week-long run which Hub datasets
(and MUSE dictionaries) the nodes will download and which local files it
reads. Nothing here touches the network or reads a data file. A pharaoh
alignment file's line says on how many pairs preflight checked its links
(``corpus.PHARAOH_CHECKED_PAIRS``; every line is parsed and counted).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from orchestrator.preflight import is_local
from trainables.languages import SOURCE_LANGUAGE
from trainables.tasks.registry import get_task
from trainables.trial_spec import TrialSpec


@dataclass(frozen=True)
class FetchNeed:
    dataset_id: str          # a Hub dataset id, or the address of a MUSE dictionary
    config: str | None
    split: str               # "-" for a plain file
    use: str                 # e.g. "ner test (ar)", "realignment (ar)"


@dataclass(frozen=True)
class LocalNeed:
    path: str
    use: str


@dataclass(frozen=True)
class DataPlan:
    fetched: list[FetchNeed]
    local: list[LocalNeed]


def _task_hub(task: str, source: str, language: str, split: str) -> tuple[str, str | None, str]:
    """(dataset id, config, split) a task's Hub source resolves to, from the task module's
    ``hub_dataset`` (the one place that knows the task's Hub layout)."""
    module = importlib.import_module(get_task(task).implementation.partition(":")[0])
    return module.hub_dataset(source, language, split)


def data_plan(trials: list[TrialSpec]) -> DataPlan:
    """Every distinct Hub dataset and local file the trials read, in first-use order."""
    from trainables.realignment.corpus import PHARAOH_CHECKED_PAIRS
    from trainables.realignment.muse import muse_url
    from trainables.realignment.parallel_data import opus100_dataset

    hub: dict[tuple[str, str | None, str], list[str]] = {}
    local: dict[str, list[str]] = {}

    def need(location: Any, use: str, hub_of: Any) -> None:
        if isinstance(location, dict):           # line-aligned parallel files
            for side in ("source", "target"):
                need(location[side], f"{use} {side}", hub_of)
        elif is_local(location):
            local.setdefault(location, []).append(use)
        else:
            hub.setdefault(hub_of(location), []).append(use)

    for spec in trials:
        task = spec.task
        need(spec.data["train"], f"{task} train ({SOURCE_LANGUAGE})",
             lambda source: _task_hub(task, source, SOURCE_LANGUAGE, "train"))
        for language, location in spec.data.get("eval", {}).items():
            need(location, f"{task} test ({language})",
                 lambda source, language=language: _task_hub(task, source, language, "test"))
        for language, location in (spec.data.get("validation") or {}).items():
            need(location, f"{task} validation ({language})",
                 lambda source, language=language: _task_hub(task, source, language, "validation"))
        if not spec.realigns:
            continue
        realignment = spec.realignment
        for language in realignment.get("languages", ()):
            need(realignment["parallel"][language], f"realignment ({language})",
                 lambda source, language=language: opus100_dataset(source, language))
            if spec.aligner == "dico":
                need(realignment["dictionaries"][language], f"dictionary ({language})",
                     lambda source, language=language: (muse_url(language), None, "-"))
            if spec.aligner == "pharaoh":
                # preflight checks the links of a bounded prefix (corpus.PHARAOH_CHECKED_PAIRS): say so
                need(realignment["alignments"][language],
                     f"alignments ({language}; links checked on the first {PHARAOH_CHECKED_PAIRS:,} pairs)", None)
    return DataPlan([FetchNeed(*key, _summary(uses)) for key, uses in hub.items()],
                    [LocalNeed(path, _summary(uses)) for path, uses in local.items()])


def _summary(uses: list[str]) -> str:
    distinct = list(dict.fromkeys(uses))
    return ", ".join(distinct[:3]) + (f" (+{len(distinct) - 3} more)" if len(distinct) > 3 else "")


def format_plan(plan: DataPlan) -> str:
    lines = [f"data fetched at run time ({len(plan.fetched)}):"]
    for need in plan.fetched:
        config = f" [{need.config}]" if need.config else ""
        split = f" {need.split}" if need.split != "-" else ""
        lines.append(f"  {need.dataset_id}{config}{split}: {need.use}")
    lines.append(f"local data read ({len(plan.local)} files or directories, all present):")
    lines.extend(f"  {need.path}: {need.use}" for need in plan.local)
    return "\n".join(lines)
