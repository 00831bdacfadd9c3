"""Figures of the findings (matplotlib, Agg backend: no display needed).

Per (model, task): the per-language delta against the baseline for each
strategy (bars with bootstrap CIs, languages ordered by delta), a
strategies x languages heatmap of the deltas, where depth variants
(front:K / back:K) were run, the metric against the number of frozen blocks
per side, and where windows of blocks (range:A-B, a depth search's
``window`` side) were run, a first block x number of blocks heatmap of the
metric, with the numbers.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis import statistics, vocabulary  # noqa: E402
from analysis.findings import Findings  # noqa: E402

_BETTER, _WORSE, _NEUTRAL = "#2b8cbe", "#d7301f", "#9e9e9e"
_DPI = 100


def _title(findings: Findings, model: str, task: str) -> str:
    metric = findings.averages.loc[(findings.averages["model"] == model)
                                   & (findings.averages["task"] == task), "metric"]
    metric = metric.iloc[0] if len(metric) else ""
    return f"{vocabulary.model_label(model)}, {vocabulary.task_label(task)} ({metric})"


def _strategies(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    rows = frame[["strategy", "aligner", "schedule"]].drop_duplicates()
    rows = rows.sort_values(["strategy", "aligner", "schedule"], key=lambda column: column.map(
        vocabulary.strategy_order) if column.name == "strategy" else column)
    return [tuple(row) for row in rows.itertuples(index=False)]


def delta_figure(findings: Findings, model: str, task: str):
    """Bars: per language, strategy minus baseline (x100) with its 95% CI;
    blue / red where the corrected test finds it better / worse."""
    comparisons = findings.comparisons[(findings.comparisons["model"] == model)
                                       & (findings.comparisons["task"] == task)]
    strategies = _strategies(comparisons)
    if not strategies:
        return None
    n_languages = comparisons["language"].nunique()
    figure, axes = plt.subplots(len(strategies), 1, squeeze=False, sharey=True,
                                figsize=(max(6.0, 0.28 * n_languages + 2), 2.4 * len(strategies)))
    for axis, (strategy, aligner, schedule) in zip(axes[:, 0], strategies):
        rows = comparisons[(comparisons["strategy"] == strategy)
                           & (comparisons["aligner"] == aligner)
                           & (comparisons["schedule"] == schedule)].sort_values("delta")
        delta = rows["delta"].to_numpy() * 100
        low = np.nan_to_num(delta - rows["delta_low"].to_numpy() * 100)
        high = np.nan_to_num(rows["delta_high"].to_numpy() * 100 - delta)
        colors = [_BETTER if d > 0 else _WORSE if d < 0 else _NEUTRAL for d in rows["direction"]]
        positions = np.arange(len(rows))
        axis.bar(positions, delta, color=colors, yerr=np.vstack([low, high]), capsize=2,
                 error_kw={"elinewidth": 0.8, "ecolor": "#333333"})
        axis.axhline(0, color="black", linewidth=0.8)
        axis.set_xticks(positions, rows["language"], fontsize=8)
        axis.set_xlim(-0.6, len(rows) - 0.4)
        axis.set_ylabel("delta (x100)")
        axis.set_title(findings.row_label(strategy, aligner, schedule), fontsize=10, loc="left")
    figure.suptitle(f"{_title(findings, model, task)}: delta vs fine-tuning only "
                    f"(95% bootstrap CI; blue/red: significant)", fontsize=11)
    figure.tight_layout()
    return figure


def heatmap_figure(findings: Findings, model: str, task: str):
    """Strategies x languages, colour = delta vs baseline (x100), centred at 0;
    languages ordered by their mean delta; * marks a significant difference."""
    comparisons = findings.comparisons[(findings.comparisons["model"] == model)
                                       & (findings.comparisons["task"] == task)]
    strategies = _strategies(comparisons)
    if not strategies:
        return None
    order = comparisons.groupby("language")["delta"].mean().sort_values().index.tolist()
    grid = np.full((len(strategies), len(order)), np.nan)
    marks = np.zeros(grid.shape, dtype=bool)
    for i, (strategy, aligner, schedule) in enumerate(strategies):
        rows = comparisons[(comparisons["strategy"] == strategy)
                           & (comparisons["aligner"] == aligner)
                           & (comparisons["schedule"] == schedule)].set_index("language")
        for j, language in enumerate(order):
            if language in rows.index:
                grid[i, j] = rows.at[language, "delta"] * 100
                marks[i, j] = rows.at[language, "direction"] != 0
    # A robust colour range: one outlier language must not wash out the rest
    # (values beyond it saturate).
    limit = float(np.nanpercentile(np.abs(grid), 95)) if np.isfinite(grid).any() else 1.0
    limit = limit or 1.0
    figure, axis = plt.subplots(figsize=(max(6.0, 0.3 * len(order) + 3), 0.5 * len(strategies) + 1.8))
    image = axis.imshow(grid, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    axis.set_xticks(np.arange(len(order)), order, fontsize=8)
    axis.set_yticks(np.arange(len(strategies)),
                    [findings.row_label(*row) for row in strategies], fontsize=9)
    for i, j in zip(*np.nonzero(marks)):
        axis.text(j, i, "*", ha="center", va="center", fontsize=9)
    figure.colorbar(image, ax=axis, label="delta (x100)", fraction=0.03, extend="both")
    axis.set_title(f"{_title(findings, model, task)}: delta vs fine-tuning only "
                   f"(* significant)", fontsize=11)
    figure.tight_layout()
    return figure


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
    axis.set_title(f"{_title(findings, model, task)} against frozen depth (mean +- std over seeds)",
                   fontsize=10)
    figure.tight_layout()
    return figure


def window_points(findings: Findings, model: str, task: str) -> pd.DataFrame:
    """Average over targets per frozen window: first block, number of blocks, mean over seeds.

    Present only when windows in the middle of the encoder (range:A-B, A >= 1)
    were run; front:K and back:K are the windows at either end and join them.
    One aligner and schedule per figure: the most frequent.
    """
    columns = ["start", "length", "mean", "std", "seeds"]
    table = findings.table[(findings.table["model"] == model) & (findings.table["task"] == task)]
    middle = table["strategy"].map(lambda s: s.startswith("range:") and vocabulary.frozen_window(s) is not None)
    if not middle.any():
        return pd.DataFrame(columns=columns)
    variant = table.loc[middle, ["aligner", "schedule"]].value_counts().index[0]
    table = table[(table["aligner"] == variant[0]) & (table["schedule"] == variant[1])]
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
    starts = np.arange(int(points["start"].max()) + 1)
    lengths = np.arange(1, int((points["start"] + points["length"]).max()) + 1)
    grid = np.full((len(starts), len(lengths)), np.nan)
    for row in points.itertuples(index=False):
        grid[int(row.start), int(row.length) - 1] = row.mean * 100
    figure, axis = plt.subplots(figsize=(1.0 + 0.8 * len(lengths), 1.2 + 0.5 * len(starts)))
    image = axis.imshow(np.ma.masked_invalid(grid), cmap="viridis", aspect="auto")
    for i, j in zip(*np.nonzero(~np.isnan(grid))):
        value = grid[i, j]
        light = value < np.nanmin(grid) + 0.5 * (np.nanmax(grid) - np.nanmin(grid))
        axis.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=8,
                  color="white" if light else "black")
    axis.set_xticks(np.arange(len(lengths)), [str(n) for n in lengths])
    axis.set_yticks(np.arange(len(starts)), [str(b) for b in starts])
    axis.set_xlabel("frozen blocks (window length)")
    axis.set_ylabel("first frozen block")
    figure.colorbar(image, ax=axis, label="average over targets (x100)", fraction=0.05)
    axis.set_title(f"{_title(findings, model, task)}: frozen window (mean over seeds)", fontsize=10)
    figure.tight_layout()
    return figure


def png_bytes(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_DPI)
    plt.close(figure)
    return buffer.getvalue()


def data_uri(figure) -> str:
    """The figure as an embedded PNG, so the report opens from its file alone."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(figure)).decode("ascii")


def figures(findings: Findings):
    """Yield (model, task, kind, figure) for every figure of the findings,
    one at a time (the caller closes each, e.g. with ``data_uri``)."""
    pairs = findings.averages[["model", "task"]].drop_duplicates()
    pairs = sorted(pairs.itertuples(index=False),
                   key=lambda p: (vocabulary.model_order(p.model), vocabulary.task_order(p.task)))
    for model, task in pairs:
        for kind, make in (("delta", delta_figure), ("heatmap", heatmap_figure),
                           ("depth", depth_figure), ("window", window_figure)):
            figure = make(findings, model, task)
            if figure is not None:
                yield model, task, kind, figure
