"""Every output format of ``alignfreeze analyze`` is produced and parsed back."""

from __future__ import annotations

import argparse
import html.parser
import io
import json
import re

import numpy as np
import pandas as pd
import pytest

from analysis import commands, tables
from analysis.findings import AnalysisOptions, findings_of
from analysis.results import source_results, tidy_frame, write_table
from trainables.errors import AlignFreezeError, SpecError
from trainables.tasks.registry import TASKS

MODELS = ("bert-base-multilingual-cased", "xlm-roberta-base")
STRATEGIES = {"baseline": 0.0, "full": 0.02, "front": 0.01, "back": -0.01, "front:2": 0.015,
              "back:4": -0.02}


def synthetic_table() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    records = []
    for model in MODELS:
        for task in ("pos", "qa"):
            metric = TASKS[task].primary_metric
            for language in TASKS[task].paper_languages[:5] + ("en",):
                level = rng.uniform(0.4, 0.8)
                for strategy, shift in STRATEGIES.items():
                    for seed in (1, 2, 3):
                        records.append({
                            "model": model, "task": task, "strategy": strategy,
                            "aligner": "none" if strategy == "baseline" else "dico",
                            "seed": seed, "language": language, "metric": metric,
                            "value": level + shift + rng.normal(0, 0.004), "num_blocks": 12,
                            "is_target": language != "en"})
    return tidy_frame(records, "synthetic")


@pytest.fixture(scope="module")
def tidy_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tidy.csv"
    write_table(synthetic_table(), path)
    return path


@pytest.fixture(scope="module")
def findings(tidy_csv):
    return findings_of(source_results(tidy_csv).table, AnalysisOptions())


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="alignfreeze")
    sub = root.add_subparsers(dest="command")
    commands.add_analyze_arguments(sub.add_parser("analyze"))
    commands.add_import_reference_arguments(sub.add_parser("import-reference"))
    return root


def analyze(*argv) -> int:
    return commands.run_analyze(parser().parse_args(["analyze", *map(str, argv)]))


def test_terminal_table(tidy_csv, findings, capsys):
    assert analyze(tidy_csv) == 0
    out = capsys.readouterr().out
    expected = tables.display_tables(findings)
    for table in expected:
        assert table.title in out
    # Every row comes back, token for token (blank cells are just spaces).
    lines = out.splitlines()
    for row in expected[0].rows:
        tokens = " ".join(cell for cell in row if cell).split()
        assert any(line.replace("*", "").split() == tokens for line in lines), row


def markdown_rows(text: str, title: str) -> list[list[str]]:
    block = text.split(f"### {title}")[1].split("\n\n")[1]
    rows = [line.strip().strip("|").split(" | ") for line in block.splitlines()]
    return [[cell.strip().replace("**", "") for cell in row] for row in rows[2:]]


def test_markdown(tidy_csv, findings, tmp_path):
    out = tmp_path / "r.md"
    assert analyze(tidy_csv, "--out", out) == 0            # format from the extension
    text = out.read_text()
    for table in tables.display_tables(findings):
        assert markdown_rows(text, table.title) == table.rows


def test_markdown_numbers_are_the_data(tidy_csv, tmp_path):
    out = tmp_path / "r.md"
    analyze(tidy_csv, "--format", "md", "--out", out)
    rows = markdown_rows(out.read_text(), "The paper's table")
    data = synthetic_table()
    targets = data[(data["model"] == MODELS[1]) & (data["task"] == "qa") & data["is_target"]
                   & (data["strategy"] == "front")]
    expected = targets.groupby("language")["value"].mean().mean()
    row = next(r for r in rows if r[0] == "XLM-R" and r[1] == "AlignFreeze front (dico, before)")
    assert row[6] == f"{expected * 100:.1f}"                 # QA average column


def latex_rows(text: str) -> list[list[str]]:
    unescape = {r"\#": "#", r"\%": "%", r"\_": "_", r"\&": "&", "$-$": "-", r"$\pm$": "±"}
    rows = []
    for line in text.splitlines():
        if line.endswith(r"\\"):
            cells = re.split(r"(?<!\\)&", line[:-2])
            cleaned = []
            for cell in cells:
                cell = re.sub(r"\\textbf\{(.*)\}", r"\1", cell.strip())
                for escaped, plain in unescape.items():
                    cell = cell.replace(escaped, plain)
                cleaned.append(cell)
            rows.append(cleaned)
    return rows


def test_latex_booktabs(tidy_csv, findings, tmp_path):
    out = tmp_path / "r.tex"
    assert analyze(tidy_csv, "--format", "latex", "--out", out, "--per-language") == 0
    text = out.read_text()
    for command in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}"):
        assert command in text
    shown = tables.display_tables(findings, per_language=True)
    assert text.count(r"\begin{table}") == text.count(r"\end{table}") == 4
    assert text.count(r"\begin{longtable}") == len(shown) - 4 == 2 * 2 + 1
    parsed = latex_rows(text)
    for table in shown:        # every row, its heading columns shown above its block
        for row in table.rows:
            assert row[table.heading_columns:] in parsed, (table.title, row)

