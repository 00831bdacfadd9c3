"""The paper's table and the significance tables, and their renderers.

A ``DisplayTable`` is strings only (values x100, one decimal); the
renderers turn it into a terminal table, Markdown or LaTeX (booktabs).
The CSV output is the machine-readable summary, with fractions.
"""

from __future__ import annotations

import html
import io
import math
import re
from dataclasses import dataclass, field, replace

import pandas as pd

from analysis import vocabulary
from analysis.findings import Findings
from analysis.statistics import CELL_COLUMNS, GROUP_COLUMNS

FORMATS: tuple[str, ...] = ("table", "md", "latex", "csv", "html")
EXTENSIONS: dict[str, str] = {".txt": "table", ".md": "md", ".markdown": "md", ".tex": "latex",
                              ".csv": "csv", ".html": "html", ".htm": "html"}


@dataclass
class DisplayTable:
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    breaks: list[int] = field(default_factory=list)   # row indices that start a new block
    bold: set[tuple[int, int]] = field(default_factory=set)   # (row, column): best of its column
    # Column spans (label, width) summing to len(columns); a column of a labelled span is named
    # "<label> <name>", and LaTeX shows the label once over the span (\multicolumn, \cmidrule).
    groups: list[tuple[str, int]] = field(default_factory=list)
    label: str = ""            # LaTeX \label key (tab:...), made unique within one output
    long: bool = False         # many rows: LaTeX longtable, which runs over pages
    heading_columns: int = 0   # LaTeX: these leading columns become a heading line per block


PLUS_MINUS = "\u00b1"


