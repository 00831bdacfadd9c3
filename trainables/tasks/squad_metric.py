"""QA scores: the official SQuAD v1.1 definitions, and the AlignFreeze paper's.

Official (``f1``, ``exact_match``): ``normalize_answer``,
``exact_match_score`` and ``f1_score`` follow ``evaluate-v1.1.py`` line for
line: lower-case, drop ASCII punctuation, drop the articles a/an/the,
collapse whitespace; F1 over whitespace tokens of the normalised strings
(a multiset overlap); each question scores the maximum over its gold
answers; the dataset score is the mean over questions. XQuAD is usually
scored with this same script.

The paper's (``f1_paper``, ``exact_match_paper``), as the reference's
``evaluate_xquad`` computes them, and as its result files report them:

* only the first gold answer counts;
* F1 over the same normalised tokens, but with a *set* overlap (a word
  repeated in both strings counts once, its repeats still count in the
  lengths), and 2PR / max(1, P + R): when P + R < 1 the score is 2PR,
  below the harmonic mean; if either side normalises to nothing, 1 when
  both do, else 0;
* exact match is raw string equality (no normalisation at all) on the
  target languages, and equality of the normalised strings on English.

Scores here are fractions in [0, 1] (the script prints percentages). A
question without a prediction scores 0 under both definitions.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Callable, Mapping, Sequence

_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1_score(prediction: str, ground_truth: str) -> float:
    prediction_tokens = normalize_answer(prediction).split()
    truth_tokens = normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(truth_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(prediction_tokens)
    recall = same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def metric_max_over_ground_truths(metric: Callable[[str, str], float], prediction: str,
                                  ground_truths: Sequence[str]) -> float:
    if not ground_truths:
        raise ValueError("a question without gold answers cannot be scored")
    return max(metric(prediction, truth) for truth in ground_truths)


def paper_f1_score(prediction: str, ground_truth: str) -> float:
    """The reference's F1: set overlap, divided by max(1, P + R)."""
    prediction_tokens = normalize_answer(prediction).split()
    truth_tokens = normalize_answer(ground_truth).split()
    if not prediction_tokens or not truth_tokens:
        return float(prediction_tokens == truth_tokens)
    same = len(set(prediction_tokens) & set(truth_tokens))
    precision = same / len(prediction_tokens)
    recall = same / len(truth_tokens)
    return 2 * precision * recall / max(1.0, precision + recall)


def paper_exact_match_score(prediction: str, ground_truth: str, normalised: bool) -> float:
    """The reference's exact match: raw equality, or equality after normalisation (English)."""
    if normalised:
        return exact_match_score(prediction, ground_truth)
    return float(prediction == ground_truth)


def paper_scores(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str],
                 english: bool) -> dict[str, float]:
    """Mean ``f1_paper`` and ``exact_match_paper`` over the questions of ``gold``.

    ``english``: the questions are the source language's, whose exact match
    the reference normalises; on any other language it compares raw text.
    """
    if not gold:
        return {"f1_paper": float("nan"), "exact_match_paper": float("nan")}
    exact = f1 = 0.0
    for question_id, truths in gold.items():
        if not truths:
            raise ValueError("a question without gold answers cannot be scored")
        if question_id not in predictions:
            continue
        prediction = predictions[question_id]
        f1 += paper_f1_score(prediction, truths[0])
        exact += paper_exact_match_score(prediction, truths[0], normalised=english)
    return {"f1_paper": f1 / len(gold), "exact_match_paper": exact / len(gold)}


def qa_metrics(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str],
               english: bool) -> dict[str, float]:
    """Every QA metric of a trial: the paper's two, then the official two."""
    official = squad_scores(gold, predictions)
    return {**paper_scores(gold, predictions, english),
            "f1": official["f1"], "exact_match": official["exact_match"]}


def squad_scores(gold: Mapping[str, Sequence[str]], predictions: Mapping[str, str]) -> dict[str, float]:
    """Mean exact match and F1 over the questions of ``gold`` (question id -> gold answers).

    A question without a prediction scores 0, as in the official script.
    """
    if not gold:
        return {"exact_match": float("nan"), "f1": float("nan")}
    exact = f1 = 0.0
    for question_id, truths in gold.items():
        if question_id not in predictions:
            continue
        prediction = predictions[question_id]
        exact += metric_max_over_ground_truths(exact_match_score, prediction, truths)
        f1 += metric_max_over_ground_truths(f1_score, prediction, truths)
    return {"exact_match": exact / len(gold), "f1": f1 / len(gold)}
