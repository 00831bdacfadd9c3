"""The per-language table printed after a run (mean over seeds, x100)."""

from __future__ import annotations

from pathlib import Path


def per_language_table(directory: Path) -> str:
    """Strategies x (target languages, average, English) for each model and task."""

    from analysis.results import run_directory_results
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
        targets = [c for c in means.columns if c != "en"]
        means.insert(len(means.columns), "avg", means[targets].mean(axis=1))
        means = means[targets + ["avg"] + (["en"] if "en" in means.columns else [])]
        means.insert(0, "seeds", seeds)
        order = sorted(means.index, key=lambda r: (r != "baseline", r))
        blocks.append(f"{model} / {task} ({metric} x100, mean over seeds)\n"
                      + means.loc[order].round(1).to_string())
    return "\n\n".join(blocks)
