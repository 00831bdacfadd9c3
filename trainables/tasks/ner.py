"""Named-entity recognition on WikiANN: BIO tags over PER/ORG/LOC.

Sources:

* ``hub`` -- ``unimelb-nlp/wikiann``, config = the language, split as given
  (``train`` / ``test``); ``hub:<id>[:<config>]`` for another copy with
  ``tokens`` and ``ner_tags`` columns.
* a file in one of the three formats of ``ner_readers`` (the language is
  then the file's language);
* a directory: ``<dir>/<lang>/<split>*``, ``<dir>/<split>-<lang>.tsv`` or
  ``<dir>/<lang>_*-<split>*.iob2`` (see ``ner_readers.ner_files``).

Metrics: word accuracy (the paper's table) and seqeval entity
precision/recall/F1. Before scoring, both gold and predicted sequences are
repaired (``repair_bio``: an ``I-X`` that does not continue an ``X``
entity starts one, i.e. becomes ``B-X``) and then scored in seqeval's
strict IOB2 mode. On repaired sequences strict mode gives the same
entities as seqeval's default conlleval mode; the repair makes that rule
explicit and testable instead of leaving it to a mode's chunking details.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Sequence

from trainables.errors import DataError
from trainables.tasks.hub_source import class_names, is_hub, parse_hub_source
from trainables.tasks.labels import NER_LABELS
from trainables.tasks.ner_readers import ner_files, ner_tag, read_ner_file
from trainables.tasks.token_classification import (TaggedSentence, TokenClassificationTask,
                                                   word_accuracy)

log = logging.getLogger(__name__)

HUB_DATASET = "unimelb-nlp/wikiann"


def repair_bio(tags: Sequence[str]) -> list[str]:
    """``tags`` with every ``I-X`` that does not follow ``B-X`` or ``I-X`` turned into ``B-X``."""
    repaired: list[str] = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        repaired.append(tag)
        previous = tag
    return repaired


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """seqeval entity precision, recall and F1 on repaired BIO sequences ("" counts as O)."""
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOB2

    def clean(rows: Sequence[Sequence[str]]) -> list[list[str]]:
        return [repair_bio([tag or "O" for tag in row]) for row in rows]

    y_true, y_pred = clean(gold), clean(predicted)
    options = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
    return {"precision": float(precision_score(y_true, y_pred, **options)),
            "recall": float(recall_score(y_true, y_pred, **options)),
            "f1": float(f1_score(y_true, y_pred, **options))}


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

    def metrics(self, gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
        return {"accuracy": word_accuracy(gold, predicted), **entity_scores(gold, predicted)}


def _hub_examples(source: str, language: str, split: str, limit: int | None) -> list[TaggedSentence]:
    from trainables.hub import load_hub_split

    hub = parse_hub_source(source)
    dataset_id = hub.dataset_id or HUB_DATASET
    config = hub.config if hub.explicit_config else language
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
