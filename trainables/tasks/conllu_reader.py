"""Reading UD CoNLL-U files: words and UPOS tags, with file and line on errors.

Multi-word token lines (``1-2``) and empty nodes (``1.1``) are skipped: the
syntactic words carry the UPOS tags. The reader is hand-written rather
than ``conllu.parse_incr`` because a malformed line must be reported with
its file and line number, which that parser does not give.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from trainables.errors import DataError
from trainables.tasks.labels import UPOS_LABELS
from trainables.tasks.splits import split_file_names
from trainables.tasks.token_classification import TaggedSentence

_UPOS = frozenset(UPOS_LABELS)


def read_conllu(path: str | Path, limit: int | None = None) -> list[TaggedSentence]:
    return list(iter_conllu(path, limit))


def iter_conllu(path: str | Path, limit: int | None = None) -> Iterator[TaggedSentence]:
    path = Path(path)
    if not path.is_file():
        raise DataError("CoNLL-U file not found", path)
    words: list[str] = []
    tags: list[str] = []
    count = 0
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.rstrip("\n").rstrip("\r")
            if not line.strip():
                if words:
                    yield TaggedSentence(tuple(words), tuple(tags))
                    count += 1
                    if limit is not None and count >= limit:
                        return
                words, tags = [], []
                continue
            if line.startswith("#"):
                continue
            columns = line.split("\t")
            if len(columns) != 10:
                raise DataError(f"expected 10 tab-separated columns, found {len(columns)}", path, number)
            token_id = columns[0]
            if "-" in token_id or "." in token_id:
                continue   # multi-word token or empty node
            if not token_id.isdigit():
                raise DataError(f"bad token id {token_id!r}", path, number)
            upos = columns[3]
            if upos == "_":
                upos = ""   # unannotated: predicted but not scored
            elif upos not in _UPOS:
                raise DataError(f"unknown UPOS tag {upos!r}", path, number)
            words.append(columns[1])
            tags.append(upos)
    if words and (limit is None or count < limit):
        yield TaggedSentence(tuple(words), tuple(tags))


def treebank_files(directory: str | Path, split: str) -> list[Path]:
    """The ``*-ud-<split>.conllu`` files of a UD treebank directory (or of its treebanks);
    ``validation`` reads UD's ``*-ud-dev.conllu``."""
    directory = Path(directory)
    names = split_file_names(split)
    for name in names:
        files = sorted(directory.glob(f"*-ud-{name}*.conllu")) or sorted(
            directory.glob(f"*/*-ud-{name}*.conllu"))
        if files:
            return files
    raise DataError(f"no {' or '.join(f'*-ud-{name}.conllu' for name in names)} file in treebank directory",
                    directory)
