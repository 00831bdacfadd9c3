"""The paper's table and the significance tables, and their renderers.

A ``DisplayTable`` is strings only (values x100, one decimal); the
renderers turn it into a terminal table, Markdown or LaTeX (booktabs).
The CSV output is the machine-readable summary, with fractions.
"""

from __future__ import annotations

import html
import io
import math
from dataclasses import dataclass, field

import pandas as pd

from analysis import vocabulary
from analysis.findings import Findings
from analysis.statistics import GROUP_COLUMNS

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


def percent(value: float, signed: bool = False) -> str:
    """A fraction as x100 with one decimal; blank for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return ""
    text = f"{value * 100:+.1f}" if signed else f"{value * 100:.1f}"
    return "0.0" if text in ("-0.0", "+0.0") and not signed else text


def integer(value) -> str:
    return "" if value is None or pd.isna(value) else str(int(value))


def p_value(value: float) -> str:
    if pd.isna(value):
        return ""
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


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


def paper_table(findings: Findings) -> DisplayTable:
    """Per model: a row per strategy; per task: average (x100), #dn, #up; totals."""
    tasks = _tasks(findings)
    columns = ["Model", "Strategy"]
    for task in tasks:
        columns += [vocabulary.task_label(task), "#dn", "#up"]
    columns += ["total #dn", "total #up"]
    averages = findings.averages.set_index(GROUP_COLUMNS[:5])
    counts = findings.counts.set_index(GROUP_COLUMNS[:5])
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
                cells += [percent(average), integer(down), integer(up)]
            if not present:
                continue
            totals = ["", ""] if is_baseline else [str(down_total), str(up_total)]
            rows.append([vocabulary.model_label(model),
                         findings.row_label(strategy, aligner, schedule)] + cells + totals)
    notes = [f"Average over target languages (x100); {_metric_note(findings)}.",
             _rule_note(findings)]
    return DisplayTable("The paper's table", columns, rows, notes, breaks)


def totals_table(findings: Findings) -> DisplayTable:
    """Per strategy, summed over models: #dn / #up per task and over all tasks."""
    tasks = _tasks(findings)
    columns = ["Strategy"]
    for task in tasks:
        columns += [f"{vocabulary.task_label(task)} #dn", f"{vocabulary.task_label(task)} #up"]
    columns += ["all #dn", "all #up", "languages"]
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
    return DisplayTable("Totals over models", columns, rows,
                        ["languages: number of (model, language) cells compared."])


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
                     str(row.n_languages), integer(row.down), integer(row.up),
                     str(row.significant_worse), str(row.significant_better),
                     percent(row.mean_delta, signed=True),
                     _interval(row.mean_delta_low, row.mean_delta_high),
                     f"{row.probability_of_improvement:.2f}"])
    correction = {"holm": "Holm", "bh": "Benjamini-Hochberg"}[options.correction]
    test = {"welch": "Welch's t-test", "paired": "paired t-test (Welch where seeds differ)",
            "wilcoxon": "Wilcoxon signed-rank (Welch where seeds differ)",
            "permutation": "permutation test"}[options.test]
    notes = [f"sig. worse / better: {test} per language, p corrected across languages with "
             f"{correction}, alpha {options.alpha:g}.",
             "mean delta: strategy minus baseline (x100), averaged over languages; 95% CI: "
             "bootstrap over languages; P(improve): chance that a run of the strategy beats a "
             "run of the baseline, averaged over languages."]
    return DisplayTable("Significance against fine-tuning only", columns, rows, notes, breaks)


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
                     f"{row.n_seeds}/{row.baseline_n_seeds}", percent(row.mean),
                     percent(row.baseline_mean), percent(row.delta, signed=True),
                     _interval(row.delta_low, row.delta_high),
                     "" if pd.isna(row.cohens_d) else f"{row.cohens_d:.2f}", row.test,
                     p_value(row.p), p_value(row.p_adjusted),
                     symbols.get(int(row.verdict), "") if not pd.isna(row.verdict) else "",
                     symbols[int(row.direction)]])
    return DisplayTable("Per language against fine-tuning only", columns, rows,
                        ["seeds: strategy/baseline; 95% CI: bootstrap over seeds; d: Cohen's d; "
                         "paper: the k x std rule; sig.: corrected test."], breaks)


def _interval(low: float, high: float) -> str:
    if pd.isna(low) or pd.isna(high):
        return ""
    return f"[{percent(low, signed=True)}, {percent(high, signed=True)}]"


def _sorted(frame: pd.DataFrame, extra: list[str] | None = None) -> pd.DataFrame:
    keys = ["model", "task", "strategy", "aligner", "schedule"] + (extra or [])
    orders = {"model": vocabulary.model_order, "task": vocabulary.task_order,
              "strategy": vocabulary.strategy_order}
    return frame.sort_values(keys, key=lambda column: column.map(orders[column.name])
                             if column.name in orders else column, kind="mergesort")


