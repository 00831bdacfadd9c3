"""The depth search's tables: validation and test per setting, the chosen one marked.

``format_study`` renders one study summary (``DIR/search/*.json``, written
by ``orchestrator.search_summary``): ``alignfreeze search`` prints it at
the end, and ``alignfreeze analyze`` on a search directory prints the same
(``search_tables``; ``html_search_tables`` for the report). Plain data in,
text out: no pandas, no plotting.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

SEARCH_DIR = "search"


def frozen_blocks(row: dict[str, Any], num_blocks: int) -> str:
    """What a setting freezes, in words: ``none``, ``front 2/4``, ``blocks 1-2/4`` (0-based, inclusive)."""
    if row["depth"] == 0:
        return "none"
    if row["side"] == "window":
        return f"blocks {row['start']}-{row['start'] + row['depth'] - 1}/{num_blocks}"
    return f"{row['side']} {row['depth']}/{num_blocks}"


def _cell(scores: dict[str, Any] | None) -> str:
    if not scores:
        return f"{'-':>6} {'':>5}"
    return f"{100 * scores['mean']:>6.1f} {100 * scores['std']:>5.1f}"


def format_study(summary: dict[str, Any]) -> str:
    """A terminal table of one study: settings best on validation first, the baseline last."""
    lines = [f"{summary['study']}: {summary['metric']} x100, mean +- std over seeds; "
             f"{len(summary['evaluated'])} of {len(summary['space'])} settings evaluated",
             f"  val: {summary['objective']}, {summary.get('objective_text', '')}; the chosen setting (*) is "
             f"the best on it", "  test: the target average on the test sets, reported, never chosen on"]
    lines.append(f"{'rank':>4}  {'strategy':<10} {'frozen blocks':<14} {'val':>6} {'std':>5}  "
                 f"{'test':>6} {'std':>5}  seeds")
    for rank, row in enumerate(summary["evaluated"], 1):
        mark = "*" if row.get("chosen") else " "
        lines.append(f"{rank:>3}{mark}  {row['strategy']:<10} {frozen_blocks(row, summary['num_blocks']):<14} "
                     f"{_cell(row['validation'])}  {_cell(row['test'])}  {row['seeds']}")
    if summary["baseline"]:
        base = summary["baseline"]
        seeds = len((base.get("test") or base.get("validation") or {}).get("seed_values", []))
        lines.append(f"{'':>4}  {'baseline':<10} {'(no realign)':<14} {_cell(base['validation'])}  "
                     f"{_cell(base['test'])}  {seeds}")
    for strategy in summary["failed"]:
        lines.append(f"{'':>4}  {strategy:<10} failed (see errors/)")
    return "\n".join(lines)


def search_summaries(directory: str | Path) -> list[dict[str, Any]]:
    """The study summaries of a search's results directory (none for a grid's)."""
    folder = Path(directory) / SEARCH_DIR
    if not folder.is_dir():
        return []
    summaries = []
    for path in sorted(folder.glob("*.json")):
        try:        # a damaged summary is status's to name; the tables skip it
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (isinstance(summary, dict) and isinstance(summary.get("evaluated"), list)
                and all(isinstance(row, dict) and "validation" in row for row in summary["evaluated"])):
            try:
                format_study(summary)
            except (KeyError, TypeError, ValueError):
                continue
            summaries.append(summary)
    return summaries


def search_tables(sources: list[str]) -> str:
    """Every search study of the sources, one table each, after a heading; '' when none."""
    summaries = [s for source in sources if Path(source).is_dir() for s in search_summaries(source)]
    if not summaries:
        return ""
    return "\nDepth search: the chosen setting (*) is the best on validation; report its test score\n\n" + \
        "\n\n".join(format_study(summary) for summary in summaries) + "\n"


def html_search_tables(sources: list[str]) -> str:
    text = search_tables(sources)
    return f"<h2>Depth search</h2><pre>{html.escape(text.strip())}</pre>" if text else ""