def percent(value: float, signed: bool = False) -> str:
    """A fraction as x100 with one decimal; blank for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return ""
    text = f"{value * 100:+.1f}" if signed else f"{value * 100:.1f}"
    return "0.0" if text in ("-0.0", "+0.0") and not signed else text


def mean_std(mean: float, std: float) -> str:
    """"85.3 \u00b1 0.4" (x100); the mean alone when there is no std."""
    if mean is None or pd.isna(mean):
        return ""
    return percent(mean) if std is None or pd.isna(std) else f"{percent(mean)} {PLUS_MINUS} {percent(std)}"


def integer(value) -> str:
    return "" if value is None or pd.isna(value) else str(int(value))


def p_value(value: float) -> str:
    if pd.isna(value):
        return ""
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def _leading_number(text: str) -> float | None:
    """The number a cell starts with ("85.3 \u00b1 0.4" -> 85.3), else None."""
    try:
        return float(text.split(PLUS_MINUS)[0].strip())
    except ValueError:
        return None


def best_cells(rows: list[list[str]], columns: list[int], blocks: list[int],
               across: bool = False) -> set[tuple[int, int]]:
    """(row, column) of the highest value, ties included (as printed), of each column
    within each block of rows; ``across``: of each row instead, over ``columns``."""
    best: set[tuple[int, int]] = set()
    if across:
        for r, row in enumerate(rows):
            values = {c: _leading_number(row[c]) for c in columns}
            values = {c: v for c, v in values.items() if v is not None}
            if len(values) > 1:
                top = max(values.values())
                best |= {(r, c) for c, v in values.items() if v == top}
        return best
    edges = sorted(set(blocks) | {0}) + [len(rows)]
    for first, last in zip(edges, edges[1:]):
        for c in columns:
            values = {r: _leading_number(rows[r][c]) for r in range(first, last)}
            values = {r: v for r, v in values.items() if v is not None}
            if len(values) > 1:
                top = max(values.values())
                best |= {(r, c) for r, v in values.items() if v == top}
    return best


def _tasks(findings: Findings) -> list[str]:
    return sorted(findings.averages["task"].unique(), key=vocabulary.task_order)


def _models(findings: Findings) -> list[str]:
    return sorted(findings.averages["model"].unique(), key=vocabulary.model_order)


def _metric_note(findings: Findings) -> str:
    metrics: dict[str, list[str]] = {}
    for task in _tasks(findings):
        names = findings.averages.loc[findings.averages["task"] == task, "metric"].unique()
        metrics.setdefault(", ".join(sorted(names)), []).append(vocabulary.task_label(task))
    return "; ".join(f"{', '.join(tasks)}: {metric}" for metric, tasks in metrics.items())


def _rule_note(findings: Findings) -> str:
    options = findings.options
    rounded = ", means and std rounded to one decimal (x100) first" if options.round_first else ""
    return (f"#dn / #up: target languages where the mean over seeds is more than "
            f"{options.k:g} x the baseline's std (ddof=0) below / above fine-tuning only{rounded}.")


def _titled(title: str, findings: Findings) -> str:
    """Every title names the aligner(s) and schedule(s) it shows."""
    return f"{title} ({findings.scope})"


def _scope_notes(findings: Findings) -> list[str]:
    return [f"Not shown: {phrase}." for phrase in findings.left_out]


def _slug(*parts: str) -> str:
    return "tab:" + "-".join(re.sub(r"[^a-z0-9]+", "-", part.lower()).strip("-") for part in parts)


def _lookup(frame: pd.DataFrame | None, columns: list[str]) -> pd.DataFrame:
    if frame is None or frame.empty:
        return pd.DataFrame(columns=columns).set_index(GROUP_COLUMNS[:5])
    return frame.set_index(GROUP_COLUMNS[:5])


def paper_table(findings: Findings) -> DisplayTable:
    """Per model: a row per strategy; per task: target average and English (x100), #dn,
    #up; totals. The best average and English score of each model in bold."""
    tasks = _tasks(findings)
    columns, groups = ["Model", "Strategy"], [("", 2)]
    for task in tasks:
        label = vocabulary.task_label(task)
        columns += [f"{label} avg", f"{label} en", f"{label} #dn", f"{label} #up"]
        groups.append((label, 4))
    columns += ["total #dn", "total #up"]
    groups.append(("total", 2))
    averages = _lookup(findings.averages, GROUP_COLUMNS + ["average"])
    english = _lookup(findings.english, GROUP_COLUMNS + ["english"])
    counts = _lookup(findings.counts, GROUP_COLUMNS + ["down", "up"])
    rows, breaks = [], []
    for model in _models(findings):
        breaks.append(len(rows))
        for strategy, aligner, schedule in findings.strategy_rows.itertuples(index=False):
            cells, down_total, up_total, present = [], 0, 0, False
            is_baseline = strategy == vocabulary.BASELINE
            for task in tasks:
                key = (model, task, strategy, aligner, schedule)
                average = averages["average"].get(key)
                present |= average is not None
                down = None if is_baseline else counts["down"].get(key)
                up = None if is_baseline else counts["up"].get(key)
                down_total += int(down or 0)
                up_total += int(up or 0)
                cells += [percent(average), percent(english["english"].get(key)),
                          integer(down), integer(up)]
            if not present:
                continue
            totals = ["", ""] if is_baseline else [str(down_total), str(up_total)]
            rows.append([vocabulary.model_label(model),
                         findings.row_label(strategy, aligner, schedule)] + cells + totals)
    scores = [2 + 4 * i + j for i in range(len(tasks)) for j in (0, 1)]
    notes = [f"avg: average over target languages of the mean over seeds (x100); en: the source "
             f"language, English (x100); {_metric_note(findings)}. Best avg and en per model in "
             f"bold.", _rule_note(findings)] + _scope_notes(findings)
    return DisplayTable(_titled("The paper's table", findings), columns, rows, notes, breaks,
                        best_cells(rows, scores, breaks), groups, _slug("paper"))


