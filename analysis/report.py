"""The HTML report: tables, warnings and figures in one self-contained file.

Figures are inline SVG (vectors: sharp at any zoom, text searchable), so the
file opens in a browser alone, copied anywhere, with no directory of images
beside it. A table of contents at the top links every section and figure.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone

from analysis import plots, tables, vocabulary
from analysis.findings import Findings
from analysis.results import TrialIssue
from analysis.search_tables import html_search_tables

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em;
       color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { padding: 0.2em 0.6em; border-bottom: 1px solid #ddd; text-align: left; }
thead th { border-bottom: 2px solid #444; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.break td { border-top: 2px solid #888; }
p.note { font-size: 0.85em; color: #555; margin: 0.2em 0; }
.warning { background: #fff4e5; border-left: 4px solid #f0a020; padding: 0.4em 0.8em; }
.scroll { overflow-x: auto; }
nav ol { margin: 0.2em 0; } nav li { margin: 0.1em 0; }
figure { margin: 1.5em 0; }
figure svg, figure img { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 0.85em; color: #444; max-width: 60em; margin-top: 0.4em; }
"""


def slug(text: str) -> str:
    """An id for an anchor: lower case letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _issues_html(errored: list[TrialIssue], missing: list[TrialIssue]) -> str:
    parts = []
    for title, issues in (("Errored trials", errored), ("Missing trials", missing)):
        if issues:
            items = "".join(
                f"<li><code>{html.escape(i.trial_id)}</code> {html.escape(i.description)}"
                f"{': ' + html.escape(i.error) if i.error else ''}</li>" for i in issues)
            parts.append(f'<div class="warning"><b>{title}: {len(issues)}</b>'
                         f"<ul>{items}</ul></div>")
    return "\n".join(parts)


def _selection_text(findings: Findings) -> str:
    """Which realigned rows the analysis kept: the aligner(s) and schedule(s)."""
    realigned = findings.table[findings.table["strategy"] != vocabulary.BASELINE]
    if realigned.empty:
        return "Only fine-tuning-only (baseline) results were analysed."
    aligners = ", ".join(sorted(realigned["aligner"].unique()))
    schedules = ", ".join(sorted(realigned["schedule"].unique()))
    return (f"Realigned results analysed: aligner {aligners}; schedule {schedules} "
            f"(choose with --aligner and --schedule).")


class _Page:
    """The body's sections and the table of contents that links them."""

    def __init__(self):
        self.body: list[str] = []
        self.contents: list[tuple[int, str, str]] = []   # (level, id, text)
        self._ids: set[str] = set()

    def anchor(self, text: str, level: int = 1, prefix: str = "") -> str:
        base = slug(prefix + text)
        name, number = base, 2
        while name in self._ids:
            name, number = f"{base}-{number}", number + 1
        self._ids.add(name)
        self.contents.append((level, name, text))
        return name

    def section(self, title: str, content: str, heading: bool = True) -> None:
        """A top-level section; ``heading=False`` when content brings its own <h2>."""
        name = self.anchor(title)
        head = f"<h2>{html.escape(title)}</h2>\n" if heading else ""
        self.body.append(f'<section id="{name}">\n{head}{content}\n</section>')

    def contents_html(self) -> str:
        out, level = ["<ol>"], 1
        for index, (depth, name, text) in enumerate(self.contents):
            while level < depth:
                out.append("<ol>")
                level += 1
            while level > depth:
                out.append("</ol></li>")
                level -= 1
            following = self.contents[index + 1][0] if index + 1 < len(self.contents) else 1
            link = f'<li><a href="#{name}">{html.escape(text)}</a>'
            out.append(link if following > depth else link + "</li>")
        while level > 1:
            out.append("</ol></li>")
            level -= 1
        out.append("</ol>")
        return '<nav id="contents"><h2>Contents</h2>' + "".join(out) + "</nav>"


def _figures(page: _Page, findings: Findings) -> None:
    name = page.anchor("Figures")
    parts, current = [f'<section id="{name}">\n<h2>Figures</h2>'], None
    for number, (model, task, kind, figure) in enumerate(plots.figures(findings), 1):
        if (model, task) != current:
            if current is not None:
                parts.append("</section>")
            current = (model, task)
            title = f"{vocabulary.model_label(model)}, {vocabulary.task_label(task)}"
            parts.append(f'<section id="{page.anchor(title, 2, "figures-")}">'
                         f"<h3>{html.escape(title)}</h3>")
        label = {"delta": "Delta vs fine-tuning only, per language",
                 "heatmap": "Heatmap of the deltas", "depth": "Against frozen depth",
                 "window": "Frozen windows"}[kind]
        figure_id = page.anchor(f"Figure {number}: {label}", 3, f"{model}-{task}-")
        alt = (f"{label}: {vocabulary.model_label(model)}, {vocabulary.task_label(task)}, "
               f"{plots.variant(findings, model, task)}")
        svg = plots.svg_text(figure, prefix=f"f{number}-")
        svg = svg.replace("<svg ", f'<svg role="img" aria-label="{html.escape(alt)}" ', 1)
        parts.append(f'<figure id="{figure_id}">\n{svg}\n<figcaption><b>Figure {number}.</b> '
                     f"{html.escape(plots.caption(findings, model, task, kind))}</figcaption>"
                     f"</figure>")
    if current is not None:
        parts.append("</section>")
    parts.append("</section>")
    page.body.append("\n".join(parts))


def html_report(findings: Findings, sources: list[str] | None = None,
                errored: list[TrialIssue] | None = None, missing: list[TrialIssue] | None = None,
                notes: list[str] | None = None, with_figures: bool = True) -> str:
    """The whole report as one HTML document."""
    options = findings.options
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    source_list = "".join(f"<li><code>{html.escape(str(s))}</code></li>" for s in sources or [])
    option_text = (f"k = {options.k:g}, round first: {'yes' if options.round_first else 'no'}, "
                   f"test: {options.test}, correction: {options.correction}, alpha: "
                   f"{options.alpha:g}, bootstrap resamples: {options.n_resamples}, "
                   f"seed: {options.seed}")
    page = _Page()
    page.section("Overview", f"<p>Created {created}. Options: {html.escape(option_text)}.</p>\n"
                             f"<p>{html.escape(_selection_text(findings))}</p>\n"
                             + (f"<p>Sources:</p><ul>{source_list}</ul>" if source_list else ""))
    warnings = _issues_html(errored or [], missing or []) + "".join(
        f'<p class="warning">{html.escape(w)}</p>' for w in (notes or []) + findings.warnings)
    if warnings:
        page.section("Warnings", warnings)
    for table in tables.display_tables(findings):
        page.section(table.title, f'<div class="scroll">{tables.html_table(table)}</div>',
                     heading=False)
    search = html_search_tables([str(s) for s in sources or []])
    if search:
        page.section("Depth search", search, heading=False)
    if with_figures:
        _figures(page, findings)
    page.section("Per-language comparisons",
                 "<details><summary>Per-language comparisons</summary>"
                 f'<div class="scroll">{tables.html_table(tables.language_table(findings))}'
                 "</div></details>", heading=False)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>AlignFreeze analysis</title>"
            f"<style>{_STYLE}</style></head>\n<body>\n<h1>AlignFreeze analysis</h1>\n"
            + page.contents_html() + "\n" + "\n".join(page.body) + "\n</body>\n</html>\n")
