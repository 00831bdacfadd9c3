"""NER scoring against the reference's own ``ner_post_processing`` and ``get_wikiann_metric_fn``.

``tests/data/parity/ner_postprocessing.jsonl`` (README, section 2): 20
hand-picked and 1,500 random (gold, predicted) tag sequences with the
reference's post-processed predictions; the hand-picked ones also carry
the reference metric on that one sentence, with and without the
post-processing. ``ner_summary.json`` holds the corpus figures of both
sets. Every value must come out to 1e-9.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainables.tasks.ner import ner_metrics, ner_post_processing
from trainables.tasks.registry import get_task

PARITY = Path(__file__).parent.parent / "data" / "parity"
CASES = [json.loads(line) for line in (PARITY / "ner_postprocessing.jsonl").read_text(encoding="utf-8").splitlines()
         if line.strip()]
SUMMARY = json.loads((PARITY / "ner_summary.json").read_text(encoding="utf-8"))
HANDPICKED = [case for case in CASES if case["set"] == "handpicked"]
RANDOM = [case for case in CASES if case["set"] == "random"]
PAPER = ("accuracy", "f1", "precision", "recall")


def test_the_case_counts():
    assert (len(HANDPICKED), len(RANDOM)) == (20, 1500)


def test_every_post_processed_prediction():
    wrong = [(case["set"], case["id"]) for case in CASES if ner_post_processing(case["pred"]) != case["pred_post"]]
    assert wrong == []


@pytest.mark.parametrize("case", HANDPICKED, ids=lambda case: f"{case['id']}-{case['description']}")
def test_handpicked_sentence_metrics(case):
    metrics = ner_metrics([case["gold"]], [case["pred"]])
    for name in PAPER:
        assert metrics[name] == pytest.approx(case["metrics_ref"][name], abs=1e-9)
        assert metrics[f"{name}_raw"] == pytest.approx(case["metrics_no_postprocessing"][name], abs=1e-9)


@pytest.mark.parametrize("name, cases", [("random_cases_0_1499", RANDOM), ("handpicked_20", HANDPICKED)])
def test_corpus_figures(name, cases):
    metrics = ner_metrics([case["gold"] for case in cases], [case["pred"] for case in cases])
    assert list(metrics) == list(get_task("ner").metrics)
    reference = SUMMARY[name]["reference_metric_fn (with ner_post_processing)"]
    raw = SUMMARY[name]["same seqeval metric without post-processing (diagnostic)"]
    for metric in PAPER:
        assert metrics[metric] == pytest.approx(reference[metric], abs=1e-9)
        assert metrics[f"{metric}_raw"] == pytest.approx(raw[metric], abs=1e-9)


def test_the_retyping_quirk_is_in_the_cases():
    # a perfect prediction of two adjacent entities loses one of them
    case = next(case for case in HANDPICKED if case["pred"] == ["B-LOC", "I-LOC", "B-PER", "I-PER"])
    assert case["pred_post"] == ["B-PER", "I-PER", "B-PER", "I-PER"]
    assert ner_post_processing(case["pred"]) == case["pred_post"]
