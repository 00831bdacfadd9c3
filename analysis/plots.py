"""Figures of the findings (matplotlib, Agg backend: no display needed).

Per (model, task): the per-language delta against the baseline for each
strategy (bars with bootstrap CIs), a languages x strategies heatmap of the
deltas with the value and significance marks in each cell, where depth
variants (front:K / back:K) were run, the metric against the number of
frozen blocks per side, and where windows of blocks (range:A-B, a depth
search's ``window`` side) were run, a first block x number of blocks
heatmap of the metric, with the numbers.

Every figure follows the same rules, so that a paper can use it as is:
- nothing is clipped: titles are wrapped to the figure's width and the
  figure is saved with ``bbox_inches="tight"``; sizes follow the number of
  languages and strategies;
- one language order in every panel of a task: the paper's list order
  (trainables/languages.py), then any other language by code;
- the aligner(s) and schedule(s) analysed are in every title;
- one outlier does not flatten the rest: axes and colour scales span the
  data within Tukey's far-out fences (Q1 - 3 IQR, Q3 + 3 IQR of the
  deltas); a bar beyond them is cut at the edge, hatched and labelled with
  its value; a heatmap's colours saturate there, and every cell shows its
  value anyway.
``caption`` says the same for each figure in words.
"""

from __future__ import annotations

import io
import re
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from analysis import statistics, vocabulary  # noqa: E402
from analysis.findings import Findings  # noqa: E402
from trainables.errors import SpecError, short  # noqa: E402
from trainables.tasks.registry import TASKS  # noqa: E402

_BETTER, _WORSE, _NEUTRAL = "#2b8cbe", "#d7301f", "#9e9e9e"
_DPI = 100
FENCE = 3.0          # Tukey's far-out fences: Q1 - 3 IQR, Q3 + 3 IQR
MIN_IQR = 0.5        # points (x100): fences never narrower than this, so that
                     # near-identical deltas do not make every bar an "outlier"
_TITLE_SIZE = 11
# Matplotlib's ids are salted hashes; a fixed salt makes the SVG the same on every run.
_STYLE = {"svg.hashsalt": "alignfreeze", "svg.fonttype": "path"}


# ------------------------------------------------------------- shared rules

def language_order(task: str, languages) -> list[str]:
    """The languages of a task in the paper's order, then the others by code."""
    paper = TASKS[task].paper_languages if task in TASKS else ()
    return sorted(set(languages), key=lambda language: (paper.index(language), "")
                  if language in paper else (len(paper), language))


def fences(values) -> tuple[float, float]:
    """Tukey's far-out fences of the finite values: (Q1 - 3 IQR, Q3 + 3 IQR)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return -1.0, 1.0
    q1, q3 = np.percentile(values, [25, 75])
    spread = max(q3 - q1, MIN_IQR)
    return float(q1 - FENCE * spread), float(q3 + FENCE * spread)


def axis_range(values, extra=()) -> tuple[float, float]:
    """Axis limits: zero and every value (and extra, e.g. interval ends)
    within the fences of ``values``, with a margin."""
    low_fence, high_fence = fences(values)
    shown = np.concatenate([np.asarray(values, float).ravel(), np.asarray(extra, float).ravel()])
    shown = shown[np.isfinite(shown) & (shown >= low_fence) & (shown <= high_fence)]
    low, high = min(0.0, *shown) if len(shown) else 0.0, max(0.0, *shown) if len(shown) else 0.0
    margin = 0.08 * (high - low) or 1.0
    return low - margin, high + margin


def signed(value: float) -> str:
    """One decimal with its sign and a true minus; zero unsigned."""
    text = f"{value:+.1f}"
    return "0.0" if text in ("+0.0", "-0.0") else text.replace("-", "\u2212")


def significance_marks(p_adjusted: float, alpha: float) -> str:
    """'*', '**', '***': corrected p below alpha, alpha / 5, alpha / 50 (0.05, 0.01, 0.001)."""
    if not np.isfinite(p_adjusted):
        return ""
    return "".join("*" for level in (alpha, alpha / 5, alpha / 50) if p_adjusted < level)


def _wrap(text: str, width_inches: float, fontsize: float) -> str:
    """Wrap to the width: DejaVu Sans averages ~0.6 em a character."""
    characters = max(20, int(width_inches * 72 / (0.6 * fontsize)))
    return "\n".join(textwrap.fill(line, characters) for line in text.split("\n"))


def variant(findings: Findings, model: str, task: str) -> str:
    """The realigned rows' aligner(s) and schedule(s): 'aligner dico, schedule before'."""
    table = findings.table[(findings.table["model"] == model) & (findings.table["task"] == task)
                           & (findings.table["strategy"] != vocabulary.BASELINE)]
    if table.empty:
        return "fine-tuning only"
    aligners, schedules = sorted(table["aligner"].unique()), sorted(table["schedule"].unique())
    return (f"aligner{'s' if len(aligners) > 1 else ''} {', '.join(aligners)}; "
            f"schedule{'s' if len(schedules) > 1 else ''} {', '.join(schedules)}")


