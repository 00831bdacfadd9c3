"""What the depth search reads out of result files: the objective (validation) and the test scores.

A result file (``results/<trial_id>.json``) holds the test metrics
(``metrics`` per target language, ``average``, ``english``) and, for a
trial with validation data, the same on the validation split
(``validation``, ``validation_average``, ``english_validation``). The
search tells Optuna a validation score only: ``target-dev`` reads
``validation_average``, ``english-dev`` ``english_validation``; the test
scores are reported beside it, never chosen on.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from orchestrator import results as results_dir
from trainables.tasks.registry import get_task
from trainables.trial_spec import TrialSpec

# the result key each objective reads its per-seed value from
OBJECTIVE_KEYS = {"target-dev": "validation_average", "english-dev": "english_validation"}
OBJECTIVE_LABELS = {"target-dev": "validation average over the target languages",
                    "english-dev": "English validation (strict zero-shot)"}


def objective_metric(settings: Any, task: str) -> str:
    return settings.metric or get_task(task).primary_metric


def seed_results(output: Path, specs: list[TrialSpec]) -> list[dict[str, Any]] | None:
    """Each seed's result, or None while one is missing."""
    paths = [output / results_dir.RESULTS / f"{spec.trial_id}.json" for spec in specs]
    if not all(path.is_file() for path in paths):
        return None
    return [json.loads(path.read_text(encoding="utf-8")) for path in paths]


def objective_value(result: dict[str, Any], objective: str, metric: str) -> float | None:
    value = (result.get(OBJECTIVE_KEYS[objective]) or {}).get(metric)
    return None if value is None else float(value)


def on_test(result: dict[str, Any], metric: str) -> float | None:
    value = (result.get("average") or {}).get(metric)
    return None if value is None else float(value)


def seed_values(output: Path, specs: list[TrialSpec], objective: str, metric: str) -> list[float] | None:
    """The objective's value of each seed, or None while a result (or its validation score) is missing."""
    results = seed_results(output, specs)
    if results is None:
        return None
    values = [objective_value(result, objective, metric) for result in results]
    return None if any(value is None for value in values) else values  # type: ignore[return-value]


def mean_std(values: list[float]) -> dict[str, Any] | None:
    """Mean and population std over seeds, with the seeds' values; None without values."""
    if not values:
        return None
    return {"mean": statistics.fmean(values), "std": statistics.pstdev(values), "seed_values": values}


def scores(results: list[dict[str, Any]], objective: str, metric: str) -> dict[str, Any]:
    """Validation (the objective) and test scores over the seeds of one setting."""
    validation = [objective_value(r, objective, metric) for r in results]
    test = [on_test(r, metric) for r in results]
    return {"validation": mean_std([v for v in validation if v is not None]) if None not in validation else None,
            "test": mean_std([v for v in test if v is not None]) if None not in test else None}


def trial_attributes(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Optuna user attributes: every language's validation and test metrics, mean over seeds, and the seeds'.

    ``val_<lang>_<metric>`` / ``test_<lang>_<metric>`` (``avg`` = the target
    average, ``en`` = English): the mean over seeds, what optuna-dashboard
    shows per trial; ``seed_values``: the same names, each seed's value
    (one attribute: each attribute is a write to the study's storage).
    """
    sections = (("val", "validation", "validation_average", "english_validation"),
                ("test", "metrics", "average", "english"))
    collected: dict[str, list[float]] = {}
    for result in results:
        for prefix, per_language, average, english in sections:
            rows = dict(result.get(per_language) or {})
            rows["avg"] = result.get(average) or {}
            rows["en"] = result.get(english) or {}
            for language, metrics in rows.items():
                for metric, value in metrics.items():
                    collected.setdefault(f"{prefix}_{language}_{metric}", []).append(float(value))
    # a metric every seed has
    collected = {name: values for name, values in sorted(collected.items()) if len(values) == len(results)}
    attributes: dict[str, Any] = {name: statistics.fmean(values) for name, values in collected.items()}
    attributes["seeds"] = [r.get("spec", {}).get("seed") for r in results]
    attributes["seed_values"] = collected
    return attributes
