"""Part-of-speech tagging on Universal Dependencies (UPOS accuracy)."""

from __future__ import annotations

from pathlib import Path

from trainables.errors import DataError
from trainables.tasks.conllu_reader import read_conllu, treebank_files
from trainables.tasks.labels import UPOS_LABELS
from trainables.tasks.token_classification import TaggedSentence, TokenClassificationTask


class PosTask(TokenClassificationTask):
    labels = UPOS_LABELS

    def load_examples(self, source: str, language: str, split: str,
                      limit: int | None = None) -> list[TaggedSentence]:
        if source == "hub" or source.startswith("hub:"):
            return _hub_examples(source, language, split, limit)
        path = Path(source)
        files = treebank_files(path, split) if path.is_dir() else [path]
        sentences: list[TaggedSentence] = []
        for file in files:
            sentences.extend(read_conllu(file, None if limit is None else limit - len(sentences)))
            if limit is not None and len(sentences) >= limit:
                break
        if not sentences:
            raise DataError("no sentence in CoNLL-U data", source)
        return sentences


def _hub_examples(source: str, language: str, split: str, limit: int | None) -> list[TaggedSentence]:
    """UD from a Hub dataset with ``tokens`` and ``upos`` columns.

    ``hub:<dataset id>:<config>``; the config names the treebank (``en_ewt``).
    UD has no canonical script-free Hub copy, so the dataset id is explicit.
    """
    from trainables.hub import load_hub_split

    parts = source.split(":")
    if len(parts) != 3:
        raise DataError("PoS Hub source must be 'hub:<dataset id>:<treebank config>'", source)
    dataset = load_hub_split(parts[1], parts[2], split)
    names = dataset.features["upos"].feature.names if hasattr(dataset.features["upos"], "feature") else None
    sentences = []
    for row in dataset:
        tags = [names[t] if names else t for t in row["upos"]]
        tags = [t if t in UPOS_LABELS else "" for t in tags]
        sentences.append(TaggedSentence(tuple(row["tokens"]), tuple(tags)))
        if limit is not None and len(sentences) >= limit:
            break
    return sentences