def _title(findings: Findings, model: str, task: str) -> str:
    metric = findings.averages.loc[(findings.averages["model"] == model)
                                   & (findings.averages["task"] == task), "metric"]
    metric = metric.iloc[0] if len(metric) else ""
    return f"{vocabulary.model_label(model)}, {vocabulary.task_label(task)} ({metric})"


def _extent(figure) -> tuple[float, float]:
    """Bottom and top of the axes with their labels and ticks, in figure coordinates."""
    renderer = figure.canvas.get_renderer()
    boxes = [axis.get_tightbbox(renderer).transformed(figure.transFigure.inverted())
             for axis in figure.axes]
    return min(box.y0 for box in boxes), max(box.y1 for box in boxes)


def _heading(figure, text: str, fontsize: float = _TITLE_SIZE) -> None:
    """The figure's title above the axes and their tick labels, wrapped to the
    figure's width (after tight_layout; the tight bounding box makes room for it)."""
    figure.suptitle(_wrap(text, figure.get_figwidth(), fontsize), fontsize=fontsize,
                    y=_extent(figure)[1] + 0.08 / figure.get_figheight(), va="bottom")


def _cells(axis, grid: np.ndarray, **style):
    """A heatmap of vector cells (pcolormesh, not imshow's embedded bitmap),
    cell (i, j) centred at x = j, y = i, row 0 at the top."""
    rows, columns = grid.shape
    mesh = axis.pcolormesh(np.arange(columns + 1) - 0.5, np.arange(rows + 1) - 0.5,
                           np.ma.masked_invalid(grid), edgecolors="white", linewidth=0.5,
                           **style)
    axis.set_ylim(rows - 0.5, -0.5)
    return mesh


def _colorbar(figure, mesh, axis, **style) -> None:
    bar = figure.colorbar(mesh, ax=axis, **style)
    bar.solids.set_rasterized(False)   # matplotlib rasterizes long colour bars; keep vectors
    bar.solids.set_edgecolor("face")   # and no hairline seams between its bands


