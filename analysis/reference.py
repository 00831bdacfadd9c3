"""Import of the AlignFreeze authors' per-seed result CSVs.

One authors' file holds one (model, task): a row per (seed, method) and a
column per (language, metric), ``final_eval_<lang>_<metric>`` for PoS, NER
and NLI, ``eval_<lang>_<metric>`` for QA. ``<lang>`` = ``avg`` is the
average over targets (recomputed here, so dropped) and ``same`` the English
score (kept as language ``en`` with ``is_target`` False).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd

from analysis import vocabulary
from trainables.errors import DataError
from trainables.languages import SOURCE_LANGUAGE, check_language
from trainables.tasks.registry import TASKS

PACKAGED_REFERENCE = Path(__file__).resolve().parent / "reference_data" / "alignfreeze-2025"

ALIGNERS: tuple[str, ...] = ("fastalign", "awesome", "dico")

# Authors' method prefix -> (strategy, schedule); the suffix is the aligner.
# Longest prefixes first, since "freeze_realign_unfreeze_" prefixes the others.
_METHOD_PREFIXES: tuple[tuple[str, str, str], ...] = (
    ("freeze_realign_unfreeze_last_half_", "back", "before"),
    ("freeze_realign_unfreeze_last_6_", "back", "before"),
    ("freeze_realign_unfreeze_", "front", "before"),
    ("during_partial_freeze_front_", "front", "during"),
    ("during_partial_freeze_back_", "back", "during"),
    ("during_", "full", "during"),
    ("before_", "full", "before"),
)

_METRICS = {"accuracy": "accuracy", "f1": "f1", "precision": "precision",
            "recall": "recall", "em": "exact_match", "exact_match": "exact_match"}
_COLUMN = re.compile(r"^(final_eval|eval)_([a-z]+)_(exact_match|accuracy|precision|recall|f1|em)$")
_REQUIRED = ("seed", "model", "task", "method")


def method_strategy(method: str) -> tuple[str, str, str]:
    """(strategy, aligner, schedule) of an authors' method name; ValueError if unknown."""
    if method == "baseline":
        return vocabulary.BASELINE, vocabulary.NO_ALIGNER, vocabulary.DEFAULT_SCHEDULE
    for prefix, strategy, schedule in _METHOD_PREFIXES:
        if method.startswith(prefix):
            aligner = method[len(prefix):]
            if aligner in ALIGNERS:
                return strategy, aligner, schedule
    raise ValueError(f"unknown method {method!r} (expected baseline, before_X, "
                     f"freeze_realign_unfreeze[_last_half|_last_6]_X, during_* with X in "
                     f"{', '.join(ALIGNERS)})")


def task_of_reference(name: str) -> str:
    """The project's task name for an authors' task name (udpos -> pos, ...)."""
    for task, definition in TASKS.items():
        if name in (definition.reference_name, task):
            return task
    known = ", ".join(d.reference_name for d in TASKS.values())
    raise ValueError(f"unknown task {name!r} (expected one of {known})")


def is_reference_header(columns: list[str]) -> bool:
    return "method" in columns and "seed" in columns and any(_COLUMN.match(c) for c in columns)


def _metric_columns(columns: list[str]) -> dict[str, tuple[str, str]]:
    """column -> (language, metric) for the final evaluation columns of a file.

    PoS, NER and NLI files carry both ``eval_`` (during training) and
    ``final_eval_`` columns; the final ones are the reported results. QA
    files only have ``eval_``.
    """
    parsed = {c: _COLUMN.match(c) for c in columns}
    parsed = {c: m for c, m in parsed.items() if m}
    prefix = "final_eval" if any(m.group(1) == "final_eval" for m in parsed.values()) else "eval"
    return {c: (m.group(2), _METRICS[m.group(3)]) for c, m in parsed.items()
            if m.group(1) == prefix and m.group(2) != "avg"}


