"""The ``alignfreeze analyze``, ``alignfreeze import-reference`` and ``alignfreeze export`` commands.

The orchestrator's CLI owns argparse and calls ``add_*_arguments`` /
``run_*``. User errors are raised as AlignFreezeError (the CLI prints the
one-line message and exits 2); warnings go to stderr, aggregated.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis import reference, significance, tables
from analysis.findings import AnalysisOptions, findings_of
from analysis.results import (
    LoadedResults,
    TrialIssue,
    sources_results,
    write_table,
    write_text,
)
from analysis.search_tables import search_tables
from orchestrator.results import check_output_file
from trainables.errors import DataError, SpecError, short

_SHOWN_ISSUES = 5


def add_analyze_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="a run directory (alignfreeze run --output), a tidy .csv/.parquet, "
                             "an authors' CSV or a directory of them, or 'reference' for the "
                             "paper's own results shipped with alignfreeze")
    parser.add_argument("--format", choices=tables.FORMATS, default=None,
                        help="output format (default: from --out's extension, else table)")
    parser.add_argument("--out", type=Path, default=None, metavar="PATH",
                        help="write the output to PATH instead of the terminal (html needs it)")
    parser.add_argument("--k", type=float, default=1.0,
                        help="the paper's count: better/worse by more than k x the baseline's "
                             "std over seeds (default 1)")
    parser.add_argument("--round", action="store_true", dest="round_first",
                        help="round means and std to one decimal (x100) before counting, as "
                             "the authors' tables did")
    parser.add_argument("--test", choices=significance.TESTS, default="welch",
                        help="per-language test against the baseline (default welch; paired "
                             "and wilcoxon need matching seeds, else Welch)")
    parser.add_argument("--correction", choices=significance.CORRECTIONS, default="holm",
                        help="p-value correction across languages (default holm)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (0.05)")
    parser.add_argument("--aligner", default=None,
                        help="realignment aligner to analyse (default dico where present, else "
                             "all; 'all' keeps every aligner as its own row)")
    parser.add_argument("--schedule", default="before", choices=("before", "during", "all"),
                        help="realignment schedule (default before: the paper's table)")
    parser.add_argument("--metric", default=None,
                        help="metric to analyse (default: each task's primary metric)")
    parser.add_argument("--bootstrap", type=int, default=significance.DEFAULT_RESAMPLES,
                        dest="n_resamples", help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=int, default=significance.DEFAULT_SEED,
                        help="bootstrap seed (default 0)")
    parser.add_argument("--per-language", action="store_true",
                        help="also the per-language tables: mean +- std per language and the "
                             "comparisons (csv: one tidy row per strategy x language instead "
                             "of the summary rows; always in html)")
    parser.add_argument("--no-figures", action="store_true", help="html without figures")
    parser.add_argument("--figures", type=Path, default=None, metavar="DIR",
                        help="also write every figure as PDF and SVG files, with captions.md, "
                             "into DIR (any format)")


def output_format(format: str | None, out: Path | None) -> str:
    """The chosen format, else the one --out's extension names, else table."""
    if format is not None:
        if format not in tables.FORMATS:
            raise SpecError(f"unknown format {format!r} (expected {', '.join(tables.FORMATS)})")
        return format
    if out is not None:
        suffix = out.suffix.lower()
        if suffix not in tables.EXTENSIONS:
            raise SpecError(f"cannot tell the format from {out.name!r}; use --format "
                            f"{'|'.join(tables.FORMATS)}")
        return tables.EXTENSIONS[suffix]
    return "table"


def issue_lines(errored: list[TrialIssue], missing: list[TrialIssue]) -> list[str]:
    """Errored and missing trials, a few named and the rest counted."""
    lines = []
    for kind, issues in (("errored", errored), ("missing", missing)):
        if not issues:
            continue
        lines.append(f"warning: {len(issues)} {kind} trial(s), not in the analysis:")
        for issue in issues[:_SHOWN_ISSUES]:
            detail = f": {issue.error}" if issue.error else ""
            lines.append(f"  {issue.trial_id} ({issue.description}){detail}")
        if len(issues) > _SHOWN_ISSUES:
            lines.append(f"  ... and {len(issues) - _SHOWN_ISSUES} more")
    return lines


