"""Every label set of the project, written once, in a fixed order.

The order is the label id order of the task heads: it must never depend
on the data source (a Hub dataset and a local file give the same ids).
"""

from __future__ import annotations

# Universal POS tags (UD v2), the 17 UPOS categories.
UPOS_LABELS: tuple[str, ...] = (
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
    "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X",
)

# WikiANN BIO labels, in the Hub dataset's id order.
NER_LABELS: tuple[str, ...] = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")

# XNLI / MultiNLI labels, in the Hub datasets' id order.
NLI_LABELS: tuple[str, ...] = ("entailment", "neutral", "contradiction")


def label_ids(labels: tuple[str, ...]) -> dict[str, int]:
    return {label: index for index, label in enumerate(labels)}