def mean_std_table(findings: Findings) -> DisplayTable:
    """Per model, strategy x task: the target average and English as mean \u00b1 std over
    seeds (x100), the best per model and column in bold, and the number of seeds."""
    tasks = _tasks(findings)
    columns, groups = ["Model", "Strategy"], [("", 2)]
    for task in tasks:
        label = vocabulary.task_label(task)
        columns += [f"{label} avg", f"{label} en"]
        groups.append((label, 2))
    columns.append("seeds")
    groups.append(("", 1))
    averages = _lookup(findings.averages, GROUP_COLUMNS + ["average"])
    spread = _lookup(findings.spread, GROUP_COLUMNS + ["average_std", "n_seeds"])
    english = _lookup(findings.english, GROUP_COLUMNS + ["english", "english_std"])
    rows, breaks = [], []
    for model in _models(findings):
        breaks.append(len(rows))
        for strategy, aligner, schedule in findings.strategy_rows.itertuples(index=False):
            cells, seeds = [], set()
            for task in tasks:
                key = (model, task, strategy, aligner, schedule)
                cells += [mean_std(averages["average"].get(key), spread["average_std"].get(key)),
                          mean_std(english["english"].get(key), english["english_std"].get(key))]
                if spread["n_seeds"].get(key) is not None:
                    seeds.add(int(spread["n_seeds"].get(key)))
            if not any(cells):
                continue
            rows.append([vocabulary.model_label(model),
                         findings.row_label(strategy, aligner, schedule)] + cells
                        + [_span(seeds)])
    notes = [f"Mean {PLUS_MINUS} std over seeds (std with ddof=0, x100) of avg, the average over "
             f"target languages of each seed's run, and of en, the source language (English); "
             f"{_metric_note(findings)}. Best per model and column in bold."] + _scope_notes(findings)
    return DisplayTable(_titled(f"Mean {PLUS_MINUS} std over seeds", findings), columns, rows,
                        notes, breaks, best_cells(rows, list(range(2, 2 + 2 * len(tasks))), breaks),
                        groups, _slug("mean-std"))


def _span(values: set[int]) -> str:
    """Integer counts: "3", or "2-3" when they differ."""
    if not values:
        return ""
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


def totals_table(findings: Findings) -> DisplayTable:
    """Per strategy, summed over models: #dn / #up per task and over all tasks."""
    tasks = _tasks(findings)
    columns, groups = ["Strategy"], [("", 1)]
    for task in tasks:
        columns += [f"{vocabulary.task_label(task)} #dn", f"{vocabulary.task_label(task)} #up"]
        groups.append((vocabulary.task_label(task), 2))
    columns += ["all #dn", "all #up", "languages"]
    groups += [("all", 2), ("", 1)]
    counts = findings.counts
    rows = []
    for strategy, aligner, schedule in findings.strategy_rows.itertuples(index=False):
        if strategy == vocabulary.BASELINE:
            continue
        mine = counts[(counts["strategy"] == strategy) & (counts["aligner"] == aligner)
                      & (counts["schedule"] == schedule)]
        cells = []
        for task in tasks:
            part = mine[mine["task"] == task]
            cells += ([str(int(part["down"].sum())), str(int(part["up"].sum()))]
                      if len(part) else ["", ""])
        rows.append([findings.row_label(strategy, aligner, schedule)] + cells
                    + [str(int(mine["down"].sum())), str(int(mine["up"].sum())),
                       str(int(mine["n_compared"].sum()))])
    return DisplayTable(_titled("Totals over models", findings), columns, rows,
                        ["languages: number of (model, language) cells compared."]
                        + _scope_notes(findings), groups=groups, label=_slug("totals"))


def significance_table(findings: Findings) -> DisplayTable:
    """Per (model, task, strategy): the paper's count next to the tests' count,
    the mean delta over languages with its bootstrap CI, P(improvement)."""
    options = findings.options
    columns = ["Model", "Task", "Strategy", "langs", "#dn", "#up", "sig. worse", "sig. better",
               "mean delta", "95% CI", "P(improve)"]
    merged = findings.summaries.merge(findings.counts, on=GROUP_COLUMNS, how="left")
    merged = _sorted(merged)
    rows, breaks, previous = [], [], None
    for row in merged.itertuples(index=False):
        if row.model != previous:
            breaks.append(len(rows))
            previous = row.model
        rows.append([vocabulary.model_label(row.model), vocabulary.task_label(row.task),
                     findings.row_label(row.strategy, row.aligner, row.schedule),
                     integer(row.n_languages), integer(row.down), integer(row.up),
                     integer(row.significant_worse), integer(row.significant_better),
                     percent(row.mean_delta, signed=True),
                     _interval(row.mean_delta_low, row.mean_delta_high),
                     "" if pd.isna(row.probability_of_improvement)
                     else f"{row.probability_of_improvement:.2f}"])
    correction = {"holm": "Holm", "bh": "Benjamini-Hochberg"}[options.correction]
    test = {"welch": "Welch's t-test", "paired": "paired t-test (Welch where seeds differ)",
            "wilcoxon": "Wilcoxon signed-rank (Welch where seeds differ)",
            "permutation": "permutation test"}[options.test]
    notes = [f"sig. worse / better: {test} per language, p corrected across languages with "
             f"{correction}, alpha {options.alpha:g}.",
             "mean delta: strategy minus baseline (x100), averaged over languages; 95% CI: "
             "bootstrap over languages; P(improve): chance that a run of the strategy beats a "
             "run of the baseline, averaged over languages."] + _scope_notes(findings)
    return DisplayTable(_titled("Significance against fine-tuning only", findings), columns,
                        rows, notes, breaks, label=_slug("significance"))


