"""The figures follow their rules: one language order, outliers cut and
labelled, values and marks in the heatmap, titles that fit, vector files."""

from __future__ import annotations

import re

import numpy as np
import pytest

from analysis import plots
from analysis.findings import AnalysisOptions, findings_of
from analysis.results import tidy_frame
from trainables.errors import SpecError
from trainables.languages import PAPER_POS_LANGUAGES

MODEL = "xlm-roberta-base"
SHIFTS = {"baseline": 0.0, "full": 0.01, "front": 0.005, "back": -0.01, "front:2": 0.004}
OUTLIER = 0.46   # th under full realignment: +46 points, the rest within +-2


def outlier_table(languages=PAPER_POS_LANGUAGES):
    """34 PoS languages, 3 seeds, one language 46 points above the rest.

    Rows are listed in reverse language order, so that any order in the
    figures comes from the figures, not from the input."""
    rng = np.random.default_rng(3)
    records = []
    for strategy, shift in SHIFTS.items():
        for index, language in enumerate(reversed(languages + ("en",))):
            level = 0.45 + 0.01 * (index % 10)
            for seed in (1, 2, 3):
                value = level + shift + rng.normal(0, 0.004)
                if language == "th" and strategy == "full":
                    value += OUTLIER
                records.append({"model": MODEL, "task": "pos", "strategy": strategy,
                                "aligner": "none" if strategy == "baseline" else "dico",
                                "schedule": "before", "seed": seed, "language": language,
                                "metric": "accuracy", "value": value, "num_blocks": 12,
                                "is_target": language != "en"})
    return tidy_frame(records, "synthetic")


@pytest.fixture(scope="module")
def findings():
    return findings_of(outlier_table(), AnalysisOptions(n_resamples=200))


@pytest.fixture(scope="module")
def small():
    """Six languages: enough for every figure, quick to save."""
    return findings_of(outlier_table(("af", "de", "fr", "ru", "th", "zh")),
                       AnalysisOptions(n_resamples=200))


def texts(axis) -> list[str]:
    return [text.get_text() for text in axis.texts]


def test_one_language_order_in_every_panel(findings):
    expected = list(PAPER_POS_LANGUAGES)
    assert plots.language_order("pos", reversed(expected)) == expected
    assert plots.language_order("pos", ["zz", "th", "aa", "af"]) == ["af", "th", "aa", "zz"]
    delta = plots.delta_figure(findings, MODEL, "pos")
    panels = [[label.get_text() for label in axis.get_xticklabels()] for axis in delta.axes]
    assert len(panels) == len(SHIFTS) - 1 and all(panel == expected for panel in panels)
    heatmap = plots.heatmap_figure(findings, MODEL, "pos")
    assert [label.get_text() for label in heatmap.axes[0].get_yticklabels()] == expected


def test_an_outlier_is_cut_at_the_edge_and_labelled(findings):
    figure = plots.delta_figure(findings, MODEL, "pos")
    low, high = figure.axes[0].get_ylim()
    # The other 33 bars keep the axis: it spans a few points, not 46.
    assert -5 < low < 0 < high < 5
    full = figure.axes[0]
    [label] = texts(full)
    th = comparisons_of(findings, "full").loc["th", "delta"] * 100
    assert label == plots.signed(th) and th > 40
    cut = [bar for bar in full.patches if bar.get_hatch()]
    assert len(cut) == 1 and cut[0].get_height() == pytest.approx(high)
    assert not any(texts(axis) for axis in figure.axes[1:])
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert legend == ["better (significant)", "worse (significant)", "not significant",
                      "beyond the axis (value written)"]
    caption = plots.caption(findings, MODEL, "pos", "delta")
    assert f"th {th:+.1f} (full)" in caption
    assert "Q1 - 3 IQR, Q3 + 3 IQR" in caption
    assert "not corrected for multiple comparisons" in caption and "Holm-corrected" in caption


def comparisons_of(findings, strategy):
    rows = findings.comparisons
    return rows[rows["strategy"] == strategy].set_index("language")


