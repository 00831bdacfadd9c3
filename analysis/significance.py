"""Beyond the paper's count: tests, corrections, effect sizes and intervals.

Per language, each strategy against the baseline: Welch's t-test always, a
paired test when both sides ran the same seeds, a permutation test on
request. P-values are corrected across the languages of one (model, task,
strategy) with Holm (default) or Benjamini-Hochberg. Every bootstrap is
seeded, so a report is the same on every run, and a cell's interval depends
on its own data and the seed only, not on which other cells were loaded.
"""

from __future__ import annotations

import math
import warnings
import zlib
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats

from analysis import vocabulary
from analysis.statistics import BASELINE_KEY, CELL_COLUMNS, GROUP_COLUMNS

TESTS: tuple[str, ...] = ("welch", "paired", "wilcoxon", "permutation")
CORRECTIONS: tuple[str, ...] = ("holm", "bh")
MIN_SEEDS = 3
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0


# ------------------------------------------------------------- corrections

def _sorted_valid(p_values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p, all-NaN output, indices of the non-NaN p-values in ascending order)."""
    p = np.asarray(p_values, dtype=float)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="mergesort")]
    return p, np.full(p.shape, np.nan), order


def holm_adjusted(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error); NaN stays NaN."""
    p, adjusted, order = _sorted_valid(p_values)
    m = len(order)
    if m:
        scaled = (m - np.arange(m)) * p[order]
        adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def benjamini_hochberg_adjusted(p_values) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (false discovery rate); NaN stays NaN."""
    p, adjusted, order = _sorted_valid(p_values)
    m = len(order)
    if m:
        scaled = p[order] * m / np.arange(1, m + 1)
        adjusted[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return adjusted


def adjusted_p_values(p_values, correction: str = "holm") -> np.ndarray:
    if correction == "holm":
        return holm_adjusted(p_values)
    if correction == "bh":
        return benjamini_hochberg_adjusted(p_values)
    raise ValueError(f"unknown correction {correction!r} (expected {', '.join(CORRECTIONS)})")


# ------------------------------------------------------------------- tests

def _quiet(function: Callable[[], float]) -> float:
    """Run a scipy test; degenerate samples (constant, tiny) give NaN, not noise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = float(function())
        except ValueError:
            return math.nan
    return value


