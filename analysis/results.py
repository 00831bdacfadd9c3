"""Results in: one tidy long table from run directories, tidy files and the authors' CSVs.

The tidy table has a row per (model, task, strategy, aligner, schedule,
seed, language, metric) with the value as a fraction, plus provenance
columns. English (source-language) scores are kept with ``is_target``
False; averages and counts use target languages only.

Errored and missing trials of a run directory are returned next to the
table, so that the caller reports them: a grid with holes must say so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis import reference, vocabulary
from trainables.artifacts import atomic_write_text, write_atomically
from trainables.errors import DataError, SpecError, short
from trainables.languages import SOURCE_LANGUAGE
from trainables.storage import location
from trainables.tasks.registry import TASKS

KEY_COLUMNS: tuple[str, ...] = ("model", "task", "strategy", "aligner", "schedule", "seed",
                                "language", "metric")
TIDY_COLUMNS: tuple[str, ...] = KEY_COLUMNS[:7] + ("is_target", "metric", "value")
PROVENANCE_COLUMNS: tuple[str, ...] = ("source", "trial_id", "spec_key", "num_blocks",
                                       "realign_steps", "finetune_steps", "device", "hostname")
_REQUIRED = ("model", "task", "strategy", "aligner", "seed", "language", "metric", "value")
_INTEGER_PROVENANCE = ("num_blocks", "realign_steps", "finetune_steps")
_TEXT_PROVENANCE = ("source", "trial_id", "spec_key", "device", "hostname")
# Scores are fractions; a value above this is almost surely a percentage.
_MAX_VALUE = 1.0 + 1e-9

PACKAGED_REFERENCE_NAME = "reference"


@dataclass(frozen=True)
class TrialIssue:
    """A planned trial with no usable result: errored, or missing altogether."""

    trial_id: str
    status: str               # "error" | "missing"
    description: str          # model/task/strategy/aligner/seed, as far as known
    error: str = ""
    source: str = ""


@dataclass
class LoadedResults:
    table: pd.DataFrame
    errored: list[TrialIssue] = field(default_factory=list)
    missing: list[TrialIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # e.g. duplicate rows dropped


def empty_table() -> pd.DataFrame:
    return tidy_frame([], "<empty>")


def tidy_frame(records: list[dict] | pd.DataFrame, source: object) -> pd.DataFrame:
    """Records -> the tidy table with canonical columns, types and checks.

    The baseline's aligner is normalised to "none" and its schedule to
    "before"; a missing schedule means "before"; values must be fractions
    in [0, 1].
    """
    frame = pd.DataFrame(records) if not isinstance(records, pd.DataFrame) else records.copy()
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing and len(frame):
        raise DataError(f"tidy table lacks column(s) {', '.join(missing)} "
                        f"(needs {', '.join(_REQUIRED)})", source, 1)
    for column in _REQUIRED:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype=object)
    if "schedule" not in frame.columns:
        frame["schedule"] = vocabulary.DEFAULT_SCHEDULE
    if "is_target" not in frame.columns:
        frame["is_target"] = frame["language"].astype(str) != SOURCE_LANGUAGE
    for column in _TEXT_PROVENANCE:
        if column not in frame.columns:
            frame[column] = str(source) if column == "source" else ""
    for column in _INTEGER_PROVENANCE:
        if column not in frame.columns:
            frame[column] = None

    for column in ("model", "task", "strategy", "aligner", "schedule", "language", "metric",
                   *_TEXT_PROVENANCE):
        frame[column] = frame[column].fillna("").astype(str).str.strip()
    # The baseline realigns nothing: its aligner and schedule carry no meaning,
    # and one baseline serves every realignment variant.
    baseline = frame["strategy"] == vocabulary.BASELINE
    frame.loc[baseline | (frame["aligner"] == ""), "aligner"] = vocabulary.NO_ALIGNER
    frame.loc[baseline | (frame["schedule"] == ""), "schedule"] = vocabulary.DEFAULT_SCHEDULE
    frame["is_target"] = frame["is_target"].map(_as_bool)
    frame["seed"] = _numbers(frame, "seed", source).astype("int64")
    frame["value"] = _numbers(frame, "value", source).astype("float64")
    for column in _INTEGER_PROVENANCE:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").round().astype("Int64")

    unknown_tasks = sorted(set(frame["task"]) - set(TASKS))
    if unknown_tasks:
        line = _line_of(frame, frame["task"] == unknown_tasks[0])
        raise DataError(f"unknown task {unknown_tasks[0]!r} (known: {', '.join(TASKS)})",
                        source, line)
    out_of_range = frame["value"].notna() & ((frame["value"] < 0) | (frame["value"] > _MAX_VALUE))
    if out_of_range.any():
        line = _line_of(frame, out_of_range)
        value = frame.loc[out_of_range, "value"].iloc[0]
        raise DataError(f"value {value} is not a fraction in [0, 1] (store scores as "
                        f"fractions, not percentages)", source, line)
    return frame[list(TIDY_COLUMNS + PROVENANCE_COLUMNS)].reset_index(drop=True)


def _as_bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _numbers(frame: pd.DataFrame, column: str, source: object) -> pd.Series:
    """The column as numbers; every cell must hold one (a seed: an integer), an empty one included.

    An empty score is no measurement: left in, it would show as an empty
    cell of the tables without a word, so it is refused with its line.
    """
    numbers = pd.to_numeric(frame[column], errors="coerce")
    empty = frame[column].isna() | (frame[column].astype(str).str.strip() == "")
    if empty.any():
        raise DataError(f"column {column}: empty (every row needs its {column})", source,
                        _line_of(frame, empty))
    bad = numbers.isna()
    if column == "seed":
        bad |= ~numbers.abs().lt(2 ** 62) | (numbers != numbers.round())
    if bad.any():
        text = frame.loc[bad, column].iloc[0]
        kind = "an integer" if numbers[bad].notna().iloc[0] else "a number"   # 1.5, inf: numbers, not seeds
        raise DataError(f"column {column}: not {kind}: {short(text)}", source, _line_of(frame, bad))
    return numbers


def _line_of(frame: pd.DataFrame, mask: pd.Series) -> int | None:
    """File line of the first masked row when the frame came from a CSV."""
    if "_line" in frame.columns:
        return int(frame.loc[mask, "_line"].iloc[0])
    return None


# ---------------------------------------------------------------- tidy files

def tidy_file_table(path: str | Path) -> pd.DataFrame:
    """A tidy table stored as CSV or Parquet."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as error:    # pyarrow's ArrowInvalid is a ValueError
            raise DataError(f"not a readable Parquet file ({str(error).strip()[:120]})", path) from None
    else:
        frame = reference.read_csv_text(path)
        frame["_line"] = range(2, len(frame) + 2)
    if "source" not in frame.columns:
        frame["source"] = str(path)
    return tidy_frame(frame, path)


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write a tidy table as CSV, or Parquet when the name ends in .parquet (whole, or not at all)."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        _written(path, lambda: write_atomically(path, lambda temporary: table.to_parquet(temporary, index=False)))
    else:
        _written(path, lambda: write_atomically(path, lambda temporary: table.to_csv(temporary, index=False)))


