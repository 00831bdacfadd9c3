"""Golden tests of the paper's numbers on small hand-built tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import statistics
from analysis.results import tidy_frame


def table(cells: dict[tuple[str, str], list[float]], task: str = "pos", seeds=None) -> pd.DataFrame:
    """{(strategy, language): [value per seed]} -> tidy table."""
    records = []
    for (strategy, language), values in cells.items():
        for index, value in enumerate(values):
            records.append({"model": "m", "task": task, "strategy": strategy,
                            "aligner": "" if strategy == "baseline" else "dico",
                            "seed": (seeds or {}).get(strategy, range(100))[index],
                            "language": language, "metric": "accuracy", "value": value})
    return tidy_frame(records, "test")


def test_mean_and_population_std_per_cell():
    cells = statistics.cell_statistics(table({("baseline", "de"): [0.5, 0.75, 1.0, 0.25]}))
    row = cells.iloc[0]
    assert row["mean"] == pytest.approx(0.625)
    # ddof=0: sqrt(mean of squared deviations) = sqrt((1/64 + 1/64 + 9/64 + 9/64) / 4)
    assert row["std"] == pytest.approx(np.sqrt(20 / 64 / 4))
    assert row["std"] != pytest.approx(np.std([0.5, 0.75, 1.0, 0.25], ddof=1))
    assert row["n_seeds"] == 4 and row["seeds"] == (0, 1, 2, 3)


def test_average_over_targets_excludes_english():
    frame = table({("full", "de"): [0.5, 0.7], ("full", "fr"): [0.9, 0.9],
                   ("full", "en"): [0.1, 0.1]})
    averages = statistics.target_averages(statistics.cell_statistics(frame))
    assert averages["average"].iloc[0] == pytest.approx((0.6 + 0.9) / 2)
    assert averages["n_languages"].iloc[0] == 2


# Baseline: mean 0.5, std 0.25 (values 0.25, 0.75: exact in binary).
BASE = [0.25, 0.75]


@pytest.mark.parametrize("values, expected", [
    ([0.75, 0.75], 0),     # exactly one std above: not "more than"
    ([0.25, 0.25], 0),     # exactly one std below
    ([0.75, 0.8125], 1),   # above by more than one std
    ([0.1875, 0.25], -1),  # below by more than one std
    ([0.5, 0.5], 0),
])
def test_count_at_the_boundary(values, expected):
    frame = table({("baseline", "de"): BASE, ("front", "de"): values})
    verdicts = statistics.language_verdicts(statistics.cell_statistics(frame))
    assert verdicts["verdict"].tolist() == [expected]


def test_boundary_survives_float_noise():
    # 0.3 - 0.2 is 0.09999999999999998 in floating point, the std 0.1 exactly-ish:
    # the rule must call this "equal", not decide it by rounding noise.
    frame = table({("baseline", "de"): [0.1, 0.3], ("full", "de"): [0.3, 0.3],
                   ("back", "de"): [0.1, 0.1]})
    verdicts = statistics.language_verdicts(statistics.cell_statistics(frame))
    assert verdicts.set_index("strategy")["verdict"].to_dict() == {"full": 0, "back": 0}


def test_k_scales_the_threshold():
    frame = table({("baseline", "de"): BASE, ("full", "de"): [1.0, 1.0]})
    cells = statistics.cell_statistics(frame)
    assert statistics.language_verdicts(cells, k=1)["verdict"].tolist() == [1]
    assert statistics.language_verdicts(cells, k=2)["verdict"].tolist() == [0]   # 0.5 = 2 x 0.25
    assert statistics.language_verdicts(cells, k=1.9)["verdict"].tolist() == [1]


def test_rounding_first_changes_the_verdict_as_printed():
    # Baseline 50.0 +- 1.0, strategy 0.51004 -> 51.0: unrounded 0.01004 > 0.01 is
    # "up"; as printed 51.0 - 50.0 = 1.0 is not more than 1.0.
    frame = table({("baseline", "de"): [0.49, 0.51], ("full", "de"): [0.51004, 0.51004]})
    cells = statistics.cell_statistics(frame)
    assert statistics.language_verdicts(cells)["verdict"].tolist() == [1]
    assert statistics.language_verdicts(cells, round_first=True)["verdict"].tolist() == [0]
    # The other way: baseline mean 0.5004 (50.0), std 0.0104 (1.0); strategy
    # 0.5106 (51.1): unrounded 0.0102 < 0.0104, printed 1.1 > 1.0.
    frame = table({("baseline", "de"): [0.49, 0.5108], ("full", "de"): [0.5106, 0.5106]})
    cells = statistics.cell_statistics(frame)
    assert statistics.language_verdicts(cells)["verdict"].tolist() == [0]
    assert statistics.language_verdicts(cells, round_first=True)["verdict"].tolist() == [1]


def test_rounded_percent_matches_printed_values():
    assert statistics.rounded_percent([0.77649, 0.7765001, 0.12345]).tolist() == [77.6, 77.7, 12.3]


def test_counts_per_group():
    frame = table({("baseline", "de"): BASE, ("baseline", "fr"): BASE, ("baseline", "ru"): BASE,
                   ("full", "de"): [1.0, 1.0], ("full", "fr"): [0.0, 0.0],
                   ("full", "ru"): [0.5, 0.5]})
    counts = statistics.paper_counts(statistics.language_verdicts(
        statistics.cell_statistics(frame)))
    row = counts.iloc[0]
    assert (row["strategy"], row["down"], row["up"], row["n_compared"]) == ("full", 1, 1, 3)


def test_cells_without_baseline_are_not_compared():
    frame = table({("baseline", "de"): BASE, ("full", "de"): [1.0, 1.0], ("full", "fr"): [1.0]})
    verdicts = statistics.language_verdicts(statistics.cell_statistics(frame))
    assert verdicts["language"].tolist() == ["de"]


def test_seed_averages():
    frame = table({("full", "de"): [0.2, 0.4], ("full", "fr"): [0.6, 0.8],
                   ("full", "en"): [1.0, 1.0]})
    averages = statistics.seed_averages(frame).sort_values("seed")
    assert averages["average"].tolist() == pytest.approx([0.4, 0.6])
