"""The text outputs of ``alignfreeze analyze``: English, mean +- std, bold, scope, order, CSV."""

from __future__ import annotations

import argparse
import io
import math

import pandas as pd
import pytest

from analysis import commands, tables
from analysis.findings import AnalysisOptions, findings_of
from analysis.results import tidy_frame, write_table

MODEL = "xlm-roberta-base"
# Given out of order on purpose: every table must show them in languages.py's order.
LANGUAGES = {"pos": ("zh", "de", "ar"), "nli": ("th", "ar", "fr")}
BASE = {"ar": 0.50, "de": 0.70, "zh": 0.40, "th": 0.45, "fr": 0.75, "en": 0.90}
SHIFT = {"baseline": 0.0, "full": 0.03, "front": 0.01}
SEED_OFFSET = {1: -0.01, 2: 0.0, 3: 0.01}      # std over seeds (ddof=0): 0.8165 points
STD = math.sqrt(2 / 3) * 0.01


def records(aligner: str = "dico", schedule: str = "before", shift: float = 0.0) -> list[dict]:
    rows = []
    for task, languages in LANGUAGES.items():
        for language in languages + ("en",):
            for strategy, step in SHIFT.items():
                if strategy == "baseline" and (aligner, schedule) != ("dico", "before"):
                    continue
                for seed, offset in SEED_OFFSET.items():
                    rows.append({"model": MODEL, "task": task, "strategy": strategy,
                                 "aligner": aligner, "schedule": schedule, "seed": seed,
                                 "language": language, "metric": "accuracy",
                                 "value": BASE[language] + step + offset + shift})
    return rows


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """dico/before (analysed), and fastalign/before and dico/during (left out by default)."""
    path = tmp_path_factory.mktemp("tables") / "tidy.csv"
    write_table(tidy_frame(records() + records("fastalign", shift=0.05)
                           + records(schedule="during", shift=-0.05), "test"), path)
    return path


@pytest.fixture(scope="module")
def findings(data):
    return findings_of(pd.read_csv(data).pipe(tidy_frame, data),
                       AnalysisOptions(n_resamples=200))


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="alignfreeze")
    commands.add_analyze_arguments(root)
    return root


def analyze(capsys, *argv) -> tuple[str, str]:
    assert commands.run_analyze(parser().parse_args([*map(str, argv), "--bootstrap", "200"])) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


def table_named(findings, start: str, per_language: bool = True) -> tables.DisplayTable:
    return next(t for t in tables.display_tables(findings, per_language)
                if t.title.startswith(start))


def test_paper_table_shows_english_next_to_the_average(findings):
    table = table_named(findings, "The paper's table")
    assert table.columns == ["Model", "Strategy", "PoS avg", "PoS en", "PoS #dn", "PoS #up",
                             "NLI avg", "NLI en", "NLI #dn", "NLI #up", "total #dn", "total #up"]
    full = next(row for row in table.rows if row[1] == "full realignment (dico, before)")
    pos_average = (BASE["ar"] + BASE["de"] + BASE["zh"]) / 3 + SHIFT["full"]
    assert full[2:6] == [f"{pos_average * 100:.1f}", "93.0", "0", "3"]
    assert full[10:] == ["0", "6"]


def test_mean_std_table_is_strategy_by_task_with_the_best_in_bold(findings):
    table = table_named(findings, "Mean \u00b1 std over seeds")
    assert table.columns == ["Model", "Strategy", "PoS avg", "PoS en", "NLI avg", "NLI en",
                             "seeds"]
    assert [row[1] for row in table.rows] == ["fine-tuning only", "full realignment (dico, before)",
                                             "AlignFreeze front (dico, before)"]
    assert table.rows[1][3] == f"93.0 \u00b1 {STD * 100:.1f}" == "93.0 \u00b1 0.8"
    assert table.rows[0][6] == "3"                          # an integer count, not 3.0
    assert table.bold == {(1, column) for column in (2, 3, 4, 5)}    # full: best everywhere
    markdown = tables.markdown_table(table)
    assert "| **93.0 \u00b1 0.8** |" in markdown and "| 90.0 \u00b1 0.8 |" in markdown


def test_every_title_and_row_names_aligner_and_schedule(findings, data, capsys):
    for table in tables.display_tables(findings, per_language=True):
        assert "(aligner dico, schedule before)" in table.title, table.title
        assert ("Not shown: kept aligner dico; left out fastalign (--aligner all keeps every "
                "one).") in table.notes
    labels = [row[1] for row in table_named(findings, "The paper's table").rows]
    assert all(label == "fine-tuning only" or label.endswith("(dico, before)") for label in labels)
    out, err = analyze(capsys, data)
    assert "warning: kept aligner dico; left out fastalign (--aligner all keeps every one)" in err
    assert "warning: kept schedule before; left out during (--schedule all keeps every one)" in err
    out, err = analyze(capsys, data, "--aligner", "all", "--schedule", "all")
    assert "(aligners dico, fastalign, schedules before, during)" in out
    assert "AlignFreeze front (fastalign, before)" in out and "left out" not in err