def write_text(path: str | Path, text: str) -> None:
    _written(Path(path), lambda: atomic_write_text(path, text))


def _written(path: Path, write) -> None:
    """Run ``write`` (a temporary file renamed into place); a failure is one line, and leaves no file."""
    try:
        write()
    except OSError as error:     # a read-only disk (root passes every access check), a full one
        raise DataError(f"cannot be written ({error.strerror or type(error).__name__})", path) from None


# ---------------------------------------------------------- run directories

def _read_json(path: Path, finite: bool = False) -> dict:
    """A JSON object; ``finite``: NaN and Infinity (not JSON) are malformed too."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"),   # a local path or a storage URI's
                          **({"parse_constant": _no_constant} if finite else {}))
    except json.JSONDecodeError as error:
        raise DataError(f"malformed JSON: {error.msg}", path, error.lineno) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise DataError(f"malformed JSON: {error}", path) from None
    except OSError as error:
        raise DataError(f"cannot read: {error}", path) from None
    if not isinstance(data, dict):
        raise DataError("expected a JSON object", path, 1)
    return data


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _describe(spec: dict) -> str:
    keys = ("model", "task", "strategy", "aligner", "schedule", "seed")
    return "/".join(str(spec[k]) for k in keys if spec.get(k) not in (None, ""))


def is_run_directory(path: Path) -> bool:
    return path.is_dir() and ((path / "experiment.json").is_file() or (path / "results").is_dir())


def run_directory_results(directory: str | Path) -> LoadedResults:
    """Every completed trial of an ``alignfreeze run`` directory, plus the
    errored and the missing ones (planned in experiment.json, no file)."""
    directory = location(directory, "results source")
    if not is_run_directory(directory):
        raise DataError("not a run directory (no experiment.json, no results/)", directory)
    planned: dict[str, dict] = {}
    if (directory / "experiment.json").is_file():
        experiment = _read_json(directory / "experiment.json")
        trials = experiment.get("trials", [])
        for trial in trials if isinstance(trials, list) else []:
            if isinstance(trial, dict) and "trial_id" in trial:
                spec = trial.get("spec")
                planned[str(trial["trial_id"])] = spec if isinstance(spec, dict) else {}

    records: list[dict] = []
    completed: set[str] = set()
    errored: list[TrialIssue] = []
    for path in sorted((directory / "results").glob("*.json")):
        # a damaged file (truncated, NaN) is refused in one line, never an empty cell
        try:
            result = _read_json(path, finite=True)
        except DataError as error:
            raise DataError(f"{error}; run the experiment again: alignfreeze run moves it aside "
                            "and reruns its trial") from None
        trial_id = str(result.get("trial_id", path.stem))
        spec = _spec(result, path) or planned.get(trial_id, {})
        if result.get("status", "completed") != "completed":
            errored.append(TrialIssue(trial_id, "error", _describe(spec),
                                      str(result.get("error", f"status {result.get('status')}")),
                                      str(path)))
            continue
        records.extend(_result_records(result, spec, trial_id, path))
        completed.add(trial_id)
    for path in sorted((directory / "errors").glob("*.json")):
        error = _read_json(path)
        trial_id = str(error.get("trial_id", path.stem))
        if trial_id in completed:   # errored once, completed on resume
            continue
        spec = _spec(error, path) or planned.get(trial_id, {})
        message = str(error.get("error", "")).strip().splitlines()
        errored.append(TrialIssue(trial_id, "error", _describe(spec),
                                  message[-1] if message else "", str(path)))
    seen = completed | {issue.trial_id for issue in errored}
    missing = [TrialIssue(trial_id, "missing", _describe(spec), source=str(directory))
               for trial_id, spec in planned.items() if trial_id not in seen]
    return LoadedResults(tidy_frame(records, directory), errored, missing)


def _spec(record: dict, path: Path) -> dict:
    spec = record.get("spec") or {}
    if not isinstance(spec, dict):
        raise DataError("'spec' is not an object", path)
    return spec


def _result_records(result: dict, spec: dict, trial_id: str, path: Path) -> list[dict]:
    for key in ("model", "task", "strategy", "seed"):
        if key not in spec:
            raise DataError(f"spec lacks {key!r}", path)
    metrics = result.get("metrics")
    if not isinstance(metrics, dict):
        raise DataError("no 'metrics' object", path)
    provenance = result.get("provenance") or {}
    common = {
        "model": spec["model"], "task": spec["task"], "strategy": spec["strategy"],
        "aligner": spec.get("aligner") or vocabulary.NO_ALIGNER,
        "schedule": spec.get("schedule") or vocabulary.DEFAULT_SCHEDULE, "seed": spec["seed"],
        "source": str(path), "trial_id": trial_id,
        "spec_key": provenance.get("spec_key", ""), "num_blocks": provenance.get("num_blocks"),
        "realign_steps": provenance.get("realign_steps"),
        "finetune_steps": provenance.get("finetune_steps"),
        "device": provenance.get("device", ""), "hostname": provenance.get("hostname", ""),
    }
    records = []
    english = result.get("english") or {}
    for language, scores in [*metrics.items(), ("english", english)]:
        if not isinstance(scores, dict):
            raise DataError(f"metrics of {short(language)} are not an object", path)
        for metric, value in scores.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise DataError(f"metric {short(language)} {short(metric)}: not a number: {short(value)}", path)
    for language, scores in metrics.items():
        for metric, value in scores.items():
            records.append({**common, "language": language, "is_target": True,
                            "metric": metric, "value": value})
    if SOURCE_LANGUAGE not in metrics:
        for metric, value in english.items():
            records.append({**common, "language": SOURCE_LANGUAGE, "is_target": False,
                            "metric": metric, "value": value})
    return records


# ------------------------------------------------------------------ sources

def source_results(source: str | Path) -> LoadedResults:
    """Load one source: a run directory, a directory of authors' CSVs, a tidy
    CSV / Parquet file, an authors' CSV, or ``reference`` (the packaged
    authors' results) when no file of that name exists."""
    path = location(source, "results source")
    if not path.exists():
        if str(source) == PACKAGED_REFERENCE_NAME:
            return LoadedResults(reference.reference_table(reference.PACKAGED_REFERENCE))
        raise DataError("no such file or directory", path)
    if path.is_dir():
        if is_run_directory(path):
            return run_directory_results(path)
        csvs = sorted(path.glob("*.csv"))
        if csvs and all(reference.is_reference_csv(f) for f in csvs):
            return LoadedResults(reference.reference_table(path))
        raise DataError("directory is neither a run directory (experiment.json, results/) "
                        "nor a directory of the authors' CSV files", path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return LoadedResults(tidy_file_table(path))
    if path.suffix.lower() in (".csv", ".tsv", ".txt") or path.suffix == "":
        if reference.is_reference_csv(path):
            return LoadedResults(reference.reference_file_table(path))
        return LoadedResults(tidy_file_table(path))
    raise DataError(f"unknown file type {path.suffix!r} (expected a directory, .csv or .parquet)",
                    path)


def sources_results(sources: list[str | Path]) -> LoadedResults:
    """Load and concatenate several sources; exact duplicate measurements
    (same key from two sources) keep the first and are reported in notes."""
    if not sources:
        raise SpecError("no results source given")
    loaded = [source_results(source) for source in sources]
    frames = [item.table for item in loaded if len(item.table)]
    table = pd.concat(frames, ignore_index=True) if frames else empty_table()
    duplicated = table.duplicated(list(KEY_COLUMNS), keep="first")
    notes = []
    if duplicated.any():
        example = table.loc[duplicated].iloc[0]
        notes.append(f"{int(duplicated.sum())} duplicate measurements (same model, task, strategy, "
                     f"aligner, schedule, seed, language, metric) kept once, e.g. "
                     f"{example['model']}/{example['task']}/{example['strategy']}/seed "
                     f"{example['seed']} from {example['source']}")
        table = table.loc[~duplicated].reset_index(drop=True)
    return LoadedResults(table,
                         [issue for item in loaded for issue in item.errored],
                         [issue for item in loaded for issue in item.missing], notes)