def language_table(findings: Findings) -> DisplayTable:
    """Per language: each strategy's delta vs baseline, CI, tests and verdicts."""
    columns = ["Model", "Task", "Strategy", "Lang", "seeds", "mean", "baseline", "delta",
               "95% CI", "d", "test", "p", "p adj.", "paper", "sig."]
    merged = findings.comparisons.merge(
        findings.verdicts[GROUP_COLUMNS + ["language", "verdict"]],
        on=GROUP_COLUMNS + ["language"], how="left")
    merged = _sorted(merged, extra=["language"])
    rows, breaks, previous = [], [], None
    symbols = {1: "up", -1: "down", 0: ""}
    for row in merged.itertuples(index=False):
        group = (row.model, row.task, row.strategy, row.aligner, row.schedule)
        if group != previous:
            breaks.append(len(rows))
            previous = group
        rows.append([vocabulary.model_label(row.model), vocabulary.task_label(row.task),
                     findings.row_label(row.strategy, row.aligner, row.schedule), row.language,
                     f"{integer(row.n_seeds)}/{integer(row.baseline_n_seeds)}", percent(row.mean),
                     percent(row.baseline_mean), percent(row.delta, signed=True),
                     _interval(row.delta_low, row.delta_high),
                     "" if pd.isna(row.cohens_d) else f"{row.cohens_d:.2f}", row.test,
                     p_value(row.p), p_value(row.p_adjusted),
                     symbols.get(int(row.verdict), "") if not pd.isna(row.verdict) else "",
                     symbols[int(row.direction)]])
    notes = ["seeds: strategy/baseline; 95% CI: bootstrap over seeds; d: Cohen's d; "
             "paper: the k x std rule; sig.: corrected test."]
    tests = {row[10] for row in rows}
    if len(tests) == 1:         # one test throughout: named once, one column narrower
        columns, rows = columns[:10] + columns[11:], [row[:10] + row[11:] for row in rows]
        notes[0] = notes[0].replace("d: Cohen's d;", f"d: Cohen's d; p: {tests.pop()} test;")
    return DisplayTable(_titled("Per language against fine-tuning only", findings), columns, rows,
                        notes + _scope_notes(findings), breaks, label=_slug("per-language"),
                        long=True, heading_columns=3)