def welch_p_value(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    return _quiet(lambda: stats.ttest_ind(a, b, equal_var=False).pvalue)


def paired_t_p_value(a, b) -> float:
    """Paired t-test; a and b are aligned by seed."""
    if len(a) < 2:
        return math.nan
    return _quiet(lambda: stats.ttest_rel(a, b).pvalue)


def wilcoxon_p_value(a, b) -> float:
    """Wilcoxon signed-rank on seed-aligned pairs (exact for small samples:
    with 5 seeds its smallest two-sided p is 0.0625)."""
    differences = np.asarray(a, float) - np.asarray(b, float)
    if len(differences) < 2:
        return math.nan
    if np.all(differences == 0):
        return 1.0
    return _quiet(lambda: stats.wilcoxon(differences).pvalue)


def _mean_difference(x, y, axis=-1):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def permutation_p_value(a, b, seed: int = DEFAULT_SEED, n_resamples: int = 9999) -> float:
    """Two-sided permutation test of the difference in means (exact when the
    number of relabellings is below n_resamples, as with 5 + 5 seeds)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 1 or len(b) < 1 or len(a) + len(b) < 3:
        return math.nan
    return _quiet(lambda: stats.permutation_test(
        (a, b), _mean_difference, vectorized=True, n_resamples=n_resamples,
        alternative="two-sided", rng=np.random.default_rng(seed)).pvalue)


# ---------------------------------------------------- effects and intervals

def cohens_d(a, b) -> float:
    """Standardised mean difference with the pooled sample std (ddof=1)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return math.nan
    pooled = ((len(a) - 1) * a.var(ddof=1) + (len(b) - 1) * b.var(ddof=1)) / (len(a) + len(b) - 2)
    if pooled <= 0:
        return math.nan
    return float((a.mean() - b.mean()) / math.sqrt(pooled))


def bootstrap_interval(samples: tuple, statistic: Callable, seed: int,
                       n_resamples: int = DEFAULT_RESAMPLES, confidence: float = 0.95
                       ) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(*samples, axis=-1)``.

    Percentile rather than BCa: BCa's jackknife fails on the constant
    samples that five seeds often give. Each sample is resampled on its own.
    """
    if any(len(sample) < 2 for sample in samples):
        return math.nan, math.nan
    arrays = tuple(np.asarray(sample, float) for sample in samples)
    if all(np.all(array == array[0]) for array in arrays):
        value = float(statistic(*arrays, axis=-1))
        return value, value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.bootstrap(arrays, statistic, n_resamples=n_resamples,
                                 confidence_level=confidence, method="percentile",
                                 vectorized=True, rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _mean(x, axis=-1):
    return np.mean(x, axis=axis)


def mean_interval(values, seed: int, n_resamples: int = DEFAULT_RESAMPLES,
                  confidence: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval of a mean."""
    return bootstrap_interval((values,), _mean, seed, n_resamples, confidence)


def difference_interval(a, b, seed: int, n_resamples: int = DEFAULT_RESAMPLES,
                        confidence: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval of mean(a) - mean(b), each side resampled apart."""
    return bootstrap_interval((a, b), _mean_difference, seed, n_resamples, confidence)


def probability_of_improvement(a, b) -> float:
    """P(a run of the strategy scores above a run of the baseline), over all
    seed pairs, ties counting one half (the Mann-Whitney U / (n_a n_b))."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) == 0 or len(b) == 0:
        return math.nan
    greater = (a[:, None] > b[None, :]).mean()
    ties = (a[:, None] == b[None, :]).mean()
    return float(greater + 0.5 * ties)


def cell_seed(key: tuple, base_seed: int = DEFAULT_SEED) -> int:
    """A stable per-cell seed: the cell's interval does not depend on the others."""
    return (zlib.crc32("\x1f".join(map(str, key)).encode()) + base_seed) % (2**32)


# ----------------------------------------------------- per-language tables

def cell_samples(table: pd.DataFrame) -> pd.DataFrame:
    """Target cells with their seeds and values, sorted by seed."""
    targets = table[table["is_target"]]
    columns = CELL_COLUMNS + ["seeds", "values"]
    if targets.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for key, group in targets.sort_values("seed").groupby(CELL_COLUMNS, sort=False, observed=True):
        rows.append((*key, tuple(int(s) for s in group["seed"]), group["value"].to_numpy(float)))
    return pd.DataFrame(rows, columns=columns)


def language_comparisons(table: pd.DataFrame, test: str = "welch", correction: str = "holm",
                         alpha: float = 0.05, n_resamples: int = DEFAULT_RESAMPLES,
                         seed: int = DEFAULT_SEED) -> tuple[pd.DataFrame, list[str]]:
    """Each strategy against the baseline, per target language, and warnings.

    Columns: the cell key; n_seeds, baseline_n_seeds, seeds_match; mean,
    baseline_mean, delta (fractions) with delta_low / delta_high (bootstrap
    95% interval over seeds); cohens_d; probability_of_improvement;
    p_welch, p_paired (paired t, seeds matched; NaN otherwise),
    p_permutation (only with test="permutation"); test (the one used for
    the cell), p, p_adjusted (across the languages of a group),
    significant (p_adjusted < alpha) and direction (+1 better, -1 worse,
    0 not significant).
    """
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r} (expected {', '.join(TESTS)})")
    adjusted_p_values([], correction)  # validates the name early
    samples = cell_samples(table)
    baseline = samples[samples["strategy"] == vocabulary.BASELINE]
    others = samples[samples["strategy"] != vocabulary.BASELINE]
    merged = others.merge(
        baseline[BASELINE_KEY + ["seeds", "values"]].rename(
            columns={"seeds": "baseline_seeds", "values": "baseline_values"}),
        on=BASELINE_KEY, how="left")
    orphans = merged["baseline_values"].isna()
    merged = merged[~orphans].reset_index(drop=True)

    rows, shapes = [], {}
    for index, record in enumerate(merged.itertuples(index=False)):
        a, b = record.values, record.baseline_values
        key = tuple(getattr(record, c) for c in CELL_COLUMNS)
        match = record.seeds == record.baseline_seeds
        shapes.setdefault((len(a), len(b)), []).append(index)
        rows.append({
            **dict(zip(CELL_COLUMNS, key)),
            "n_seeds": len(a), "baseline_n_seeds": len(b), "seeds_match": match,
            "mean": float(np.mean(a)), "baseline_mean": float(np.mean(b)),
            "delta": float(np.mean(a) - np.mean(b)), "delta_low": math.nan,
            "delta_high": math.nan, "cohens_d": cohens_d(a, b),
            "probability_of_improvement": probability_of_improvement(a, b),
            "p_welch": math.nan, "p_paired": math.nan,
            "p_permutation": (permutation_p_value(a, b, cell_seed(key, seed))
                              if test == "permutation" else math.nan),
        })
    # Welch, paired t and the bootstrap run once per sample shape on stacked
    # cells: the same numbers as cell by cell (scipy draws the resampling
    # indices per shape, so a cell's interval depends on its data and the
    # seed only), a hundred times faster.
    values, baseline_values = merged["values"].tolist(), merged["baseline_values"].tolist()
    for (n_a, n_b), indices in shapes.items():
        if n_a < 2 or n_b < 2:
            continue
        a = np.stack([values[i] for i in indices])
        b = np.stack([baseline_values[i] for i in indices])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            welch = stats.ttest_ind(a, b, axis=-1, equal_var=False).pvalue
            interval = stats.bootstrap(
                (a, b), _mean_difference, n_resamples=n_resamples, method="percentile",
                vectorized=True, axis=-1, rng=np.random.default_rng(seed)).confidence_interval
            matched = [j for j, i in enumerate(indices) if rows[i]["seeds_match"]]
            paired = (stats.ttest_rel(a[matched], b[matched], axis=-1).pvalue
                      if matched and n_a == n_b else [])
        for j, i in enumerate(indices):
            rows[i].update(p_welch=float(welch[j]), delta_low=float(interval.low[j]),
                           delta_high=float(interval.high[j]))
        for j, p in zip(matched, paired):
            rows[indices[j]]["p_paired"] = float(p)
    for row, a, b in zip(rows, values, baseline_values):
        if test in ("paired", "wilcoxon") and row["seeds_match"]:
            row["test"] = "paired t" if test == "paired" else "wilcoxon"
            row["p"] = row["p_paired"] if test == "paired" else wilcoxon_p_value(a, b)
        elif test == "permutation":
            row["test"], row["p"] = "permutation", row["p_permutation"]
        else:  # welch, or a paired test without matching seeds
            row["test"], row["p"] = "welch", row["p_welch"]
    comparisons = pd.DataFrame(rows, columns=_COMPARISON_COLUMNS)
    comparisons["p_adjusted"] = np.nan
    for _, index in comparisons.groupby(GROUP_COLUMNS, sort=False, observed=True).groups.items():
        comparisons.loc[index, "p_adjusted"] = adjusted_p_values(
            comparisons.loc[index, "p"].to_numpy(float), correction)
    comparisons["significant"] = comparisons["p_adjusted"] < alpha
    comparisons["direction"] = np.where(comparisons["significant"],
                                        np.sign(comparisons["delta"]).astype(int), 0)
    return comparisons, comparison_warnings(comparisons, others[orphans.to_numpy()], test)


_COMPARISON_COLUMNS = CELL_COLUMNS + [
    "n_seeds", "baseline_n_seeds", "seeds_match", "mean", "baseline_mean", "delta", "delta_low",
    "delta_high", "cohens_d", "probability_of_improvement", "p_welch", "p_paired",
    "p_permutation", "test", "p"]


def _cell_name(row) -> str:
    aligner = "" if row["aligner"] == vocabulary.NO_ALIGNER else f"/{row['aligner']}"
    return (f"{vocabulary.model_label(row['model'])} {row['task']} {row['strategy']}{aligner}"
            f" {row['language']}")


def comparison_warnings(comparisons: pd.DataFrame, orphans: pd.DataFrame, test: str) -> list[str]:
    """Aggregated warnings: one line per kind, with a count and an example."""
    lines = []
    total = len(comparisons)
    few = comparisons[(comparisons["n_seeds"] < MIN_SEEDS)
                      | (comparisons["baseline_n_seeds"] < MIN_SEEDS)]
    if len(few):
        example = few.iloc[0]
        lines.append(f"{len(few)} of {total} comparisons have fewer than {MIN_SEEDS} seeds on one "
                     f"side (e.g. {_cell_name(example)}: {example['n_seeds']} vs "
                     f"{example['baseline_n_seeds']} baseline seeds)")
    mismatched = comparisons[~comparisons["seeds_match"].astype(bool)]
    if len(mismatched):
        example = mismatched.iloc[0]
        fallback = "; the paired test falls back to Welch there" if test in ("paired", "wilcoxon") else ""
        lines.append(f"{len(mismatched)} of {total} comparisons use different seeds for the "
                     f"strategy and the baseline (e.g. {_cell_name(example)}){fallback}")
    if len(orphans):
        example = orphans.iloc[0]
        lines.append(f"{len(orphans)} strategy cells have no baseline to compare with "
                     f"(e.g. {_cell_name(example)})")
    return lines


def strategy_summaries(comparisons: pd.DataFrame, n_resamples: int = DEFAULT_RESAMPLES,
                       seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Across languages, per (model, task, strategy, aligner, schedule, metric):
    n_languages, mean_delta with a bootstrap 95% interval over languages,
    probability_of_improvement (mean over languages), significantly better
    / worse language counts."""
    columns = GROUP_COLUMNS + ["n_languages", "mean_delta", "mean_delta_low", "mean_delta_high",
                               "probability_of_improvement", "significant_better",
                               "significant_worse"]
    rows = []
    for key, group in comparisons.groupby(GROUP_COLUMNS, sort=False, observed=True):
        deltas = group["delta"].to_numpy(float)
        low, high = mean_interval(deltas, cell_seed(key, seed), n_resamples)
        rows.append((*key, len(group), float(deltas.mean()), low, high,
                     float(group["probability_of_improvement"].mean()),
                     int((group["direction"] > 0).sum()), int((group["direction"] < 0).sum())))
    return pd.DataFrame(rows, columns=columns)
