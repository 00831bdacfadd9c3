"""The depth search's summary of one study: every evaluated setting, validation and test, the chosen one.

Written to ``DIR/search/<model>_<task>_<aligner>_<schedule>.json`` as
settings finish (for ``alignfreeze status`` and readers) and at the end.
Settings are ranked by the objective (validation); the chosen setting is
the best on validation, and its test score is the one to report. Each row
(and the baseline) has ``validation`` and ``test`` (mean, std, seed_values)
and, at its top level, the objective's mean, std and seed_values.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from analysis.search_tables import SEARCH_DIR
from orchestrator.search_values import OBJECTIVE_LABELS, scores, seed_results
from search_spaces.freezing_depth import point_of
from trainables.artifacts import atomic_write_json


def summary_file(output: Path, key: tuple[str, ...]) -> Path:
    model = key[0].rstrip("/").split("/")[-1]
    return output / SEARCH_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', '_'.join((model, *key[1:])))}.json"


def _baseline(both: dict[str, Any]) -> dict[str, Any]:
    return {**(both["validation"] or both["test"] or {}), **both}


def study_summary(study: Any) -> dict[str, Any]:
    """``study``: an ``orchestrator.search_study.StudyRun``. Returns the summary and writes it."""
    values, failed = study.told()
    objective = study.settings.objective
    evaluated = []
    for strategy, value in values.items():
        results = seed_results(study.output, study.by_strategy[strategy]) or []
        row = {"strategy": strategy, **point_of(strategy), **scores(results, objective, study.metric),
               "seeds": len(results), "chosen": False}
        if row["validation"] is None:        # results moved away since: the told value still counts
            row["validation"] = {"mean": value, "std": 0.0, "seed_values": []}
        evaluated.append({**row, **row["validation"]})    # mean, std, seed_values: the objective's
    evaluated.sort(key=lambda row: (-row["validation"]["mean"], row["depth"], row["strategy"]))
    if evaluated:
        evaluated[0]["chosen"] = True
    baseline_results = seed_results(study.output, study.baselines) if study.baselines else None
    model, task, aligner, schedule = study.key
    summary = {
        "study": study.name, "model": model, "task": task, "aligner": aligner, "schedule": schedule,
        "metric": study.metric, "objective": objective,
        "objective_text": f"{study.metric}, {OBJECTIVE_LABELS[objective]}, mean over seeds",
        "num_blocks": study.num_blocks, "space": sorted(study.by_strategy), "budget": study.settings.trials,
        "evaluated": evaluated, "failed": sorted(failed),
        "best": evaluated[0] if evaluated else None,
        "baseline": _baseline(scores(baseline_results, objective, study.metric)) if baseline_results else None,
        "optuna_trials": len(study.study.trials), "storage": study.storage}
    atomic_write_json(summary_file(study.output, study.key), summary)
    return summary