def _strategies(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    rows = frame[["strategy", "aligner", "schedule"]].drop_duplicates()
    rows = rows.sort_values(["strategy", "aligner", "schedule"], key=lambda column: column.map(
        vocabulary.strategy_order) if column.name == "strategy" else column)
    return [tuple(row) for row in rows.itertuples(index=False)]


def _comparisons(findings: Findings, model: str, task: str) -> pd.DataFrame:
    return findings.comparisons[(findings.comparisons["model"] == model)
                                & (findings.comparisons["task"] == task)]


def _test_text(findings: Findings, comparisons: pd.DataFrame) -> str:
    names = {"welch": "Welch", "wilcoxon": "Wilcoxon"}
    tests = " / ".join(names.get(t, t) for t in sorted(comparisons["test"].dropna().unique()))
    tests = tests or "Welch"
    correction = {"holm": "Holm", "bh": "Benjamini-Hochberg"}.get(findings.options.correction,
                                                                 findings.options.correction)
    return f"{tests} test, {correction}-corrected across languages"


# ------------------------------------------------------------------ deltas

def _delta_values(comparisons: pd.DataFrame):
    """Deltas (x100) and interval ends (x100) of every bar of the figure."""
    deltas = comparisons["delta"].to_numpy(float) * 100
    ends = np.concatenate([comparisons["delta_low"].to_numpy(float),
                           comparisons["delta_high"].to_numpy(float)]) * 100
    return deltas, ends


def delta_figure(findings: Findings, model: str, task: str):
    """Bars: per language, strategy minus baseline (x100) with its 95% bootstrap
    CI; blue / red where the corrected test finds it better / worse."""
    comparisons = _comparisons(findings, model, task)
    strategies = _strategies(comparisons)
    if not strategies:
        return None
    order = language_order(task, comparisons["language"])
    deltas, ends = _delta_values(comparisons)
    low_limit, high_limit = axis_range(deltas, ends)
    width = max(6.0, 0.28 * len(order) + 2)
    figure, axes = plt.subplots(len(strategies), 1, squeeze=False, sharey=True,
                                figsize=(width, 2.2 * len(strategies) + 0.4))
    positions = np.arange(len(order))
    any_clipped = False
    for axis, (strategy, aligner, schedule) in zip(axes[:, 0], strategies):
        rows = comparisons[(comparisons["strategy"] == strategy)
                           & (comparisons["aligner"] == aligner)
                           & (comparisons["schedule"] == schedule)].set_index("language")
        rows = rows.reindex(order)      # the same slots in every panel, gaps where absent
        delta = rows["delta"].to_numpy(float) * 100
        shown = np.clip(delta, low_limit, high_limit)
        clipped = np.isfinite(delta) & (shown != delta)
        low = np.nan_to_num(np.maximum(shown - rows["delta_low"].to_numpy(float) * 100, 0))
        high = np.nan_to_num(np.maximum(rows["delta_high"].to_numpy(float) * 100 - shown, 0))
        low[clipped], high[clipped] = 0, 0   # the interval of a cut bar lies off the axis
        direction = rows["direction"].fillna(0).to_numpy()
        colors = [_BETTER if d > 0 else _WORSE if d < 0 else _NEUTRAL for d in direction]
        bars = axis.bar(positions, np.nan_to_num(shown), color=colors,
                        yerr=np.vstack([low, high]), capsize=2,
                        error_kw={"elinewidth": 0.8, "ecolor": "#333333"})
        for bar, cut, value in zip(bars, clipped, delta):
            if cut:
                any_clipped = True
                bar.set_hatch("////")
                bar.set_edgecolor("black")
                edge = high_limit if value > 0 else low_limit
                axis.annotate(signed(value), (bar.get_x() + bar.get_width() / 2, edge),
                              xytext=(0, -3 if value > 0 else 3), textcoords="offset points",
                              rotation=90, ha="center", va="top" if value > 0 else "bottom",
                              fontsize=7, bbox={"boxstyle": "square,pad=0.1", "fc": "white",
                                                "ec": "none", "alpha": 0.8})
        axis.axhline(0, color="black", linewidth=0.8)
        axis.set_xticks(positions, order, fontsize=8)
        axis.set_xlim(-0.6, len(order) - 0.4)
        axis.set_ylim(low_limit, high_limit)
        axis.set_ylabel("delta (x100)")
        axis.set_title(findings.row_label(strategy, aligner, schedule), fontsize=10, loc="left")
    figure.tight_layout()
    handles = [Patch(color=_BETTER, label="better (significant)"),
               Patch(color=_WORSE, label="worse (significant)"),
               Patch(color=_NEUTRAL, label="not significant")]
    if any_clipped:
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="////",
                             label="beyond the axis (value written)"))
    figure.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8,
                  frameon=False, bbox_to_anchor=(0.5, _extent(figure)[0]))
    _heading(figure, f"{_title(findings, model, task)}: delta vs fine-tuning only "
                     f"({variant(findings, model, task)})")
    return figure


# ----------------------------------------------------------------- heatmap

