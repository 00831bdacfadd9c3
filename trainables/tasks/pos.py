"""Part-of-speech tagging on Universal Dependencies (UPOS accuracy)."""

from __future__ import annotations

from pathlib import Path

from trainables.errors import DataError, SpecError
from trainables.languages import PAPER_UD_TREEBANKS, VALIDATION_UD_TREEBANKS
from trainables.tasks.conllu_reader import read_conllu, treebank_files
from trainables.tasks.labels import UPOS_LABELS
from trainables.tasks.splits import TEST
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


def hub_dataset(source: str, language: str, split: str) -> tuple[str, str, str]:
    """(dataset id, config, split) of a PoS Hub source for ``language``.

    ``hub:<dataset id>:<treebank config>`` names the treebank;
    ``hub:<dataset id>`` takes the paper's treebank of the language
    (``languages.PAPER_UD_TREEBANKS``). UD has no canonical script-free Hub
    copy, so the dataset id is explicit. ``validation`` is the treebank's dev
    set; a PUD treebank has only a test set, so the validation of a language
    whose paper treebank is PUD comes from its main treebank
    (``languages.VALIDATION_UD_TREEBANKS``), and naming a PUD treebank for it is an error.
    """
    parts = source.split(":")
    if len(parts) == 3 and parts[1] and parts[2]:
        _check_has_split(parts[2], language, split)
        return parts[1], parts[2], split
    if len(parts) == 2 and parts[1]:
        treebank = PAPER_UD_TREEBANKS.get(language)
        if treebank is None:
            raise DataError(f"no paper UD treebank for language {language!r}: "
                            f"name one as 'hub:{parts[1]}:<treebank config>'", source)
        if split != TEST and _test_only(treebank):
            treebank = VALIDATION_UD_TREEBANKS.get(language, treebank)
        _check_has_split(treebank, language, split)
        return parts[1], treebank, split
    raise DataError("PoS Hub source must be 'hub:<dataset id>' or 'hub:<dataset id>:<treebank config>'",
                    source)


def _test_only(treebank: str) -> bool:
    """PUD treebanks (the Parallel UD sentences) are released as a test set only."""
    return treebank.endswith("_pud")


def _check_has_split(treebank: str, language: str, split: str) -> None:
    if split != TEST and _test_only(treebank):
        raise SpecError(f"pos {split} ({language}): UD treebank {treebank} has only a test set; "
                        f"name another treebank as 'hub:<dataset id>:<treebank config>' or give a local file")


def _hub_examples(source: str, language: str, split: str, limit: int | None) -> list[TaggedSentence]:
    """UD from a Hub dataset with ``tokens`` and ``upos`` columns (see ``hub_dataset``)."""
    from trainables.hub import load_hub_split

    dataset_id, config, split = hub_dataset(source, language, split)
    dataset = load_hub_split(dataset_id, config, split)
    names = dataset.features["upos"].feature.names if hasattr(dataset.features["upos"], "feature") else None
    sentences = []
    for row in dataset:
        tags = [names[t] if names else t for t in row["upos"]]
        tags = [t if t in UPOS_LABELS else "" for t in tags]
        sentences.append(TaggedSentence(tuple(row["tokens"]), tuple(tags)))
        if limit is not None and len(sentences) >= limit:
            break
    return sentences
