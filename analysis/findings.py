"""Findings: everything one analysis computes from a tidy table, in one object.

The renderers (tables, plots, report) read a ``Findings``; they compute
nothing themselves, so every output format shows the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from analysis import significance, statistics, vocabulary
from trainables.errors import SpecError
from trainables.tasks.registry import TASKS

ALL = "all"
PAPER_ALIGNER = "dico"


@dataclass(frozen=True)
class AnalysisOptions:
    k: float = 1.0                    # the paper's count: k x baseline std
    round_first: bool = False         # round means/std to one decimal (x100) before counting
    test: str = "welch"
    correction: str = "holm"
    alpha: float = 0.05
    aligner: str | None = None        # None: "dico" where present, else every aligner
    schedule: str = "before"          # "before" (the paper's table), "during" or "all"
    metric: str | None = None         # None: each task's primary metric
    n_resamples: int = significance.DEFAULT_RESAMPLES
    seed: int = significance.DEFAULT_SEED

    def check(self) -> AnalysisOptions:
        if self.test not in significance.TESTS:
            raise SpecError(f"unknown test {self.test!r} (expected "
                            f"{', '.join(significance.TESTS)})")
        if self.correction not in significance.CORRECTIONS:
            raise SpecError(f"unknown correction {self.correction!r} (expected "
                            f"{', '.join(significance.CORRECTIONS)})")
        if not self.k >= 0:
            raise SpecError(f"--k must be a number >= 0, got {self.k}")
        if not 0 < self.alpha < 1:
            raise SpecError(f"--alpha must be in (0, 1), got {self.alpha}")
        if self.n_resamples < 100:
            raise SpecError(f"--bootstrap must be at least 100, got {self.n_resamples}")
        return self


@dataclass
class Findings:
    options: AnalysisOptions
    table: pd.DataFrame               # the selected tidy rows (targets and English)
    cells: pd.DataFrame               # mean / std (ddof=0) / seeds per cell
    averages: pd.DataFrame            # average over targets per group
    verdicts: pd.DataFrame            # per language: the paper's verdict
    counts: pd.DataFrame              # per group: #down / #up
    comparisons: pd.DataFrame         # per language: tests, corrected p, effect, CI
    summaries: pd.DataFrame           # per group: mean delta, CI, P(improvement), sig counts
    warnings: list[str] = field(default_factory=list)
    english: pd.DataFrame | None = None   # per group: the source language's mean and std
    spread: pd.DataFrame | None = None    # per group: std over seeds of the target average
    left_out: list[str] = field(default_factory=list)   # aligners/schedules in the input, not kept

    @property
    def scope(self) -> str:
        """The aligner(s) and schedule(s) the tables show, for every title: "aligner dico,
        schedule before" (the baseline realigns nothing and is always kept)."""
        realigned = self.table[self.table["strategy"] != vocabulary.BASELINE]
        if realigned.empty:
            return "fine-tuning only"
        aligners = sorted(realigned["aligner"].unique())
        schedules = sorted(realigned["schedule"].unique())
        return (f"aligner{'s' if len(aligners) > 1 else ''} {', '.join(aligners)}, "
                f"schedule{'s' if len(schedules) > 1 else ''} {', '.join(schedules)}")

    @property
    def strategy_rows(self) -> pd.DataFrame:
        """The distinct (strategy, aligner, schedule) rows, in table order."""
        rows = self.averages[["strategy", "aligner", "schedule"]].drop_duplicates()
        return rows.sort_values(
            ["strategy", "aligner", "schedule"],
            key=lambda column: column.map(vocabulary.strategy_order) if column.name == "strategy"
            else column).reset_index(drop=True)

    def row_label(self, strategy: str, aligner: str, schedule: str) -> str:
        """The strategy's label with its aligner and schedule (the baseline has neither)."""
        label = vocabulary.strategy_label(strategy)
        if strategy == vocabulary.BASELINE:
            return label
        return f"{label} ({aligner}, {schedule})"


def selected_table(table: pd.DataFrame, options: AnalysisOptions) -> pd.DataFrame:
    """The rows the analysis reads: one metric per task, the chosen aligner and schedule."""
    if options.metric is None:
        metric = table["task"].map(lambda task: TASKS[task].primary_metric)
        chosen = table["metric"] == metric
    else:
        chosen = table["metric"] == options.metric
    baseline = table["strategy"] == vocabulary.BASELINE
    realigned = table[~baseline]
    aligner = options.aligner
    known = set(realigned["aligner"])
    if aligner not in (None, ALL) and aligner not in known:
        raise SpecError(f"no results with aligner {aligner!r} (present: "
                        f"{', '.join(sorted(known)) or 'none'}, or 'all')")
    if options.metric is not None and options.metric not in set(table["metric"]):
        raise SpecError(f"no results with metric {options.metric!r} (present: "
                        f"{', '.join(sorted(set(table['metric'])))})")
    if aligner is None:
        aligner = PAPER_ALIGNER if (realigned["aligner"] == PAPER_ALIGNER).any() else ALL
    if aligner != ALL:
        chosen &= baseline | (table["aligner"] == aligner)
    if options.schedule != ALL:
        chosen &= baseline | (table["schedule"] == options.schedule)
    return table[chosen].reset_index(drop=True)


def left_out(table: pd.DataFrame, selected: pd.DataFrame) -> list[str]:
    """What the selection dropped of the input's aligners and schedules, one phrase each:
    "kept aligner dico; left out fastalign, awesome (--aligner all keeps every one)"."""
    realigned = table[table["strategy"] != vocabulary.BASELINE]
    kept = selected[selected["strategy"] != vocabulary.BASELINE]
    phrases = []
    for column in ("aligner", "schedule"):
        dropped = sorted(set(realigned[column]) - set(kept[column]))
        if dropped:
            phrases.append(f"kept {column} {', '.join(sorted(set(kept[column])))}; left out "
                           f"{', '.join(dropped)} (--{column} all keeps every one)")
    return phrases


def findings_of(table: pd.DataFrame, options: AnalysisOptions = AnalysisOptions()) -> Findings:
    """Run the whole analysis on a tidy table."""
    options.check()
    selected = selected_table(table, options)
    if selected.empty:
        raise SpecError("no results left to analyse (check --aligner, --schedule, --metric)")
    cells = statistics.cell_statistics(selected)
    averages = statistics.target_averages(cells)
    verdicts = statistics.language_verdicts(cells, options.k, options.round_first)
    counts = statistics.paper_counts(verdicts)
    comparisons, notes = significance.language_comparisons(
        selected, options.test, options.correction, options.alpha, options.n_resamples,
        options.seed)
    summaries = significance.strategy_summaries(comparisons, options.n_resamples, options.seed)
    if not (selected["strategy"] == vocabulary.BASELINE).any():
        notes.insert(0, "no baseline (fine-tuning only) results: nothing to compare with")
    dropped = left_out(table, selected)
    notes[:0] = dropped      # never silently: stderr says what the tables leave out
    return Findings(options, selected, cells, averages, verdicts, counts, comparisons, summaries,
                    notes, statistics.english_scores(cells), statistics.average_spread(selected),
                    dropped)
