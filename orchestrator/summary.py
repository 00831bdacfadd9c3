"""The per-language table printed after a run (mean over seeds, x100)."""

from __future__ import annotations

from pathlib import Path


def per_language_table(directory: Path) -> str:
    """Strategies x (target languages, average, English) for each model and task."""

    from analysis.results import run_directory_results
    from analysis.vocabulary import sorted_languages, strategy_order
    from trainables.tasks.registry import get_task

    loaded = run_directory_results(directory)
    table = loaded.table
    if table.empty:
        return "no result yet"
    blocks = []
    for (model, task), frame in table.groupby(["model", "task"], sort=False):
        metric = get_task(task).primary_metric
        frame = frame[frame["metric"] == metric]
        frame = frame.assign(row=frame["strategy"] + frame.apply(
            lambda r: "" if r["strategy"] == "baseline" else f" ({r['aligner']}, {r['schedule']})", axis=1))
        means = frame.pivot_table(index="row", columns="language", values="value", aggfunc="mean") * 100
        seeds = frame.groupby("row")["seed"].nunique()
        targets = [c for c in sorted_languages(task, means.columns) if c != "en"]   # the reports' order
        means.insert(len(means.columns), "avg", means[targets].mean(axis=1))
        means = means[targets + ["avg"] + (["en"] if "en" in means.columns else [])]
        means.insert(0, "seeds", seeds)
        # the paper's rows first (baseline, full, front, back), then front:K, back:K, ranges
        order = sorted(means.index, key=lambda row: (strategy_order(row.split(" (")[0]), row))
        means = means.loc[order].round(1)
        means.index.name = None                 # no stray "row" header line
        means.columns.name = "language"
        blocks.append(f"{model} / {task} ({metric} x100, mean over seeds)\n" + means.to_string())
    return "\n\n".join(blocks)