def test_fences_ignore_one_outlier():
    values = [0.5, 1.0, 1.5, 1.2, 0.8, 46.0]
    low, high = plots.fences(values)
    assert high < 46 and low < 0.5
    assert plots.axis_range(values)[1] < 5
    # identical deltas: the fences keep a minimum width, nothing is "beyond"
    assert plots.fences([1.0, 1.0, 1.0]) == (1.0 - 3 * plots.MIN_IQR, 1.0 + 3 * plots.MIN_IQR)


def test_heatmap_writes_each_value_and_its_marks(findings):
    assert [plots.significance_marks(p, 0.05) for p in (0.2, 0.04, 0.009, 0.0009, np.nan)] == [
        "", "*", "**", "***", ""]
    assert [plots.signed(v) for v in (1.25, -0.04, 0.0, -3.0)] == ["+1.2", "0.0", "0.0", "\u22123.0"]
    figure = plots.heatmap_figure(findings, MODEL, "pos")
    cells = texts(figure.axes[0])
    assert len(cells) == 34 * (len(SHIFTS) - 1)
    full = comparisons_of(findings, "full")
    column = [c for c in cells][0::len(SHIFTS) - 1]      # row-major: the first column is full
    expected = [plots.signed(full.loc[language, "delta"] * 100)
                + plots.significance_marks(full.loc[language, "p_adjusted"], 0.05)
                for language in PAPER_POS_LANGUAGES]
    assert column == expected
    assert any(cell.endswith("*") for cell in cells)
    # the colour scale is not stretched by th: it saturates there
    limit = figure.axes[0].collections[0].norm.vmax
    assert limit < 5
    [note] = [t.get_text() for t in figure.texts if "corrected p" in t.get_text()]
    assert "* / ** / ***: corrected p < 0.05 / 0.01 / 0.001" in note.replace("\n", " ")


def test_titles_fit_and_name_the_aligner_and_schedule(findings, small):
    kinds = []
    for model, task, kind, figure in [*plots.figures(findings), *plots.figures(small)]:
        kinds.append(kind)
        renderer = figure.canvas.get_renderer()
        title = figure._suptitle
        assert "aligner dico; schedule before" in title.get_text().replace("\n", " ")
        assert title.get_window_extent(renderer).width <= figure.bbox.width
        plots.svg_text(figure)       # closes it
    assert kinds == ["delta", "heatmap", "depth"] * 2


def test_inline_svgs_never_share_an_id(small):
    first = plots.svg_text(plots.delta_figure(small, MODEL, "pos"), "f1-")
    second = plots.svg_text(plots.heatmap_figure(small, MODEL, "pos"), "f2-")
    assert first.startswith("<svg") and second.startswith("<svg")
    for prefix, svg in (("f1-", first), ("f2-", second)):
        ids = re.findall(r'\bid="([^"]+)"', svg)
        assert ids and all(name.startswith(prefix) for name in ids)
        references = re.findall(r'(?:href="#|url\(#)([^")]+)', svg)
        assert references and set(references) <= set(ids)
    assert not set(re.findall(r'\bid="([^"]+)"', first)) & set(re.findall(r'\bid="([^"]+)"', second))


@pytest.mark.slow
def test_write_figures_gives_pdf_svg_and_captions(small, tmp_path):
    written = plots.write_figures(small, tmp_path / "figures")
    names = sorted(path.name for path in written)
    stems = [f"{MODEL}_pos_{kind}" for kind in ("delta", "depth", "heatmap")]
    assert names == sorted([f"{s}.{x}" for s in stems for x in ("pdf", "svg")] + ["captions.md"])
    for stem in stems:
        assert (tmp_path / "figures" / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
        assert "<svg" in (tmp_path / "figures" / f"{stem}.svg").read_text()
    captions = (tmp_path / "figures" / "captions.md").read_text()
    assert [line[3:] for line in captions.splitlines() if line.startswith("## ")] == [
        f"{MODEL}_pos_{kind}" for kind in ("delta", "heatmap", "depth")]


def test_figures_directory_must_be_a_directory(small, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("")
    with pytest.raises(SpecError, match="exists and is not a directory"):
        plots.write_figures(small, taken)
