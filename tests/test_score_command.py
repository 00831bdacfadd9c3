"""``alignfreeze score``: every task's metrics on files of predictions, and the input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli import main
from trainables.tasks.registry import get_task

XQUAD_EN = Path(__file__).resolve().parents[1] / "trainables" / "bundled_data" / "qa" / "xquad" / \
    "xquad.en.first2articles.json"


def score(capsys, *argv: str) -> tuple[int, dict | None, str]:
    status = main(["score", *map(str, argv)])
    captured = capsys.readouterr()
    return status, (json.loads(captured.out) if status == 0 else None), captured.err


def jsonl(tmp_path: Path, rows: list, name: str = "predictions.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_pos(tmp_path, capsys):
    path = jsonl(tmp_path, [{"gold": ["DET", "NOUN", "VERB"], "pred": ["DET", "NOUN", "NOUN"]},
                            {"gold": ["PROPN", ""], "pred": ["PROPN", "X"]}])   # "": not annotated
    status, metrics, _ = score(capsys, "pos", path)
    assert status == 0 and metrics == {"accuracy": 0.75}


def test_ner_reports_the_paper_figures_and_the_raw_ones(tmp_path, capsys):
    path = jsonl(tmp_path, [{"gold": ["B-LOC", "I-LOC", "B-PER", "I-PER"],
                             "pred": ["B-LOC", "I-LOC", "B-PER", "I-PER"]},
                            {"gold": ["O", "B-ORG"], "pred": ["O", ""]}])      # "": no prediction
    status, metrics, _ = score(capsys, "ner", path)
    assert status == 0 and list(metrics) == list(get_task("ner").metrics)
    # the post-processing re-types LOC as PER: 2 of 5 scored words wrong, 1 of 2 entities right
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert (metrics["precision"], metrics["recall"], metrics["f1"]) == (0.5, 0.5, 0.5)
    assert {metrics[f"{m}_raw"] for m in ("accuracy", "precision", "recall", "f1")} == {1.0}


def test_nli(tmp_path, capsys):
    path = jsonl(tmp_path, [{"gold": "entailment", "pred": "entailment"}, {"gold": 1, "pred": "neutral"},
                            {"gold": "contradiction", "pred": "neutral"}, {"gold": "neutral", "pred": 2}])
    status, metrics, _ = score(capsys, "nli", path)
    assert status == 0 and metrics == {"accuracy": 0.5}


def test_qa_as_the_official_script_takes_it(tmp_path, capsys):
    data = json.loads(XQUAD_EN.read_text(encoding="utf-8"))
    questions = [qa for article in data["data"] for paragraph in article["paragraphs"]
                 for qa in paragraph["qas"]]
    predictions = {qa["id"]: qa["answers"][0]["text"] for qa in questions}
    first = questions[0]
    predictions[first["id"]] = "the " + first["answers"][0]["text"] + "."   # normalises to the gold
    del predictions[questions[1]["id"]]                                      # scores 0
    path = tmp_path / "predictions.json"
    path.write_text(json.dumps(predictions), encoding="utf-8")
    n = len(questions)

    status, metrics, err = score(capsys, "qa", XQUAD_EN, path)
    assert status == 0 and list(metrics) == list(get_task("qa").metrics)
    assert "1 of" in err and "no prediction" in err
    assert metrics["exact_match"] == pytest.approx((n - 1) / n) and metrics["f1"] == pytest.approx((n - 1) / n)
    assert metrics["f1_paper"] == pytest.approx((n - 1) / n)
    assert metrics["exact_match_paper"] == pytest.approx((n - 2) / n)        # raw: "the ... ." differs
    status, metrics, _ = score(capsys, "qa", XQUAD_EN, path, "--language", "en")
    assert metrics["exact_match_paper"] == pytest.approx((n - 1) / n)        # English: normalised


@pytest.mark.parametrize("task, rows, message", [
    ("ner", [{"gold": ["O", "B-PER"], "pred": ["O"]}], ":1: 2 gold tags but 1 predicted"),
    ("ner", [{"gold": ["O"], "pred": ["O"]}, {"gold": ["B-MISC"], "pred": ["O"]}], ":2: unknown ner tag 'B-MISC'"),
    ("pos", [{"gold": ["NOUN"]}], ":1: no 'pred' key"),
    ("pos", [{"gold": "NOUN", "pred": "NOUN"}], ":1: 'gold' must be a list"),
    ("pos", [["NOUN"]], ":1: expected an object"),
    ("nli", [{"gold": "entailment", "pred": "maybe"}], ":1: unknown NLI label 'maybe'"),
    ("nli", [{"gold": "-", "pred": "neutral"}], ":1: no 'gold' label"),
])
def test_malformed_lines_name_file_and_line(tmp_path, capsys, task, rows, message):
    path = jsonl(tmp_path, rows)
    status, _, err = score(capsys, task, path)
    assert status == 2 and err.count("\n") == 1 and f"{path}{message}" in err


def test_bad_json_line(tmp_path, capsys):
    path = tmp_path / "p.jsonl"
    path.write_text('{"gold": ["O"], "pred": ["O"]}\n{"gold": [\n', encoding="utf-8")
    status, _, err = score(capsys, "ner", path)
    assert status == 2 and f"{path}:2: not JSON" in err


@pytest.mark.parametrize("argv, message", [
    (["sentiment", "x.jsonl"], "unknown task 'sentiment'"),
    (["pos", "a.jsonl", "b.jsonl"], "score pos takes 1 file(s)"),
    (["qa", "data.json"], "score qa takes 2 file(s), DATASET.json PREDICTIONS.json; got 1"),
    (["ner", "missing.jsonl"], "missing.jsonl: file not found"),
    (["ner", "empty.jsonl"], "empty.jsonl: no line to score"),
])
def test_wrong_arguments(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    status, _, err = score(capsys, *argv)
    assert status == 2 and err.count("\n") == 1 and message in err


def test_malformed_qa_predictions(tmp_path, capsys):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"a": "x",\n "b": }', encoding="utf-8")
    status, _, err = score(capsys, "qa", XQUAD_EN, bad_json)
    assert status == 2 and f"{bad_json}:2: not JSON" in err
    not_text = tmp_path / "list.json"
    not_text.write_text('{"a": ["x"]}', encoding="utf-8")
    status, _, err = score(capsys, "qa", XQUAD_EN, not_text)
    assert status == 2 and "question 'a': the answer must be a text" in err
    status, _, err = score(capsys, "qa", not_text, not_text)   # not a SQuAD dataset
    assert status == 2 and "expected a SQuAD object" in err
