"""Named-entity recognition on WikiANN: BIO tags over PER/ORG/LOC.

Sources:

* ``hub`` -- ``unimelb-nlp/wikiann``, config = the language, split as given
  (``train`` / ``validation`` / ``test``); ``hub:<id>[:<config>]`` for another
  copy with ``tokens`` and ``ner_tags`` columns.
* a file in one of the three formats of ``ner_readers`` (the language is
  then the file's language);
* a directory: ``<dir>/<lang>/<split>*``, ``<dir>/<split>-<lang>.tsv`` or
  ``<dir>/<lang>_*-<split>*.iob2`` (see ``ner_readers.ner_files``); validation
  files are named ``dev``, ``validation`` or ``val``.

Metrics, as the AlignFreeze paper scored NER (the reference's
``get_wikiann_metric_fn``): the predicted tags of each sentence are first
post-processed (``ner_post_processing``; gold tags are not touched), then
scored by seqeval in its default mode (conlleval-style chunking, where an
``I-X`` that does not continue an ``X`` entity starts one):
``accuracy`` (share of words tagged right: the paper's table),
``precision``, ``recall`` and ``f1`` (micro-averaged entities). The same
four on the raw predictions are reported as ``accuracy_raw``,
``precision_raw``, ``recall_raw``, ``f1_raw``; they equal what this tool
reported before it followed the paper (BIO repair, then strict IOB2).

The post-processing (Wu et al., as the reference wrote it) has two passes:

1. forwards, an ``I-X`` at the start or after ``O`` becomes ``B-X``;
2. backwards, an entity takes the type of its last ``I-`` tag:
   ``B-X I-Y I-Z`` -> ``B-Z I-Z I-Z``.

Its quirk: in pass 2 a ``B-`` tag of the type being carried leftwards does
not stop it, so the type of an entity spills into the entity just before
it when that one is directly adjacent and of another type:
``B-LOC I-LOC B-PER I-PER`` -> ``B-PER I-PER B-PER I-PER`` and
``B-LOC B-PER I-PER`` -> ``B-PER B-PER I-PER``. This can turn a perfect
prediction into a wrong one (69 of the 376 exact predictions among the
parity cases); it is kept because it is what the paper's numbers measure.

A word without a prediction (``""``: nothing but a bare SentencePiece "▁",
see ``token_classification``) or without a gold tag is left out of every
figure, as the reference never gives such a word a label position.

Chinese (``finetune.zh_segmentation: jieba``, default ``none``): the
evaluation sentences of ``zh`` are re-segmented from characters into words
before tagging, as the reference did (``zh_resegmentation``).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Sequence

from trainables.errors import DataError
from trainables.tasks.base import FinetuneSettings
from trainables.tasks.hub_source import class_names, is_hub, parse_hub_source
from trainables.tasks.labels import NER_LABELS
from trainables.tasks.ner_readers import ner_files, ner_tag, read_ner_file
from trainables.tasks.token_classification import TaggedSentence, TokenClassificationTask
from trainables.tasks.zh_resegmentation import DEFAULT_SEGMENTATION, resegment

log = logging.getLogger(__name__)

HUB_DATASET = "unimelb-nlp/wikiann"


def ner_post_processing(tags: Sequence[str]) -> list[str]:
    """The reference's post-processing of one predicted tag sequence (see the module docstring)."""
    # pass 1: an I-X that starts the sentence or follows O (as predicted) starts an entity
    processed = ["B-" + tag[2:] if tag.startswith("I-") and (i == 0 or tags[i - 1] == "O") else tag
                 for i, tag in enumerate(tags)]
    # pass 2, right to left: the type of the nearest I- tag to the right, until an O,
    # overrides every tag of another type; a B- of another type takes it and stops it
    carried: str | None = None
    for i in range(len(processed) - 1, -1, -1):
        tag = processed[i]
        if tag == "O":
            carried = None
        elif carried is None:
            if tag.startswith("I-"):
                carried = tag[2:]
        elif tag[2:] != carried:
            processed[i] = tag[:2] + carried
            if tag.startswith("B-"):
                carried = None
    return processed