def heatmap_figure(findings: Findings, model: str, task: str):
    """Languages x strategies, colour = delta vs baseline (x100), centred at 0,
    the value and the significance marks written in each cell."""
    comparisons = _comparisons(findings, model, task)
    strategies = _strategies(comparisons)
    if not strategies:
        return None
    order = language_order(task, comparisons["language"])
    grid = np.full((len(order), len(strategies)), np.nan)
    marks = np.full(grid.shape, "", dtype=object)
    for j, (strategy, aligner, schedule) in enumerate(strategies):
        rows = comparisons[(comparisons["strategy"] == strategy)
                           & (comparisons["aligner"] == aligner)
                           & (comparisons["schedule"] == schedule)].set_index("language")
        for i, language in enumerate(order):
            if language in rows.index:
                grid[i, j] = rows.at[language, "delta"] * 100
                marks[i, j] = significance_marks(rows.at[language, "p_adjusted"],
                                                 findings.options.alpha)
    low_limit, high_limit = axis_range(grid)
    limit = max(abs(low_limit), abs(high_limit))
    saturated = np.isfinite(grid) & (np.abs(grid) > limit)
    width = max(5.0, 1.4 + 1.1 * len(strategies) + 1.2)
    figure, axis = plt.subplots(figsize=(width, 0.26 * len(order) + 1.6))
    image = _cells(axis, grid, cmap="RdBu", vmin=-limit, vmax=limit)
    colormap = image.get_cmap()
    for i, j in zip(*np.nonzero(np.isfinite(grid))):
        value = grid[i, j]
        red, green, blue, _ = colormap(image.norm(value))
        dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
        axis.text(j, i, f"{signed(value)}{marks[i, j]}", ha="center", va="center", fontsize=8,
                  color="white" if dark else "black", fontweight="bold" if marks[i, j] else None)
    axis.set_xticks(np.arange(len(strategies)),
                    [textwrap.fill(findings.row_label(*row), 14) for row in strategies],
                    fontsize=8)
    axis.xaxis.tick_top()
    axis.set_yticks(np.arange(len(order)), order, fontsize=8)
    axis.set_ylabel("target language")
    _colorbar(figure, image, axis, label="delta (x100)", fraction=0.05, pad=0.03,
                    extend="both" if saturated.any() else "neither")
    alpha = findings.options.alpha
    figure.tight_layout()
    note = (f"* / ** / ***: corrected p < {alpha:g} / {alpha / 5:g} / {alpha / 50:g} "
            f"({_test_text(findings, comparisons)})")
    if saturated.any():
        note += f"; colours saturate beyond \u00b1{limit:.1f}"
    figure.text(0.02, _extent(figure)[0] - 0.05 / figure.get_figheight(),
                _wrap(note, figure.get_figwidth(), 8), fontsize=8, va="top", ha="left")
    _heading(figure, f"{_title(findings, model, task)}: delta vs fine-tuning only (x100) "
                     f"({variant(findings, model, task)})")
    return figure


# ------------------------------------------------------------------- depth

def depth_points(findings: Findings, model: str, task: str) -> pd.DataFrame:
    """Average over targets against frozen depth: side, depth, mean, std over seeds.

    Present only when depth variants (front:K, back:K) were run; front and
    back join them at half the blocks when the number of blocks is recorded
    (provenance num_blocks), and full realignment is depth 0 on both sides.
    """
    table = findings.table[(findings.table["model"] == model) & (findings.table["task"] == task)]
    if not table["strategy"].map(vocabulary.is_depth_strategy).any():
        return pd.DataFrame(columns=["side", "depth", "aligner", "schedule", "mean", "std"])
    blocks = table["num_blocks"].dropna()
    num_blocks = int(blocks.mode().iloc[0]) if len(blocks) else None
    per_seed = statistics.seed_averages(table)
    rows = []
    for (strategy, aligner, schedule), group in per_seed.groupby(
            ["strategy", "aligner", "schedule"], observed=True):
        values = group["average"].to_numpy(float)
        sides = ([("front", 0), ("back", 0)] if strategy == "full"
                 else [vocabulary.frozen_depth(strategy, num_blocks)])
        for side_depth in sides:
            if side_depth is not None:
                rows.append({"side": side_depth[0], "depth": side_depth[1], "aligner": aligner,
                             "schedule": schedule, "mean": values.mean(),
                             "std": values.std(ddof=0)})
    return pd.DataFrame(rows, columns=["side", "depth", "aligner", "schedule", "mean", "std"])


def depth_figure(findings: Findings, model: str, task: str):
    points = depth_points(findings, model, task)
    if points.empty:
        return None
    figure, axis = plt.subplots(figsize=(6.0, 3.8))
    for (side, aligner, schedule), group in points.groupby(["side", "aligner", "schedule"]):
        group = group.sort_values("depth")
        label = side if points[["aligner", "schedule"]].drop_duplicates().shape[0] == 1 \
            else f"{side} ({aligner}, {schedule})"
        axis.errorbar(group["depth"], group["mean"] * 100, yerr=group["std"] * 100, marker="o",
                      capsize=3, label=f"{label} frozen")
    baseline = findings.averages[(findings.averages["model"] == model)
                                 & (findings.averages["task"] == task)
                                 & (findings.averages["strategy"] == vocabulary.BASELINE)]
    if len(baseline):
        axis.axhline(baseline["average"].iloc[0] * 100, color="gray", linestyle="--",
                     label="fine-tuning only")
    axis.set_xlabel("frozen blocks during realignment")
    axis.set_ylabel("average over targets (x100)")
    axis.xaxis.get_major_locator().set_params(integer=True)
    axis.legend(fontsize=8)
    figure.tight_layout()
    _heading(figure, f"{_title(findings, model, task)} against frozen depth, mean ± std over "
                     f"seeds ({variant(findings, model, task)})", 10)
    return figure