def display_tables(findings: Findings, per_language: bool = False) -> list[DisplayTable]:
    tables = [paper_table(findings)]
    if findings.counts["model"].nunique() > 1:
        tables.append(totals_table(findings))
    tables.append(significance_table(findings))
    if per_language:
        tables.append(language_table(findings))
    return tables


# ---------------------------------------------------------------- renderers

def text_table(table: DisplayTable) -> str:
    """Fixed-width columns: text left-aligned, numbers right-aligned."""
    widths = [max([len(name)] + [len(row[i]) for row in table.rows])
              for i, name in enumerate(table.columns)]
    numeric = [i >= 1 and all(_is_number(row[i]) for row in table.rows)
               for i in range(len(table.columns))]

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
    if text == "":
        return True
    try:
        float(text)
        return True
    except ValueError:
        return False


def markdown_table(table: DisplayTable) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    out = [f"### {table.title}", "", line(table.columns),
           "|" + "|".join("---" for _ in table.columns) + "|"]
    out += [line(row) for row in table.rows]
    out += [""] + [f"_{note}_" if note else "" for note in table.notes]
    return "\n".join(out)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def latex_table(table: DisplayTable) -> str:
    """A booktabs tabular inside a table float (needs \\usepackage{booktabs})."""
    numeric = [i >= 1 and all(_is_number(row[i]) for row in table.rows)
               for i in range(len(table.columns))]
    spec = "".join("r" if right else "l" for right in numeric)
    out = [r"\begin{table}[ht]", r"\centering", r"\small",
           rf"\caption{{{latex_escape(table.title)}}}", rf"\begin{{tabular}}{{{spec}}}",
           r"\toprule", " & ".join(latex_escape(c) for c in table.columns) + r" \\", r"\midrule"]
    for index, row in enumerate(table.rows):
        if index in table.breaks and index:
            out.append(r"\midrule")
        out.append(" & ".join(latex_escape(cell) for cell in row) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    out += [rf"\par\footnotesize {latex_escape(note)}" for note in table.notes]
    out.append(r"\end{table}")
    return "\n".join(out)


def html_table(table: DisplayTable) -> str:
    numeric = [i >= 1 and all(_is_number(row[i]) for row in table.rows)
               for i in range(len(table.columns))]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for index, row in enumerate(table.rows):
        css = ' class="break"' if index in table.breaks and index else ""
        cells = "".join(f'<td class="num">{html.escape(c)}</td>' if right
                        else f"<td>{html.escape(c)}</td>" for c, right in zip(row, numeric))
        body.append(f"<tr{css}>{cells}</tr>")
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in table.notes)
    return (f"<h2>{html.escape(table.title)}</h2>\n<table>\n<thead><tr>{head}</tr></thead>\n"
            f"<tbody>\n" + "\n".join(body) + f"\n</tbody>\n</table>\n{notes}")


def rendered_tables(findings: Findings, format: str, per_language: bool = False) -> str:
    """Every table of the findings in one text format (table, md or latex)."""
    render = {"table": text_table, "md": markdown_table, "latex": latex_table}[format]
    tables = display_tables(findings, per_language)
    separator = "\n\n"
    header = {"table": "", "md": "# AlignFreeze analysis\n\n",
              "latex": "% AlignFreeze analysis; needs \\usepackage{booktabs}\n"}[format]
    return header + separator.join(render(t) for t in tables) + "\n"


# --------------------------------------------------------------------- CSV

SUMMARY_COLUMNS: list[str] = GROUP_COLUMNS + [
    "n_languages", "average", "down", "up", "significant_worse", "significant_better",
    "mean_delta", "mean_delta_low", "mean_delta_high", "probability_of_improvement",
    "k", "round_first", "test", "correction", "alpha"]


def summary_frame(findings: Findings) -> pd.DataFrame:
    """One row per (model, task, strategy, aligner, schedule, metric), fractions:
    the paper's average and counts next to the tests' summary."""
    options = findings.options
    frame = findings.averages.merge(findings.counts.drop(columns="n_compared"),
                                    on=GROUP_COLUMNS, how="left")
    frame = frame.merge(findings.summaries.drop(columns="n_languages"), on=GROUP_COLUMNS,
                        how="left")
    frame = _sorted(frame)
    for column in ("down", "up", "significant_worse", "significant_better"):
        frame[column] = frame[column].astype("Int64")
    frame["k"] = options.k
    frame["round_first"] = options.round_first
    frame["test"] = options.test
    frame["correction"] = options.correction
    frame["alpha"] = options.alpha
    return frame[SUMMARY_COLUMNS].reset_index(drop=True)


def summary_csv(findings: Findings) -> str:
    buffer = io.StringIO()
    summary_frame(findings).to_csv(buffer, index=False)
    return buffer.getvalue()
