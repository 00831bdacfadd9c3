"""``alignfreeze export``: a run directory as one tidy per-seed, per-language table.

One row per trial x split x language x metric, English included, for any
tool (pandas, R, a spreadsheet): the test scores the tables are built from
and the validation scores a search selects on. Values are fractions, as in
the result files; nothing is averaged.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import vocabulary
from analysis.results import (
    LoadedResults,
    _read_json,
    _spec,
    is_run_directory,
    run_directory_results,
)
from trainables.errors import DataError
from trainables.languages import SOURCE_LANGUAGE
from trainables.storage import location

EXPORT_COLUMNS: tuple[str, ...] = ("trial_id", "model", "task", "strategy", "aligner", "schedule",
                                   "seed", "language", "is_target", "split", "metric", "value")
SUFFIXES: tuple[str, ...] = (".csv", ".parquet", ".pq")

# (result key, split, target languages?): per-language scores keyed by language, English's by metric
_SCORES = (("metrics", "test", True), ("english", "test", False),
           ("validation", "validation", True), ("english_validation", "validation", False))


def _trial_rows(result: dict, spec: dict, trial_id: str, path: Path) -> list[dict]:
    for key in ("model", "task", "strategy", "seed"):
        if key not in spec:
            raise DataError(f"spec lacks {key!r}", path)
    common = {"trial_id": trial_id, "model": spec["model"], "task": spec["task"],
              "strategy": spec["strategy"],
              "aligner": (vocabulary.NO_ALIGNER if spec["strategy"] == vocabulary.BASELINE
                          else spec.get("aligner") or vocabulary.NO_ALIGNER),
              "schedule": spec.get("schedule") or vocabulary.DEFAULT_SCHEDULE,
              "seed": spec["seed"]}
    rows = []
    for key, split, per_language in _SCORES:
        scores = result.get(key) or {}
        if not isinstance(scores, dict):
            raise DataError(f"{key!r} is not an object", path)
        by_language = scores if per_language else {SOURCE_LANGUAGE: scores}
        for language, values in by_language.items():
            if not isinstance(values, dict):
                raise DataError(f"{key} of {language}: not an object", path)
            for metric, value in values.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise DataError(f"{key} {language} {metric}: not a number: {value!r}", path)
                rows.append({**common, "language": language,
                             "is_target": language != SOURCE_LANGUAGE, "split": split,
                             "metric": metric, "value": float(value)})
    return rows


def export_table(directory: str | Path) -> tuple[pd.DataFrame, LoadedResults]:
    """The tidy table of a run directory's completed trials, and the loaded results
    (for its errored and missing trials). Rows: models, tasks and strategies in the
    paper's order, then seed, test before validation, languages in the task's order."""
    path = location(directory, "export source")
    if not path.exists():
        raise DataError("no such directory", path)
    if not is_run_directory(path):
        raise DataError("not a run directory (no experiment.json, no results/): export reads "
                        "what alignfreeze run --output wrote", path)
    loaded = run_directory_results(path)     # refuses a damaged result file in one line
    rows: list[dict] = []
    for result_path in sorted((path / "results").glob("*.json")):
        result = _read_json(result_path, finite=True)
        if result.get("status", "completed") != "completed":
            continue
        rows += _trial_rows(result, _spec(result, result_path),
                            str(result.get("trial_id", result_path.stem)), result_path)
    if not rows:
        raise DataError("no completed trial to export", path)
    table = pd.DataFrame(rows, columns=list(EXPORT_COLUMNS))
    table["seed"] = table["seed"].astype("int64")
    keys = list(zip(table["model"].map(vocabulary.model_order), table["task"].map(vocabulary.task_order),
                    table["strategy"].map(vocabulary.strategy_order), table["aligner"],
                    table["schedule"], table["seed"], table["trial_id"],
                    table["split"].map({"test": 0, "validation": 1}),
                    [vocabulary.language_order(t, l) for t, l in zip(table["task"], table["language"])],
                    table["metric"]))
    ranked = sorted(range(len(table)), key=keys.__getitem__)
    return table.iloc[ranked].reset_index(drop=True), loaded