def reference_file_table(path: str | Path) -> pd.DataFrame:
    """The tidy table of one authors' CSV file."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.ParserError as error:
        raise DataError(f"malformed CSV: {error}", path) from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read: {error}", path) from None
    columns = list(frame.columns)
    missing = [c for c in _REQUIRED if c not in columns]
    if missing:
        raise DataError(f"not an authors' results file: no column {', '.join(missing)}", path, 1)
    metric_columns = _metric_columns(columns)
    if not metric_columns:
        raise DataError("no eval_<lang>_<metric> columns", path, 1)
    for column, (language, _) in metric_columns.items():
        if language != "same":
            try:
                check_language(language, f"language of column {column}")
            except Exception as error:  # SpecError: name file and header line
                raise DataError(str(error), path, 1) from None

    records = []
    for index, row in frame.iterrows():
        line = int(index) + 2  # header is line 1
        try:
            strategy, aligner, schedule = method_strategy(row["method"])
            task = task_of_reference(row["task"])
            seed = int(row["seed"])
        except ValueError as error:
            raise DataError(str(error), path, line) from None
        provenance = {
            "source": str(path),
            "trial_id": f"{row['model']}/{row['task']}/{row['method']}/{seed}",
            "spec_key": "",
            "num_blocks": vocabulary.PAPER_MODELS.get(row["model"], (None, None))[1],
            "realign_steps": _optional_int(row.get("realignment_steps")),
            "finetune_steps": _optional_int(row.get("finetuning_steps")),
            "device": "",
            "hostname": "",
        }
        for column, (language, metric) in metric_columns.items():
            text = row[column]
            try:
                value = float(text)
            except ValueError:
                raise DataError(f"column {column}: not a number: {text!r}", path, line) from None
            is_target = language != "same"
            records.append({
                "model": row["model"], "task": task, "strategy": strategy, "aligner": aligner,
                "schedule": schedule, "seed": seed,
                "language": language if is_target else SOURCE_LANGUAGE,
                "is_target": is_target, "metric": metric, "value": value, **provenance,
            })
    from analysis.results import tidy_frame  # late: results imports this module

    return tidy_frame(records, path)


def reference_table(path: str | Path) -> pd.DataFrame:
    """The tidy table of an authors' CSV file, or of every CSV in a directory."""
    path = Path(path)
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise DataError("no CSV files", path)
    return pd.concat([reference_file_table(f) for f in files], ignore_index=True)


def is_reference_csv(path: str | Path) -> bool:
    with open(path, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle), [])
    return is_reference_header(header)


def _optional_int(text: object) -> int | None:
    try:
        return int(float(str(text)))
    except ValueError:
        return None


_PUBLISHED_HEADER = "| model | method |"


def published_table(readme: str | Path = PACKAGED_REFERENCE / "README.md") -> pd.DataFrame:
    """The paper's published table, read from the reference README.

    One row per (model, strategy, task): model id, strategy, task, average
    (x100 as printed), down and up (None for the baseline).
    """
    labels = {label: strategy for strategy, label in vocabulary.STRATEGY_LABELS.items()}
    labels.update({"AlignFreeze front": "front", "AlignFreeze back": "back"})
    models = {label: model for model, (label, _) in vocabulary.PAPER_MODELS.items()}
    lines = Path(readme).read_text(encoding="utf-8").splitlines()
    start = next(i for i, text in enumerate(lines) if text.startswith(_PUBLISHED_HEADER))
    header = [cell.strip() for cell in lines[start].strip("|").split("|")]
    tasks = ("pos", "ner", "nli", "qa")  # the README's column order
    rows = []
    for text in lines[start + 2:]:
        if not text.startswith("|"):
            break
        cells = [cell.strip() for cell in text.strip().strip("|").split("|")]
        assert len(cells) == len(header), text
        for position, task in enumerate(tasks):
            average, down, up = cells[2 + 3 * position: 5 + 3 * position]
            rows.append({"model": models[cells[0]], "strategy": labels[cells[1]], "task": task,
                         "average": float(average),
                         "down": int(down) if down else None, "up": int(up) if up else None})
    return pd.DataFrame(rows)