# ------------------------------------------------------------------ window

def _window_variant(table: pd.DataFrame) -> tuple[str, str] | None:
    middle = table["strategy"].map(lambda s: s.startswith("range:")
                                   and vocabulary.frozen_window(s) is not None)
    if not middle.any():
        return None
    return tuple(table.loc[middle, ["aligner", "schedule"]].value_counts().index[0])


def window_points(findings: Findings, model: str, task: str) -> pd.DataFrame:
    """Average over targets per frozen window: first block, number of blocks, mean over seeds.

    Present only when windows in the middle of the encoder (range:A-B, A >= 1)
    were run; front:K and back:K are the windows at either end and join them.
    One aligner and schedule per figure: the most frequent.
    """
    columns = ["start", "length", "mean", "std", "seeds"]
    table = findings.table[(findings.table["model"] == model) & (findings.table["task"] == task)]
    chosen = _window_variant(table)
    if chosen is None:
        return pd.DataFrame(columns=columns)
    table = table[(table["aligner"] == chosen[0]) & (table["schedule"] == chosen[1])]
    blocks = table["num_blocks"].dropna()
    num_blocks = int(blocks.mode().iloc[0]) if len(blocks) else None
    rows = []
    for strategy, group in statistics.seed_averages(table).groupby("strategy", observed=True):
        window = vocabulary.frozen_window(str(strategy), num_blocks)
        if window is not None:
            values = group["average"].to_numpy(float)
            rows.append({"start": window[0], "length": window[1], "mean": values.mean(),
                         "std": values.std(ddof=0), "seeds": len(values)})
    return pd.DataFrame(rows, columns=columns)


def window_figure(findings: Findings, model: str, task: str):
    points = window_points(findings, model, task)
    if points.empty:
        return None
    aligner, schedule = _window_variant(
        findings.table[(findings.table["model"] == model) & (findings.table["task"] == task)])
    starts = np.arange(int(points["start"].max()) + 1)
    lengths = np.arange(1, int((points["start"] + points["length"]).max()) + 1)
    grid = np.full((len(starts), len(lengths)), np.nan)
    for row in points.itertuples(index=False):
        grid[int(row.start), int(row.length) - 1] = row.mean * 100
    figure, axis = plt.subplots(figsize=(max(5.0, 1.6 + 0.8 * len(lengths)),
                                         1.2 + 0.5 * len(starts)))
    image = _cells(axis, grid, cmap="viridis")
    for i, j in zip(*np.nonzero(~np.isnan(grid))):
        value = grid[i, j]
        light = value < np.nanmin(grid) + 0.5 * (np.nanmax(grid) - np.nanmin(grid))
        axis.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=8,
                  color="white" if light else "black")
    axis.set_xticks(np.arange(len(lengths)), [str(n) for n in lengths])
    axis.set_yticks(np.arange(len(starts)), [str(b) for b in starts])
    axis.set_xlabel("frozen blocks (window length)")
    axis.set_ylabel("first frozen block")
    _colorbar(figure, image, axis, label="average over targets (x100)", fraction=0.05)
    figure.tight_layout()
    _heading(figure, f"{_title(findings, model, task)}: frozen window, mean over seeds "
                     f"(aligner {aligner}; schedule {schedule})", 10)
    return figure


# ---------------------------------------------------------------- captions