def language_means_tables(findings: Findings) -> list[DisplayTable]:
    """Per (model, task): languages x strategies, mean \u00b1 std over seeds (x100), the
    best strategy of each language in bold; then the target average, English, the seeds."""
    tables = []
    cells, spread, english = findings.cells, findings.spread, findings.english
    strategies = list(findings.strategy_rows.itertuples(index=False, name=None))
    averages = _lookup(findings.averages, GROUP_COLUMNS + ["average"])
    spread = _lookup(spread, GROUP_COLUMNS + ["average_std", "n_seeds"])
    english = _lookup(english, GROUP_COLUMNS + ["english", "english_std"])
    by_cell = cells.set_index(["model", "task", "strategy", "aligner", "schedule", "language"])
    for model in _models(findings):
        for task in _tasks(findings):
            mine = cells[(cells["model"] == model) & (cells["task"] == task)]
            if mine.empty:
                continue
            present = [s for s in strategies if ((mine["strategy"] == s[0])
                                                 & (mine["aligner"] == s[1])
                                                 & (mine["schedule"] == s[2])).any()]
            targets = vocabulary.sorted_languages(task, mine.loc[mine["is_target"], "language"])
            rows = []
            for language in targets:
                row = [language]
                for strategy in present:
                    key = (model, task, *strategy, language)
                    found = key in by_cell.index
                    row.append(mean_std(by_cell.loc[key, "mean"], by_cell.loc[key, "std"])
                               if found else "")
                rows.append(row)
            summary_rows = [["avg"] + [mean_std(averages["average"].get((model, task, *s)),
                                                spread["average_std"].get((model, task, *s)))
                                       for s in present],
                            ["en (source)"] + [mean_std(english["english"].get((model, task, *s)),
                                                        english["english_std"].get((model, task, *s)))
                                               for s in present],
                            ["seeds"] + [_span({int(n) for n in mine.loc[
                                (mine["strategy"] == s[0]) & (mine["aligner"] == s[1])
                                & (mine["schedule"] == s[2]), "n_seeds"]}) for s in present]]
            breaks = [0, len(rows)]
            rows += summary_rows
            values = list(range(1, len(present) + 1))
            bold = best_cells(rows[:-1], values, [], across=True)
            metric = ", ".join(sorted(mine["metric"].unique()))
            title = (f"{vocabulary.model_label(model)}, {vocabulary.task_label(task)}: {metric} "
                     f"per language, mean {PLUS_MINUS} std over seeds")
            notes = ["x100, std with ddof=0; languages in the order of trainables/languages.py; "
                     "avg: average over target languages; en: the source language; the best "
                     "strategy per language in bold."] + _scope_notes(findings)
            groups = [("", 1)]      # the realigned strategies under their "aligner, schedule"
            for strategy, aligner, schedule in present:
                label = "" if strategy == vocabulary.BASELINE else f"{aligner}, {schedule}"
                if groups[-1][0] == label and label:
                    groups[-1] = (label, groups[-1][1] + 1)
                else:
                    groups.append((label, 1))
            tables.append(DisplayTable(
                _titled(title, findings),
                ["Lang"] + [findings.row_label(*s) for s in present], rows, notes, breaks, bold,
                groups, _slug("languages", vocabulary.model_label(model), task), long=True))
    return tables


def _interval(low: float, high: float) -> str:
    if pd.isna(low) or pd.isna(high):
        return ""
    return f"[{percent(low, signed=True)}, {percent(high, signed=True)}]"


def _sorted(frame: pd.DataFrame, extra: list[str] | None = None) -> pd.DataFrame:
    """Models, tasks and strategies in the paper's order; languages in their task's order."""
    keys = ["model", "task", "strategy", "aligner", "schedule"] + (extra or [])
    orders = {"model": vocabulary.model_order, "task": vocabulary.task_order,
              "strategy": vocabulary.strategy_order}
    frame = frame.assign(_language=[vocabulary.language_order(task, language) for task, language
                                    in zip(frame["task"], frame["language"])]
                         if "language" in keys else 0)
    keys = [("_language" if key == "language" else key) for key in keys]
    return frame.sort_values(keys, key=lambda column: column.map(orders[column.name])
                             if column.name in orders else column,
                             kind="mergesort").drop(columns="_language")


def display_tables(findings: Findings, per_language: bool = False) -> list[DisplayTable]:
    """The summary tables; with ``per_language`` the per-language ones too (means and std per
    model and task, then the comparisons against the baseline)."""
    tables = [paper_table(findings), mean_std_table(findings)]
    if findings.counts["model"].nunique() > 1:
        tables.append(totals_table(findings))
    tables.append(significance_table(findings))
    if per_language:
        tables += language_means_tables(findings)
        tables.append(language_table(findings))
    return tables


# ---------------------------------------------------------------- renderers

def _numeric_columns(table: DisplayTable) -> list[bool]:
    return [i >= 1 and all(_is_number(row[i]) for row in table.rows)
            for i in range(len(table.columns))]