def _stderr(lines: list[str]) -> None:
    for line in lines:
        print(line, file=sys.stderr)


def run_analyze(args: argparse.Namespace) -> int:
    format = output_format(args.format, args.out)
    if format == "html" and args.out is None:
        raise SpecError("--format html needs --out FILE.html")
    if args.out is not None:     # refused before any source is read
        check_output_file(args.out)
    options = AnalysisOptions(
        k=args.k, round_first=args.round_first, test=args.test, correction=args.correction,
        alpha=args.alpha, aligner=args.aligner, schedule=args.schedule, metric=args.metric,
        n_resamples=args.n_resamples, seed=args.seed).check()
    loaded: LoadedResults = sources_results([str(s) for s in args.sources])
    _stderr(issue_lines(loaded.errored, loaded.missing))
    _stderr([f"warning: {note}" for note in loaded.notes])
    if loaded.table.empty:
        raise DataError("no completed results to analyse", ", ".join(map(str, args.sources)))
    findings = findings_of(loaded.table, options)
    _stderr([f"warning: {line}" for line in findings.warnings])
    if args.figures is not None:
        from analysis.plots import write_figures  # matplotlib only when asked for

        written = write_figures(findings, args.figures)
        print(f"wrote {len(written) - 1} figure files and captions.md to {args.figures}",
              file=sys.stderr if args.out is None else sys.stdout)

    if format == "html":
        from analysis.report import html_report  # matplotlib only when asked for

        text = html_report(findings, [str(s) for s in args.sources], loaded.errored,
                           loaded.missing, loaded.notes, with_figures=not args.no_figures)
    elif format == "csv":
        text = tables.summary_csv(findings, args.per_language)
    else:
        # a depth search's directory: its studies' tables (validation, test, the chosen setting) too
        text = tables.rendered_tables(findings, format, args.per_language) + search_tables(
            [str(s) for s in args.sources])
    if args.out is None:
        print(text, end="")
    else:
        write_text(args.out, text)
        print(f"wrote {format} to {args.out}")
    return 0


def add_import_reference_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="DIR",
                        help="a directory of the authors' result CSVs (or one such CSV), or "
                             "'reference' for the copy shipped with alignfreeze")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE",
                        help="the tidy table to write (.csv, or .parquet)")


def run_import_reference(args: argparse.Namespace) -> int:
    source = Path(args.source)
    if not source.exists():
        if str(args.source) != "reference":
            raise DataError("no such file or directory", source)
        source = reference.PACKAGED_REFERENCE
    if args.out.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise SpecError(f"--out must end in .csv or .parquet, got {short(args.out.name)}")
    check_output_file(args.out)
    table = reference.reference_table(source)
    write_table(table, args.out)
    print(f"wrote {len(table)} rows ({table['model'].nunique()} models, "
          f"{table['task'].nunique()} tasks, "
          f"{table[['strategy', 'aligner', 'schedule']].drop_duplicates().shape[0]} strategy "
          f"variants, seeds {', '.join(map(str, sorted(table['seed'].unique())))}) to {args.out}")
    return 0


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR",
                        help="a run directory (alignfreeze run --output; a path or a storage URI)")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE",
                        help="the tidy per-seed, per-language table to write (.csv or .parquet): "
                             "one row per trial x split x language x metric, English included")


def run_export(args: argparse.Namespace) -> int:
    from analysis.export import SUFFIXES, export_table

    if args.out.suffix.lower() not in SUFFIXES:
        raise SpecError(f"--out must end in .csv or .parquet, got {short(args.out.name)}")
    check_output_file(args.out)          # refused before the run directory is read
    table, loaded = export_table(args.directory)
    _stderr(issue_lines(loaded.errored, loaded.missing))
    write_table(table, args.out)
    splits = ", ".join(f"{split} {count}" for split, count
                       in table["split"].value_counts(sort=False).items())
    print(f"wrote {len(table)} rows ({table['trial_id'].nunique()} trials, "
          f"{table['language'].nunique()} languages, rows per split: {splits}) to {args.out}")
    return 0