def caption(findings: Findings, model: str, task: str, kind: str) -> str:
    """What a figure shows and by which rules, in words (the HTML's figcaption,
    the captions file of ``--figures``)."""
    comparisons = _comparisons(findings, model, task)
    alpha = findings.options.alpha
    if kind == "delta":
        deltas, ends = _delta_values(comparisons)
        low, high = axis_range(deltas, ends)
        cut = comparisons[(comparisons["delta"] * 100 > high) | (comparisons["delta"] * 100 < low)]
        text = (f"Per target language, the strategy's mean minus the baseline's (x100, over "
                f"seeds). Colours: {_test_text(findings, comparisons)} at alpha = {alpha:g}. "
                f"Error bars: 95% percentile bootstrap intervals over seeds, per language, "
                f"not corrected for multiple comparisons (a grey bar can have an interval that "
                f"excludes 0, and a coloured one an interval that includes it). The y axis spans "
                f"the deltas and intervals within Tukey's far-out fences (Q1 - 3 IQR, Q3 + 3 IQR "
                f"of the deltas, IQR at least {MIN_IQR:g}); ")
        if len(cut):
            listed = ", ".join(f"{r.language} {r.delta * 100:+.1f} ({r.strategy})"
                               for r in cut.itertuples())
            text += f"bars beyond them are cut at the edge, hatched and labelled: {listed}."
        else:
            text += "no bar lies beyond them."
        return text
    if kind == "heatmap":
        values = comparisons["delta"].to_numpy(float) * 100
        low, high = axis_range(values)
        beyond = int((np.abs(values) > max(abs(low), abs(high))).sum())
        return (f"Per target language (rows, the paper's order) and strategy (columns), the "
                f"mean minus the baseline's (x100, over seeds), written in each cell. Marks: "
                f"* / ** / *** where the {_test_text(findings, comparisons)} gives p < {alpha:g} "
                f"/ {alpha / 5:g} / {alpha / 50:g}. The colour scale is symmetric around 0 and "
                f"spans the values within Tukey's far-out fences (Q1 - 3 IQR, Q3 + 3 IQR); "
                + (f"{beyond} cell(s) beyond them saturate." if beyond
                   else "no cell lies beyond them."))
    if kind == "depth":
        return ("Average over target languages (x100) against the number of blocks frozen "
                "during realignment, from the front and from the back; full realignment is depth "
                "0 on both sides. Error bars: std over seeds (population, ddof = 0). Dashed: "
                "fine-tuning only.")
    if kind == "window":
        return ("Average over target languages (x100, mean over seeds) per window of frozen "
                "blocks: first frozen block (rows) and number of frozen blocks (columns).")
    raise ValueError(f"unknown figure kind {kind!r}")


# ----------------------------------------------------------------- writers

def svg_text(figure, prefix: str = "") -> str:
    """The figure as an ``<svg>`` element for inline HTML: no XML prologue,
    ids prefixed so that several figures in one page never share one."""
    buffer = io.StringIO()
    with matplotlib.rc_context(_STYLE):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    if prefix:
        ids = set(re.findall(r'\bid="([^"]+)"', text))
        text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', text)
        text = re.sub(r'(href="#|url\(#)([^")]+)',
                      lambda m: m.group(1) + (prefix + m.group(2) if m.group(2) in ids
                                              else m.group(2)), text)
    return text


def figure_name(model: str, task: str, kind: str) -> str:
    """A file-name stem: 'xlm-roberta-base_pos_delta'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{model}_{task}_{kind}")


def write_figures(findings: Findings, directory: Path) -> list[Path]:
    """Every figure as PDF and SVG files in ``directory`` (created), and
    captions.md with each figure's caption; returns the paths written."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise SpecError(f"--figures {short(str(directory))}: exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    written, captions = [], ["# Figures", ""]
    for model, task, kind, figure in figures(findings):
        stem = figure_name(model, task, kind)
        with matplotlib.rc_context(_STYLE):
            for suffix in ("pdf", "svg"):
                path = directory / f"{stem}.{suffix}"
                figure.savefig(path, format=suffix, bbox_inches="tight",
                               metadata={"CreationDate": None} if suffix == "pdf"
                               else {"Date": None})
                written.append(path)
        plt.close(figure)
        captions += [f"## {stem}", "", caption(findings, model, task, kind), ""]
    path = directory / "captions.md"
    path.write_text("\n".join(captions), encoding="utf-8")
    return written + [path]


def figures(findings: Findings):
    """Yield (model, task, kind, figure) for every figure of the findings,
    one at a time (the caller closes each, e.g. with ``svg_text``)."""
    pairs = findings.averages[["model", "task"]].drop_duplicates()
    pairs = sorted(pairs.itertuples(index=False),
                   key=lambda p: (vocabulary.model_order(p.model), vocabulary.task_order(p.task)))
    for model, task in pairs:
        for kind, make in (("delta", delta_figure), ("heatmap", heatmap_figure),
                           ("depth", depth_figure), ("window", window_figure)):
            figure = make(findings, model, task)
            if figure is not None:
                yield model, task, kind, figure
