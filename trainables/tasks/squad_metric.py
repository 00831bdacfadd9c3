"""Exact match and F1 exactly as the official SQuAD v1.1 evaluation script defines them.

``normalize_answer``, ``exact_match_score`` and ``f1_score`` follow
``evaluate-v1.1.py`` line for line: lower-case, drop ASCII punctuation,
drop the articles a/an/the, collapse whitespace; F1 over whitespace
tokens of the normalised strings; each question scores the maximum over
its gold answers; the dataset score is the mean over questions. XQuAD is
scored with this same script. Scores here are fractions in [0, 1] (the
script prints percentages).
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
