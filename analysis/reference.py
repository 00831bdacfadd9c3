"""Import of the AlignFreeze authors' per-seed result CSVs.

One authors' file holds one (model, task): a row per (seed, method) and a
column per (language, metric), ``final_eval_<lang>_<metric>`` for PoS, NER
and NLI, ``eval_<lang>_<metric>`` for QA (whose ``f1`` and ``em`` are read as
``f1_paper`` and ``exact_match_paper``). ``<lang>`` = ``avg`` is the
average over targets (recomputed here, so dropped) and ``same`` the English
score (kept as language ``en`` with ``is_target`` False).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import vocabulary
from trainables.errors import DataError, short
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
# The authors' XQuAD figures are the paper's definitions of F1 and exact match
# (``trainables.tasks.squad_metric``), not the official SQuAD ones.
_TASK_METRICS = {"qa": {"f1": "f1_paper", "exact_match": "exact_match_paper"}}
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
    raise ValueError(f"unknown method {short(method)} (expected baseline, before_X, "
                     f"freeze_realign_unfreeze[_last_half|_last_6]_X, during_* with X in "
                     f"{', '.join(ALIGNERS)})")


def task_of_reference(name: str) -> str:
    """The project's task name for an authors' task name (udpos -> pos, ...)."""
    for task, definition in TASKS.items():
        if name in (definition.reference_name, task):
            return task
    known = ", ".join(d.reference_name for d in TASKS.values())
    raise ValueError(f"unknown task {short(name)} (expected one of {known})")


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
    frame = read_csv_text(path)
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

    # Row facts, checked row by row so that an error names its line.
    facts = []
    for index, (method, task, seed) in enumerate(zip(frame["method"], frame["task"],
                                                     frame["seed"])):
        try:
            facts.append((*method_strategy(method), task_of_reference(task), _seed(seed)))
        except ValueError as error:
            raise DataError(str(error), path, index + 2) from None  # header is line 1
    facts = pd.DataFrame(facts, columns=["strategy", "aligner", "schedule", "task", "seed"])
    rows = pd.DataFrame({
        "model": frame["model"], **{c: facts[c] for c in facts.columns},
        "_line": range(2, len(frame) + 2),
        "trial_id": frame["model"] + "/" + frame["task"] + "/" + frame["method"] + "/"
                    + facts["seed"].astype(str),
        "num_blocks": frame["model"].map(
            lambda model: vocabulary.PAPER_MODELS.get(model, (None, None))[1]),
        "realign_steps": pd.to_numeric(frame.get("realignment_steps"), errors="coerce"),
        "finetune_steps": pd.to_numeric(frame.get("finetuning_steps"), errors="coerce"),
    })
    columns = list(metric_columns)
    values = frame[columns].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    if np.isnan(values).any():
        line, position = (int(x[0]) for x in np.nonzero(np.isnan(values)))
        text = frame[columns[position]].iloc[line]
        raise DataError(f"column {columns[position]}: not a number: {short(text)}", path, line + 2)
    # Long format, row by row then column by column, as the file reads.
    row_index = np.repeat(np.arange(len(frame)), len(columns))
    column_index = np.tile(np.arange(len(columns)), len(frame))
    languages = np.array([language for language, _ in metric_columns.values()], dtype=object)
    metrics = np.array([metric for _, metric in metric_columns.values()], dtype=object)
    table = rows.iloc[row_index].reset_index(drop=True)
    table["is_target"] = languages[column_index] != "same"
    table["language"] = np.where(table["is_target"], languages[column_index], SOURCE_LANGUAGE)
    table["metric"] = [_TASK_METRICS.get(task, {}).get(metric, metric)
                       for task, metric in zip(table["task"], metrics[column_index])]
    table["value"] = values[row_index, column_index]
    table["source"] = str(path)
    from analysis.results import tidy_frame  # late: results imports this module

    return tidy_frame(table.drop(columns="_line"), path)


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"column seed: not an integer: {short(text)}") from None


def read_csv_text(path: Path) -> pd.DataFrame:
    """A CSV file as text cells; an unreadable, empty, binary or malformed one is a one-line DataError."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise DataError("empty file: no header line", path) from None
    except pd.errors.ParserError as error:
        raise DataError(f"malformed CSV: {str(error).strip()[:160]}", path) from None
    except UnicodeDecodeError as error:
        raise DataError(f"not UTF-8 text (byte {error.start}): is it a CSV file?", path) from None
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read: {str(error)[:160]}", path) from None


def reference_table(path: str | Path) -> pd.DataFrame:
    """The tidy table of an authors' CSV file, or of every CSV in a directory."""
    path = Path(path)
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise DataError("no CSV files", path)
    return pd.concat([reference_file_table(f) for f in files], ignore_index=True)


def is_reference_csv(path: str | Path) -> bool:
    """Whether the header of CSV file ``path`` is an authors' one; an unreadable file is a DataError."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle), [])
    except UnicodeDecodeError as error:
        raise DataError(f"not UTF-8 text (byte {error.start}): is it a CSV file?", path) from None
    except csv.Error as error:     # a field past csv's size limit, a NUL byte
        raise DataError(f"malformed CSV: {str(error)[:160]}", path, 1) from None
    except OSError as error:
        raise DataError(f"cannot read: {error.strerror or type(error).__name__}", path) from None
    return is_reference_header(header)


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
