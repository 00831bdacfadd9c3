"""Golden tests of the tests: corrections, p-values, intervals, warnings."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from analysis import significance
from analysis.results import tidy_frame


def test_holm_known_values():
    # Sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04,
    # then the running maximum: 0.02, 0.03, 0.06, 0.06.
    adjusted = significance.holm_adjusted([0.01, 0.04, 0.03, 0.005])
    assert adjusted.tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_keeps_nan():
    # Two valid p-values (NaN is not a test): 0.4 x 2 = 0.8; 0.5 x 1 lifted to 0.8.
    adjusted = significance.holm_adjusted([0.5, np.nan, 0.4])
    assert adjusted[[0, 2]].tolist() == pytest.approx([0.8, 0.8]) and np.isnan(adjusted[1])
    assert significance.holm_adjusted([0.6, 0.7]).tolist() == [1.0, 1.0]


def test_benjamini_hochberg_known_values():
    # Sorted 0.005, 0.01, 0.03, 0.04 -> x4/1, x4/2, x4/3, x4/4 = 0.02, 0.02, 0.04, 0.04.
    adjusted = significance.benjamini_hochberg_adjusted([0.01, 0.04, 0.03, 0.005])
    assert adjusted.tolist() == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_benjamini_hochberg_matches_scipy():
    p = np.random.default_rng(1).uniform(0, 0.2, size=34)
    assert significance.benjamini_hochberg_adjusted(p) == pytest.approx(
        stats.false_discovery_control(p, method="bh"))


def test_holm_matches_a_direct_implementation():
    p = np.random.default_rng(2).uniform(0, 0.1, size=12)
    order = np.argsort(p)
    expected = np.empty_like(p)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[index]))
        expected[index] = running
    assert significance.holm_adjusted(p) == pytest.approx(expected)


def test_unknown_correction():
    with pytest.raises(ValueError, match="unknown correction"):
        significance.adjusted_p_values([0.1], "bonferonni")


A = [0.71, 0.73, 0.72, 0.74, 0.70]
B = [0.69, 0.70, 0.68, 0.71, 0.69]


def test_tests_match_scipy():
    assert significance.welch_p_value(A, B) == pytest.approx(
        stats.ttest_ind(A, B, equal_var=False).pvalue)
    assert significance.paired_t_p_value(A, B) == pytest.approx(stats.ttest_rel(A, B).pvalue)
    assert significance.wilcoxon_p_value(A, B) == pytest.approx(0.0625)  # exact, n = 5
    # Exact permutation test: every one of the C(10, 5) = 252 relabellings.
    a, b = np.array(A), np.array(B)
    pooled = np.concatenate([a, b])
    observed = abs(a.mean() - b.mean())
    from itertools import combinations
    extreme = sum(abs(pooled[list(c)].mean() - np.delete(pooled, list(c)).mean()) >= observed - 1e-12
                  for c in combinations(range(10), 5))
    assert significance.permutation_p_value(A, B) == pytest.approx(extreme / 252)


def test_degenerate_samples_give_nan_not_errors():
    assert np.isnan(significance.welch_p_value([0.5], [0.4, 0.6]))
    assert np.isnan(significance.welch_p_value([0.5, 0.5], [0.5, 0.5]))
    assert significance.wilcoxon_p_value([0.5, 0.5], [0.5, 0.5]) == 1.0
    assert np.isnan(significance.cohens_d([0.5, 0.5], [0.5, 0.5]))


def test_cohens_d_and_probability_of_improvement():
    assert significance.cohens_d([1, 2, 3], [0, 1, 2]) == pytest.approx(1.0)
    assert significance.probability_of_improvement([2, 3], [1, 2]) == pytest.approx(
        (1 + 0.5 + 1 + 1) / 4)


def test_bootstrap_is_deterministic_and_brackets_the_estimate():
    first = significance.difference_interval(A, B, seed=7)
    assert first == significance.difference_interval(A, B, seed=7)
    assert first[0] < np.mean(A) - np.mean(B) < first[1]
    assert significance.difference_interval([0.5, 0.5], [0.4, 0.4], seed=1) == pytest.approx(
        (0.1, 0.1))
    assert np.isnan(significance.mean_interval([0.5], seed=1)[0])


def test_bootstrap_interval_covers_the_true_mean_about_95_percent():
    # N(0, 1) samples of 40: the percentile interval should cover 0 about 95% of
    # the time (a little less for the percentile method at this size).
    rng = np.random.default_rng(123)
    hits = sum(
        lo <= 0.0 <= hi for lo, hi in (
            significance.mean_interval(rng.normal(size=40), seed=i, n_resamples=1000)
            for i in range(300)))
    assert 0.89 <= hits / 300 <= 0.98


def test_difference_interval_covers_the_true_difference():
    rng = np.random.default_rng(321)
    hits = 0
    for i in range(200):
        lo, hi = significance.difference_interval(rng.normal(1.0, 1.0, 30),
                                                  rng.normal(0.0, 2.0, 30), seed=i,
                                                  n_resamples=1000)
        hits += lo <= 1.0 <= hi
    assert 0.88 <= hits / 200 <= 0.98


def frame(rows):
    records = [{"model": "m", "task": "nli", "strategy": s, "aligner": "dico", "seed": seed,
                "language": lang, "metric": "accuracy", "value": v}
               for s, lang, seeds, values in rows for seed, v in zip(seeds, values)]
    return tidy_frame(records, "test")


def test_language_comparisons_correct_across_languages():
    rows = [("baseline", "de", range(5), B), ("baseline", "fr", range(5), B),
            ("front", "de", range(5), A), ("front", "fr", range(5), B[::-1])]
    comparisons, warnings = significance.language_comparisons(frame(rows))
    comparisons = comparisons.set_index("language")
    p = [stats.ttest_ind(A, B, equal_var=False).pvalue,
         stats.ttest_ind(B[::-1], B, equal_var=False).pvalue]
    assert comparisons.loc[["de", "fr"], "p_welch"].tolist() == pytest.approx(p)
    assert comparisons.loc[["de", "fr"], "p_adjusted"].tolist() == pytest.approx(
        significance.holm_adjusted(p))
    assert comparisons.loc["de", "p_paired"] == pytest.approx(stats.ttest_rel(A, B).pvalue)
    assert comparisons.loc["de", "direction"] == 1 and comparisons.loc["fr", "direction"] == 0
    assert comparisons.loc["de", "delta"] == pytest.approx(np.mean(A) - np.mean(B))
    assert warnings == []
    summary = significance.strategy_summaries(comparisons.reset_index())
    assert summary["significant_better"].iloc[0] == 1
    assert summary["mean_delta"].iloc[0] == pytest.approx((np.mean(A) - np.mean(B)) / 2)


def test_paired_test_falls_back_to_welch_and_warnings_are_aggregated():
    rows = [("baseline", "de", [1, 2, 3], A[:3]), ("front", "de", [1, 2, 4], B[:3]),
            ("baseline", "fr", [1, 2], A[:2]), ("front", "fr", [1, 2], B[:2]),
            ("back", "ru", [1, 2, 3], A[:3])]
    comparisons, warnings = significance.language_comparisons(frame(rows), test="paired")
    tests = comparisons.set_index("language")["test"].to_dict()
    assert tests == {"de": "welch", "fr": "paired t"}
    assert len(warnings) == 3
    assert warnings[0].startswith("1 of 2 comparisons have fewer than 3 seeds")
    assert warnings[1].startswith("1 of 2 comparisons use different seeds")
    assert "falls back to Welch" in warnings[1]
    assert warnings[2].startswith("1 strategy cells have no baseline")


def test_permutation_option_uses_permutation_p_values():
    rows = [("baseline", "de", range(5), B), ("full", "de", range(5), A)]
    comparisons, _ = significance.language_comparisons(frame(rows), test="permutation")
    assert comparisons["test"].tolist() == ["permutation"]
    assert comparisons["p"].iloc[0] == pytest.approx(significance.permutation_p_value(A, B))


def test_unknown_test():
    with pytest.raises(ValueError, match="unknown test"):
        significance.language_comparisons(frame([]), test="students")


def test_stacked_cells_give_the_cell_by_cell_numbers():
    rng = np.random.default_rng(9)
    rows = [("baseline", lang, range(5), rng.normal(0.5, 0.02, 5)) for lang in "abc"]
    rows += [("full", lang, range(5), rng.normal(0.52, 0.02, 5)) for lang in "abc"]
    rows += [("full", "d", range(4), rng.normal(0.5, 0.02, 4)),
             ("baseline", "d", range(4), rng.normal(0.5, 0.02, 4))]
    data = frame(rows)
    comparisons, _ = significance.language_comparisons(data, seed=3)
    for row in comparisons.itertuples(index=False):
        a = data[(data["strategy"] == "full") & (data["language"] == row.language)]["value"]
        b = data[(data["strategy"] == "baseline") & (data["language"] == row.language)]["value"]
        assert (row.delta_low, row.delta_high) == pytest.approx(
            significance.difference_interval(a.to_numpy(), b.to_numpy(), seed=3))
        assert row.p_welch == pytest.approx(significance.welch_p_value(a, b))
        assert row.p_paired == pytest.approx(significance.paired_t_p_value(a, b))
    # A cell's interval does not depend on which other cells were loaded.
    alone, _ = significance.language_comparisons(data[data["language"] == "b"], seed=3)
    both = comparisons.set_index("language").loc["b"]
    assert (alone["delta_low"].item(), alone["delta_high"].item()) == (both["delta_low"],
                                                                       both["delta_high"])
