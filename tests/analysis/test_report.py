"""The HTML report: a table of contents whose links all land, inline SVG
figures with captions, ids unique across the page."""

from __future__ import annotations

import html.parser
import re

import pytest

from analysis.findings import AnalysisOptions, findings_of
from analysis.report import html_report, slug
from analysis.results import TrialIssue
from test_plots import MODEL, outlier_table


class Page(html.parser.HTMLParser):
    """Ids, links, the contents' links and each figure's parts."""

    def __init__(self):
        super().__init__()
        self.ids, self.links, self.contents, self.figures = [], [], [], []
        self.images, self._in_nav, self._caption = [], False, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "nav":
            self._in_nav = True
        if tag == "a" and attrs.get("href", "").startswith("#"):
            (self.contents if self._in_nav else self.links).append(attrs["href"][1:])
        if tag == "figure":
            self.figures.append({"id": attrs.get("id"), "svg": None, "caption": ""})
        if tag == "svg" and self.figures and self.figures[-1]["svg"] is None:
            self.figures[-1]["svg"] = attrs
        if tag == "figcaption":
            self._caption = ""
        if tag == "img":
            self.images.append(attrs)

    def handle_endtag(self, tag):
        if tag == "nav":
            self._in_nav = False
        if tag == "figcaption":
            self.figures[-1]["caption"], self._caption = self._caption, None

    def handle_data(self, data):
        if self._caption is not None:
            self._caption += data


@pytest.fixture(scope="module")
def report():
    findings = findings_of(outlier_table(("af", "de", "fr", "ru", "th", "zh")),
                           AnalysisOptions(n_resamples=200))
    errored = [TrialIssue("t9", "error", "xlm-roberta-base pos full seed 4", "out of memory")]
    return html_report(findings, ["run/"], errored, [], ["a loader note"])


def test_contents_link_every_section_and_figure(report):
    page = Page()
    page.feed(report)
    assert page.contents[:2] == ["overview", "warnings"]
    assert set(page.contents) <= set(page.ids)           # every entry lands somewhere
    assert len(page.ids) == len(set(page.ids))            # no id twice, svgs' own included
    sections = re.findall(r'<section id="([^"]+)"', report)
    assert sections and set(sections) <= set(page.contents)
    assert [f["id"] for f in page.figures] == [c for c in page.contents if c in
                                               {f["id"] for f in page.figures}]
    assert "figures" in page.contents and "per-language-comparisons" in page.contents
    assert slug("XLM-R, PoS") == "xlm-r-pos"


def test_figures_are_inline_svg_with_captions(report):
    page = Page()
    page.feed(report)
    assert not page.images and "data:image/png" not in report
    assert len(page.figures) == 3     # delta, heatmap, depth
    for number, figure in enumerate(page.figures, 1):
        assert figure["svg"] is not None
        assert "aligner dico; schedule before" in figure["svg"]["aria-label"]
        assert figure["caption"].startswith(f"Figure {number}. ")
    assert "not corrected for multiple comparisons" in page.figures[0]["caption"]
    assert "th +" in page.figures[0]["caption"]          # the bar cut at the axis, named
    assert len([i for i in page.ids if re.match(r"f\d+-", i)]) > 100   # the svgs' own, prefixed
    assert "<?xml" not in report and "<!DOCTYPE svg" not in report


def test_overview_names_the_analysed_aligner_and_the_warnings(report):
    assert ("Realigned results analysed: aligner dico; schedule before (choose with --aligner "
            "and --schedule).") in report
    assert "Errored trials: 1" in report and "out of memory" in report
    assert "a loader note" in report
    assert f"<code>{MODEL}</code>" not in report
