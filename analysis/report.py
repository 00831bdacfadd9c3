"""The HTML report: tables, warnings and figures in one self-contained file.

Figures are embedded as base64 PNGs, so the file opens in a browser alone,
copied anywhere, with no directory of images beside it.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone

from analysis import plots, tables, vocabulary
from analysis.findings import Findings
from analysis.results import TrialIssue
from analysis.search_tables import html_search_tables

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { padding: 0.2em 0.6em; border-bottom: 1px solid #ddd; text-align: left; }
thead th { border-bottom: 2px solid #444; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.break td { border-top: 2px solid #888; }
p.note { font-size: 0.85em; color: #555; margin: 0.2em 0; }
.warning { background: #fff4e5; border-left: 4px solid #f0a020; padding: 0.4em 0.8em; }
figure { margin: 1em 0; } img { max-width: 100%; }
"""


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
    warnings = "".join(f'<p class="warning">{html.escape(w)}</p>'
                       for w in (notes or []) + findings.warnings)
    body = ["<h1>AlignFreeze analysis</h1>",
            f"<p>Created {created}. Options: {html.escape(option_text)}.</p>",
            f"<p>Sources:</p><ul>{source_list}</ul>" if source_list else "",
            _issues_html(errored or [], missing or []), warnings]
    body += [tables.html_table(t) for t in tables.display_tables(findings)]
    body.append(html_search_tables([str(s) for s in sources or []]))
    if with_figures:
        body.append("<h2>Figures</h2>")
        current = None
        for model, task, kind, figure in plots.figures(findings):
            if (model, task) != current:
                current = (model, task)
                body.append(f"<h3>{html.escape(vocabulary.model_label(model))}, "
                            f"{html.escape(vocabulary.task_label(task))}</h3>")
            alt = f"{kind} figure for {model} {task}"
            body.append(f'<figure><img alt="{html.escape(alt)}" src="{plots.data_uri(figure)}">'
                        f"</figure>")
    body.append("<details><summary>Per-language comparisons</summary>"
                + tables.html_table(tables.language_table(findings)) + "</details>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">"
            "<title>AlignFreeze analysis</title>"
            f"<style>{_STYLE}</style></head>\n<body>\n" + "\n".join(p for p in body if p)
            + "\n</body>\n</html>\n")