def seqeval_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """seqeval in its default mode: token accuracy and micro entity precision, recall, F1.

    What the Hugging Face ``seqeval`` metric returns as ``overall_*`` (no
    entity at all: 0, without the warning). NaN when there is no tag.
    """
    from seqeval.metrics import accuracy_score, f1_score, precision_score, recall_score

    if not any(gold):
        nan = float("nan")
        return {"accuracy": nan, "f1": nan, "precision": nan, "recall": nan}
    gold, predicted = [list(row) for row in gold], [list(row) for row in predicted]
    return {"accuracy": float(accuracy_score(gold, predicted)),
            "f1": float(f1_score(gold, predicted, zero_division=0)),
            "precision": float(precision_score(gold, predicted, zero_division=0)),
            "recall": float(recall_score(gold, predicted, zero_division=0))}


def scored_tags(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]
                ) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and predicted tags of the words that have both ("" marks a missing one)."""
    kept_gold, kept_predicted = [], []
    for gold_row, predicted_row in zip(gold, predicted, strict=True):
        if len(gold_row) != len(predicted_row):
            raise ValueError("a sentence has a different number of gold and predicted tags")
        pairs = [(g, p) for g, p in zip(gold_row, predicted_row) if g and p]
        kept_gold.append([g for g, _ in pairs])
        kept_predicted.append([p for _, p in pairs])
    return kept_gold, kept_predicted


def ner_metrics(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """The paper's figures (post-processed predictions), then the same on the raw predictions."""
    gold, predicted = scored_tags(gold, predicted)
    paper = seqeval_scores(gold, [ner_post_processing(row) for row in predicted])
    raw = seqeval_scores(gold, predicted)
    return {**paper, **{f"{name}_raw": value for name, value in raw.items()}}


class NerTask(TokenClassificationTask):
    labels = NER_LABELS

    def load_examples(self, source: str, language: str, split: str,
                      limit: int | None = None) -> list[TaggedSentence]:
        if is_hub(source):
            return _hub_examples(source, language, split, limit)
        path = Path(source)
        if not path.exists():
            raise DataError("NER data not found", path)
        files = ner_files(path, language, split) if path.is_dir() else [path]
        sentences: list[TaggedSentence] = []
        foreign: Counter = Counter()
        for file in files:
            read = read_ner_file(file, language, None if limit is None else limit - len(sentences))
            sentences.extend(read.sentences)
            foreign.update(read.foreign_tags)
            if limit is not None and len(sentences) >= limit:
                break
        if foreign:
            log.warning("%s: %d tags of entity types outside PER/ORG/LOC read as O (%s)", source,
                        sum(foreign.values()), ", ".join(f"{t}: {n}" for t, n in sorted(foreign.items())))
        if not sentences:
            raise DataError("no sentence in NER data", source)
        return sentences

    def evaluation_examples(self, source: str, language: str, settings: FinetuneSettings,
                            split: str = "test") -> list[TaggedSentence]:
        sentences = super().evaluation_examples(source, language, settings, split)
        if language == "zh":
            return resegment(sentences, settings.extra.get("zh_segmentation", DEFAULT_SEGMENTATION))
        return sentences

    def metrics(self, gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
        return ner_metrics(gold, predicted)


def hub_dataset(source: str, language: str, split: str) -> tuple[str, str, str]:
    """(dataset id, config, split) of an NER Hub source: WikiANN, config = the language."""
    hub = parse_hub_source(source)
    return hub.dataset_id or HUB_DATASET, hub.config if hub.explicit_config else language, split


def _hub_examples(source: str, language: str, split: str, limit: int | None) -> list[TaggedSentence]:
    from trainables.hub import load_hub_split

    dataset_id, config, split = hub_dataset(source, language, split)
    dataset = load_hub_split(dataset_id, config, split)
    names = class_names(dataset, "ner_tags")
    foreign: Counter = Counter()
    sentences = []
    for number, row in enumerate(dataset):
        tags = [names[t] if names else str(t) for t in row["ner_tags"]]
        tags = [ner_tag(t, foreign, Path(f"{dataset_id}/{config}/{split}"), number) for t in tags]
        sentences.append(TaggedSentence(tuple(row["tokens"]), tuple(tags)))
        if limit is not None and len(sentences) >= limit:
            break
    if foreign:
        log.warning("%s: %d tags outside PER/ORG/LOC read as O", dataset_id, sum(foreign.values()))
    return sentences