def test_csv_summary(tidy_csv, findings, tmp_path):
    out = tmp_path / "r.csv"
    assert analyze(tidy_csv, "--out", out) == 0
    back = pd.read_csv(out)
    expected = tables.summary_frame(findings)
    assert list(back.columns) == tables.SUMMARY_COLUMNS
    assert len(back) == len(expected) == 2 * 2 * len(STRATEGIES)
    pd.testing.assert_frame_equal(back[["model", "task", "strategy", "average", "mean_delta"]],
                                  expected[["model", "task", "strategy", "average", "mean_delta"]],
                                  check_dtype=False)
    realigned = back[back["strategy"] != "baseline"]
    assert realigned["down"].notna().all() and realigned["up"].notna().all()


class TableParser(html.parser.HTMLParser):
    """Tables (header + rows of cell texts) and image sources of an HTML page."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self._cell = [], [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def test_html_report_with_embedded_figures(tmp_path):
    data = tmp_path / "one-model.parquet"
    write_table(synthetic_table().query("model == @MODELS[1]"), data)
    out = tmp_path / "report.html"
    assert analyze(data, "--out", out, "--bootstrap", "500") == 0
    page = TableParser()
    page.feed(out.read_text())
    few = findings_of(source_results(data).table, AnalysisOptions(n_resamples=500))
    expected = tables.display_tables(few) + [tables.language_table(few)]
    assert [t[0] for t in page.tables] == [t.columns for t in expected]
    assert [t[1:] for t in page.tables] == [t.rows for t in expected]
    # Per task: delta bars, heatmap and, with front:2 / back:4, the depth plot.
    text = out.read_text()
    assert page.images == [] and text.count("<figure ") == text.count("<svg ") == 2 * 3


def test_html_needs_out_and_format_errors(tidy_csv, tmp_path):
    with pytest.raises(SpecError, match="needs --out"):
        analyze(tidy_csv, "--format", "html")
    with pytest.raises(SpecError, match="cannot tell the format"):
        analyze(tidy_csv, "--out", tmp_path / "r.docx")
    with pytest.raises(SpecError, match="unknown format"):
        commands.output_format("xlsx", None)
    with pytest.raises(SystemExit):   # argparse rejects it before run_analyze
        parser().parse_args(["analyze", str(tidy_csv), "--format", "xlsx"])


def test_errored_and_missing_trials_reach_stderr(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "results").mkdir(parents=True)
    (run / "errors").mkdir()
    trials = []
    for index, (strategy, seed) in enumerate([("baseline", 1), ("baseline", 2), ("full", 1),
                                              ("full", 2), ("front", 1)] +
                                             [("back", s) for s in range(8)]):
        spec = {"model": "xlm-roberta-base", "task": "nli", "strategy": strategy,
                "aligner": "dico", "schedule": "before", "seed": seed}
        trials.append({"trial_id": f"t{index}", "spec": spec})
        if index < 4:
            (run / "results" / f"t{index}.json").write_text(json.dumps({
                "trial_id": f"t{index}", "status": "completed", "spec": spec,
                "metrics": {"de": {"accuracy": 0.5 + seed / 100 + index / 50}}}))
        elif index == 4:
            (run / "errors" / "t4.json").write_text(json.dumps(
                {"trial_id": "t4", "status": "error", "spec": spec, "error": "boom"}))
    (run / "experiment.json").write_text(json.dumps({"name": "x", "trials": trials}))
    assert analyze(run) == 0
    captured = capsys.readouterr()
    assert "warning: 1 errored trial(s)" in captured.err and "t4" in captured.err
    assert "boom" in captured.err
    assert "warning: 8 missing trial(s)" in captured.err and "... and 3 more" in captured.err
    assert "fewer than 3 seeds" in captured.err
    assert len(captured.err.splitlines()) < 15          # aggregated, not one per cell
    assert "full realignment" in captured.out


def test_import_reference_then_analyze(tmp_path, capsys):
    out = tmp_path / "reference.csv"
    args = parser().parse_args(["import-reference", "reference", "--out", str(out)])
    assert commands.run_import_reference(args) == 0
    assert "wrote 19545 rows" in capsys.readouterr().out
    imported = source_results(out).table
    assert set(imported["strategy"]) == {"baseline", "full", "front", "back"}
    assert set(imported["aligner"]) == {"none", "dico", "fastalign", "awesome"}
    assert set(imported["schedule"]) == {"before", "during"}
    with pytest.raises(AlignFreezeError, match="must end in .csv or .parquet"):
        commands.run_import_reference(parser().parse_args(
            ["import-reference", "reference", "--out", str(tmp_path / "x.json")]))


def test_analyze_reference_round_flag_changes_counts(capsys):
    assert analyze("reference", "--format", "csv", "--bootstrap", "200") == 0
    plain = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert analyze("reference", "--format", "csv", "--round", "--bootstrap", "200") == 0
    rounded = pd.read_csv(io.StringIO(capsys.readouterr().out))
    row = ((plain["model"] == "bert-base-multilingual-cased") & (plain["task"] == "ner")
           & (plain["strategy"] == "front"))
    assert (plain.loc[row, "down"].item(), rounded.loc[row, "down"].item()) == (4, 1)
    assert rounded["round_first"].all() and not plain["round_first"].any()