def test_languages_in_one_order_everywhere(findings, data, capsys):
    means = table_named(findings, "XLM-R, PoS")
    assert [row[0] for row in means.rows] == ["ar", "de", "zh", "avg", "en (source)", "seeds"]
    assert means.breaks == [0, 3]
    assert means.rows[-1] == ["seeds", "3", "3", "3"]
    nli = table_named(findings, "XLM-R, NLI")
    assert [row[0] for row in nli.rows[:3]] == ["ar", "fr", "th"]
    compared = table_named(findings, "Per language")
    assert [row[3] for row in compared.rows] == ["ar", "de", "zh"] * 2 + ["ar", "fr", "th"] * 2
    frame = tables.language_frame(findings)
    pos_full = frame[(frame["task"] == "pos") & (frame["strategy"] == "full")]
    assert list(pos_full["language"]) == ["ar", "de", "zh", "en"]
    # The best strategy of each language (and of avg and en) in bold; the seeds row never.
    assert means.bold == {(row, 2) for row in range(5)}


def test_per_language_text_and_markdown(data, capsys):
    out, _ = analyze(capsys, data)
    assert "per language, mean" not in out and "Per language against" not in out
    out, _ = analyze(capsys, data, "--per-language", "--format", "md")
    assert "### XLM-R, PoS: accuracy per language, mean \u00b1 std over seeds (aligner dico, " \
           "schedule before)" in out
    assert "| ar | 50.0 \u00b1 0.8 | **53.0 \u00b1 0.8** | 51.0 \u00b1 0.8 |" in out
    assert "### Per language against fine-tuning only" in out
    out, _ = analyze(capsys, data, "--per-language")
    assert "ar                 50.0 \u00b1 0.8*" not in out     # the star follows the best only
    assert "53.0 \u00b1 0.8*" in out and "*: the best (bold in Markdown, LaTeX and HTML)." in out


def test_csv_per_language_is_tidy(findings, data, capsys):
    out, _ = analyze(capsys, data, "--format", "csv", "--per-language")
    frame = pd.read_csv(io.StringIO(out))
    assert list(frame.columns) == tables.LANGUAGE_COLUMNS
    # one row per strategy x language (targets and English) x task
    assert len(frame) == 3 * (3 + 1) * 2
    row = frame[(frame["task"] == "pos") & (frame["strategy"] == "full")
                & (frame["language"] == "de")].iloc[0]
    assert row["mean"] == pytest.approx(0.73)
    assert row["std"] == pytest.approx(STD)
    assert row["n_seeds"] == 3 and row["baseline_n_seeds"] == 3
    assert row["delta"] == pytest.approx(0.03)
    assert 0 <= row["p"] <= row["p_adjusted"] <= 1
    assert row["paper_verdict"] == 1 and row["test"] == "welch"
    english = frame[frame["language"] == "en"]
    assert not english["is_target"].any() and english["delta"].isna().all()
    baseline = frame[frame["strategy"] == "baseline"]
    assert baseline["p"].isna().all() and baseline["mean"].notna().all()
    text = pd.read_csv(io.StringIO(out), dtype=str)
    assert set(text["n_seeds"]) == {"3"}                   # counts as integers, never 3.0
    assert set(text["paper_verdict"].dropna()) == {"1"}


def test_summary_csv_has_english_and_std(data, capsys):
    out, _ = analyze(capsys, data, "--format", "csv")
    frame = pd.read_csv(io.StringIO(out))
    assert list(frame.columns) == tables.SUMMARY_COLUMNS
    row = frame[(frame["task"] == "nli") & (frame["strategy"] == "front")].iloc[0]
    assert row["english"] == pytest.approx(0.91)
    assert row["english_std"] == pytest.approx(STD)
    assert row["average_std"] == pytest.approx(STD)
    assert row["n_seeds"] == 3 and row["n_languages"] == 3


def test_seed_counts_that_differ_show_as_a_range(tmp_path, capsys):
    rows = [r for r in records() if not (r["strategy"] == "front" and r["seed"] == 3
                                         and r["task"] == "pos")]
    path = tmp_path / "fewer.csv"
    write_table(tidy_frame(rows, "test"), path)
    out, _ = analyze(capsys, path)
    line = next(line for line in out.splitlines()
                if line.startswith("XLM-R") and "front" in line and "\u00b1" in line)
    assert line.endswith("2-3")
