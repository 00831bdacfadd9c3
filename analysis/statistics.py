"""The paper's numbers: means and stds over seeds, target averages, the count.

A *cell* is one (model, task, strategy, aligner, schedule, metric,
language); its statistics are over seeds. The paper's count: a strategy is
better (worse) in a language when its mean is above (below) the baseline
mean by more than k times the baseline's population std (ddof=0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import vocabulary

GROUP_COLUMNS: list[str] = ["model", "task", "strategy", "aligner", "schedule", "metric"]
CELL_COLUMNS: list[str] = GROUP_COLUMNS + ["language"]
BASELINE_KEY: list[str] = ["model", "task", "metric", "language"]

# Differences within this of the threshold count as equal to it: float noise
# must not decide the boundary case "exactly one std above".
_TOLERANCE = 1e-9


def cell_statistics(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, population std (ddof=0), number of seeds and the seeds, per cell."""
    columns = CELL_COLUMNS + ["is_target"]
    if table.empty:
        return pd.DataFrame(columns=columns + ["mean", "std", "n_seeds", "seeds"])
    grouped = table.groupby(columns, sort=False, observed=True)
    cells = grouped["value"].agg(mean="mean", std=lambda v: float(np.std(v.to_numpy(), ddof=0)),
                                 n_seeds="count").reset_index()
    seeds = grouped["seed"].agg(lambda s: tuple(sorted(s.unique()))).reset_index(drop=True)
    cells["seeds"] = seeds.to_numpy()
    return cells


def target_averages(cells: pd.DataFrame) -> pd.DataFrame:
    """Average over target languages of the per-language means, per group."""
    targets = cells[cells["is_target"]]
    if targets.empty:
        return pd.DataFrame(columns=GROUP_COLUMNS + ["average", "n_languages"])
    return (targets.groupby(GROUP_COLUMNS, sort=False, observed=True)
            .agg(average=("mean", "mean"), n_languages=("language", "nunique")).reset_index())


def rounded_percent(values) -> np.ndarray:
    """Values x100 rounded to one decimal, as the authors' tables show them."""
    return np.round(np.asarray(values, dtype=float) * 100.0, 1)


def language_verdicts(cells: pd.DataFrame, k: float = 1.0, round_first: bool = False
                      ) -> pd.DataFrame:
    """Each strategy's target cell next to the baseline's, with the paper's verdict.

    Columns: the cell key, mean, std, n_seeds, seeds, baseline_mean,
    baseline_std, baseline_n_seeds, baseline_seeds, delta (mean -
    baseline_mean, fractions) and verdict: +1 above baseline by more than
    k x baseline std, -1 below by more, 0 otherwise. With ``round_first``
    means and std are first rounded to one decimal of their x100 value.
    Cells without a baseline cell are left out (nothing to compare with).
    """
    targets = cells[cells["is_target"]]
    baseline = targets[targets["strategy"] == vocabulary.BASELINE]
    others = targets[targets["strategy"] != vocabulary.BASELINE]
    baseline = baseline[BASELINE_KEY + ["mean", "std", "n_seeds", "seeds"]].rename(
        columns={"mean": "baseline_mean", "std": "baseline_std",
                 "n_seeds": "baseline_n_seeds", "seeds": "baseline_seeds"})
    merged = others.merge(baseline, on=BASELINE_KEY, how="inner")
    merged["delta"] = merged["mean"] - merged["baseline_mean"]
    merged["verdict"] = paper_verdicts(merged["mean"], merged["baseline_mean"],
                                       merged["baseline_std"], k, round_first)
    return merged


def paper_verdicts(mean, baseline_mean, baseline_std, k: float = 1.0,
                   round_first: bool = False) -> np.ndarray:
    """+1 / -1 / 0: mean above / below baseline_mean by more than k x baseline_std."""
    mean = np.asarray(mean, dtype=float)
    baseline_mean = np.asarray(baseline_mean, dtype=float)
    baseline_std = np.asarray(baseline_std, dtype=float)
    if round_first:
        # Compare in integer tenths of a point, exactly as printed.
        difference = np.rint(rounded_percent(mean) * 10) - np.rint(rounded_percent(baseline_mean) * 10)
        threshold = k * np.rint(rounded_percent(baseline_std) * 10)
    else:
        difference = mean - baseline_mean
        threshold = k * baseline_std
    tolerance = _TOLERANCE * np.maximum(1.0, np.abs(threshold))
    verdict = np.zeros(difference.shape, dtype=int)
    verdict[difference > threshold + tolerance] = 1
    verdict[difference < -threshold - tolerance] = -1
    return verdict


def paper_counts(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Per group: languages compared, #down and #up by the paper's rule."""
    if verdicts.empty:
        return pd.DataFrame(columns=GROUP_COLUMNS + ["n_compared", "down", "up"])
    return (verdicts.assign(down=verdicts["verdict"] < 0, up=verdicts["verdict"] > 0)
            .groupby(GROUP_COLUMNS, sort=False, observed=True)
            .agg(n_compared=("language", "nunique"), down=("down", "sum"), up=("up", "sum"))
            .reset_index())


def seed_averages(table: pd.DataFrame) -> pd.DataFrame:
    """Per group and seed: the average over target languages of that seed's run."""
    targets = table[table["is_target"]]
    return (targets.groupby(GROUP_COLUMNS + ["seed"], sort=False, observed=True)["value"]
            .mean().rename("average").reset_index())


def english_scores(cells: pd.DataFrame) -> pd.DataFrame:
    """Per group: the source language's (English) mean and std over seeds."""
    source = cells[~cells["is_target"].astype(bool)]
    columns = GROUP_COLUMNS + ["english", "english_std", "english_n_seeds"]
    if source.empty:
        return pd.DataFrame(columns=columns)
    return source.rename(columns={"mean": "english", "std": "english_std",
                                  "n_seeds": "english_n_seeds"})[columns].reset_index(drop=True)


def average_spread(table: pd.DataFrame) -> pd.DataFrame:
    """Per group: the std over seeds (ddof=0) of each seed's target average, and the seeds."""
    per_seed = seed_averages(table)
    if per_seed.empty:
        return pd.DataFrame(columns=GROUP_COLUMNS + ["average_std", "n_seeds"])
    return (per_seed.groupby(GROUP_COLUMNS, sort=False, observed=True)["average"]
            .agg(average_std=lambda v: float(np.std(v.to_numpy(), ddof=0)), n_seeds="count")
            .reset_index())