def text_table(table: DisplayTable) -> str:
    """Fixed-width columns: text left-aligned, numbers right-aligned; a best cell ends in *."""
    if table.bold:
        marked = {c for _, c in table.bold}     # a blank after the others keeps points aligned
        rows = [[f"{text}*" if (r, c) in table.bold else f"{text} " if c in marked and text
                 else text for c, text in enumerate(row)] for r, row in enumerate(table.rows)]
        table = replace(table, rows=rows, bold=set(),
                        notes=table.notes + ["*: the best (bold in Markdown, LaTeX and HTML)."])
    widths = [max([len(name)] + [len(row[i]) for row in table.rows])
              for i, name in enumerate(table.columns)]
    numeric = _numeric_columns(table)

    def line(cells: list[str]) -> str:
        return "  ".join(cell.rjust(width) if right else cell.ljust(width)
                         for cell, width, right in zip(cells, widths, numeric)).rstrip()

    rule = "-" * len(line(["-" * w for w in widths]))
    out = [table.title, rule, line(table.columns), rule]
    for index, row in enumerate(table.rows):
        if index in table.breaks and index:
            out.append("")
        out.append(line(row))
    out.append(rule)
    out += table.notes
    return "\n".join(out)


def _is_number(text: str) -> bool:
    """A number, a blank, "85.3 \u00b1 0.4", a count "3/3" or "2-3", an interval "[-1.0, +2.0]"."""
    text = text.rstrip("*")
    if text == "":
        return True
    parts = re.split(rf"\s*{PLUS_MINUS}\s*|/|, ", text.strip("[]"))
    if len(parts) == 1 and re.fullmatch(r"\d+-\d+", text):
        return True
    try:
        [float(part) for part in parts]
        return True
    except ValueError:
        return False


def markdown_table(table: DisplayTable) -> str:
    """GitHub Markdown; the best cells in **bold**."""
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    def cell(r: int, c: int, text: str) -> str:
        return f"**{text}**" if (r, c) in table.bold and text else text

    numeric = _numeric_columns(table)
    out = [f"### {table.title}", "", line(table.columns),
           "|" + "|".join("--:" if right else "---" for right in numeric) + "|"]
    out += [line([cell(r, c, text) for c, text in enumerate(row)])
            for r, row in enumerate(table.rows)]
    out += [""] + [f"_{note}_" if note else "" for note in table.notes]
    return "\n".join(out)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", PLUS_MINUS: r"$\pm$"}
# A minus sign before a number (not a hyphen inside "2-3" or a word): typeset as math.
_MINUS = re.compile(r"(?<![\w.])-(?=\d)")
LATEX_PACKAGES = ("booktabs", "graphicx", "longtable")


def latex_escape(text: str) -> str:
    """Special characters escaped, minus signs as $-$, "--aligner" kept (no en dash)."""
    text = "".join(_LATEX_SPECIAL.get(char, char) for char in text).replace("--", "-{}-")
    return _MINUS.sub(r"$-$", text)


def _latex_cells(table: DisplayTable, r: int, row: list[str], skip: int) -> str:
    cells = []
    for c, text in enumerate(row):
        if c < skip:
            continue
        escaped = latex_escape(text)
        cells.append(rf"\textbf{{{escaped}}}" if (r, c) in table.bold and text else escaped)
    return " & ".join(cells) + r" \\"


def _latex_header(table: DisplayTable, skip: int) -> list[str]:
    r"""The column names under booktabs rules; grouped columns under one \multicolumn label
    with a \cmidrule, their own names without the label."""
    names = list(table.columns)
    lines = []
    if any(label for label, _ in table.groups):
        spans, rules, first = [], [], 1
        position = 0
        for label, width in table.groups:
            shown = [i for i in range(position, position + width) if i >= skip]
            if shown:
                if label:
                    spans.append(rf"\multicolumn{{{len(shown)}}}{{c}}{{{latex_escape(label)}}}")
                    rules.append(rf"\cmidrule(lr){{{first}-{first + len(shown) - 1}}}")
                    for i in shown:
                        names[i] = _without_group(names[i], label)
                else:
                    spans += [""] * len(shown)
                first += len(shown)
            position += width
        lines += [" & ".join(spans) + r" \\", " ".join(rules)]
    lines.append(" & ".join(_latex_name(name) for name in names[skip:]) + r" \\")
    return lines


def _without_group(name: str, label: str) -> str:
    """A grouped column's own name: "PoS avg" -> "avg", "front (dico, before)" -> "front"."""
    if name.startswith(label + " "):
        return name[len(label) + 1:]
    if name.endswith(f" ({label})"):
        return name[:-len(label) - 3]
    return name


def _latex_name(name: str) -> str:
    """A long column name on two lines (a nested tabular), so that names do not widen columns."""
    if len(name) <= 10 or " " not in name:
        return latex_escape(name)
    middle = min((i for i, char in enumerate(name) if char == " "),
                 key=lambda i: abs(i - len(name) / 2))
    return (r"\begin{tabular}[b]{@{}c@{}}" + latex_escape(name[:middle]) + r"\\"
            + latex_escape(name[middle + 1:]) + r"\end{tabular}")


def latex_table(table: DisplayTable) -> str:
    """booktabs; a float whose tabular shrinks to the column width when wider (graphicx's
    \resizebox), or, for a long table, a longtable that runs over pages (one-column pages:
    longtable does not work in two-column mode). Best cells in \textbf, minus signs as $-$."""
    skip = table.heading_columns
    numeric = _numeric_columns(table)[skip:]
    spec = "".join("r" if right else "l" for right in numeric)
    width = len(numeric)
    header = [r"\toprule"] + _latex_header(table, skip) + [r"\midrule"]
    body, heading = [], None
    for index, row in enumerate(table.rows):
        if skip and tuple(row[:skip]) != heading:
            heading = tuple(row[:skip])
            if index:
                body.append(r"\midrule")
            body.append(rf"\multicolumn{{{width}}}{{l}}{{\textit{{"
                        + latex_escape(", ".join(heading)) + r"}} \\")
        elif index in table.breaks and index:
            body.append(r"\midrule")
        body.append(_latex_cells(table, index, row, skip))
    notes = [rf"\par\smallskip{{\footnotesize {latex_escape(note)}\par}}" for note in table.notes]
    caption = rf"\caption{{{latex_escape(table.title)}}}\label{{{table.label}}}"
    if table.long:
        return "\n".join(
            [r"\begingroup\scriptsize\setlength{\tabcolsep}{3pt}",
             rf"\begin{{longtable}}{{{spec}}}", caption + r" \\"] + header + [r"\endfirsthead",
             rf"\multicolumn{{{width}}}{{l}}{{\textit{{Table \thetable, continued}}}} \\"]
            + header + [r"\endhead", r"\midrule",
                        rf"\multicolumn{{{width}}}{{r}}{{\textit{{continued on the next page}}}} \\",
                        r"\endfoot", r"\bottomrule", r"\endlastfoot"]
            + body + [r"\end{longtable}", r"\endgroup"] + notes)
    return "\n".join(
        [r"\begin{table}[ht]", r"\centering", r"\small", caption,
         r"\resizebox{\ifdim\width>\columnwidth\columnwidth\else\width\fi}{!}{%",
         rf"\begin{{tabular}}{{{spec}}}"] + header + body
        + [r"\bottomrule", r"\end{tabular}}"] + notes + [r"\end{table}"])


def html_table(table: DisplayTable) -> str:
    numeric = _numeric_columns(table)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for index, row in enumerate(table.rows):
        css = ' class="break"' if index in table.breaks and index else ""
        cells = []
        for c, (text, right) in enumerate(zip(row, numeric)):
            shown = html.escape(text)
            if (index, c) in table.bold and text:
                shown = f"<b>{shown}</b>"
            cells.append(f'<td class="num">{shown}</td>' if right else f"<td>{shown}</td>")
        body.append(f"<tr{css}>{''.join(cells)}</tr>")
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in table.notes)
    return (f"<h2>{html.escape(table.title)}</h2>\n<table>\n<thead><tr>{head}</tr></thead>\n"
            f"<tbody>\n" + "\n".join(body) + f"\n</tbody>\n</table>\n{notes}")


def _unique_labels(tables: list[DisplayTable]) -> None:
    seen: dict[str, int] = {}
    for table in tables:
        base = table.label or "tab:table"
        seen[base] = seen.get(base, 0) + 1
        table.label = base if seen[base] == 1 else f"{base}-{seen[base]}"


def rendered_tables(findings: Findings, format: str, per_language: bool = False) -> str:
    """Every table of the findings in one text format (table, md or latex)."""
    render = {"table": text_table, "md": markdown_table, "latex": latex_table}[format]
    tables = display_tables(findings, per_language)
    _unique_labels(tables)
    separator = "\n\n"
    header = {"table": "", "md": "# AlignFreeze analysis\n\n",
              "latex": f"% AlignFreeze analysis; needs \\usepackage{{{','.join(LATEX_PACKAGES)}}}\n"
                       "% per-language tables are longtables: one-column pages (an appendix)\n"
              }[format]
    return header + separator.join(render(t) for t in tables) + "\n"


# --------------------------------------------------------------------- CSV

SUMMARY_COLUMNS: list[str] = GROUP_COLUMNS + [
    "n_languages", "n_seeds", "average", "average_std", "english", "english_std", "down", "up",
    "significant_worse", "significant_better", "mean_delta", "mean_delta_low", "mean_delta_high",
    "probability_of_improvement", "k", "round_first", "test", "correction", "alpha"]

LANGUAGE_COLUMNS: list[str] = GROUP_COLUMNS + [
    "language", "is_target", "mean", "std", "n_seeds", "baseline_mean", "baseline_std",
    "baseline_n_seeds", "delta", "delta_low", "delta_high", "cohens_d", "test", "p",
    "p_adjusted", "paper_verdict", "significant", "correction", "alpha"]


def _options_columns(frame: pd.DataFrame, findings: Findings) -> pd.DataFrame:
    options = findings.options
    return frame.assign(k=options.k, round_first=options.round_first, test=options.test,
                        correction=options.correction, alpha=options.alpha)


def summary_frame(findings: Findings) -> pd.DataFrame:
    """One row per (model, task, strategy, aligner, schedule, metric), fractions:
    the paper's average and counts, English, the std over seeds, the tests' summary."""
    frame = findings.averages.merge(findings.counts.drop(columns="n_compared"),
                                    on=GROUP_COLUMNS, how="left")
    frame = frame.merge(findings.summaries.drop(columns="n_languages"), on=GROUP_COLUMNS,
                        how="left")
    for extra in (findings.spread, findings.english):
        if extra is not None and not extra.empty:
            frame = frame.merge(extra, on=GROUP_COLUMNS, how="left")
    for column in ("average_std", "n_seeds", "english", "english_std"):
        if column not in frame.columns:
            frame[column] = math.nan
    frame = _sorted(frame)
    for column in ("n_languages", "n_seeds", "down", "up", "significant_worse",
                   "significant_better"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").round().astype("Int64")
    return _options_columns(frame, findings)[SUMMARY_COLUMNS].reset_index(drop=True)


def language_frame(findings: Findings) -> pd.DataFrame:
    """Tidy, one row per (model, task, strategy, aligner, schedule, metric, language), English
    and the baseline included: mean, std (ddof=0), seeds; against the baseline: delta with
    its bootstrap CI, Cohen's d, p, corrected p, the paper's verdict and the test's (-1/0/+1)."""
    cells = findings.cells.drop(columns="seeds")
    comparisons = findings.comparisons.drop(columns="significant", errors="ignore").rename(
        columns={"direction": "significant"})
    keep = [c for c in ["baseline_mean", "baseline_n_seeds", "delta", "delta_low", "delta_high",
                        "cohens_d", "test", "p", "p_adjusted", "significant"]
            if c in comparisons.columns]
    frame = cells.merge(comparisons[CELL_COLUMNS + keep], on=CELL_COLUMNS, how="left")
    verdicts = findings.verdicts[CELL_COLUMNS + ["baseline_std", "verdict"]].rename(
        columns={"verdict": "paper_verdict"})
    frame = frame.merge(verdicts, on=CELL_COLUMNS, how="left")
    frame = _sorted(frame, extra=["language"])
    frame["is_target"] = frame["is_target"].astype(bool)
    for column in ("n_seeds", "baseline_n_seeds", "paper_verdict", "significant"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").round().astype("Int64")
    frame = frame.assign(correction=findings.options.correction, alpha=findings.options.alpha)
    for column in LANGUAGE_COLUMNS:
        if column not in frame.columns:
            frame[column] = math.nan
    return frame[LANGUAGE_COLUMNS].reset_index(drop=True)


def summary_csv(findings: Findings, per_language: bool = False) -> str:
    """The summary rows; with ``per_language`` the tidy per-language rows instead."""
    buffer = io.StringIO()
    (language_frame(findings) if per_language else summary_frame(findings)).to_csv(
        buffer, index=False)
    return buffer.getvalue()
