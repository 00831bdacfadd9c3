"""Reading NER files in the three formats that circulate, with file and line on errors.

One sentence per block, blocks separated by blank lines; one word per line:

* WikiANN (as distributed with wikineural and ../shared/data/ner/wikiann):
  ``idx<TAB>token<TAB>tag``.
* XTREME's PAN-X: ``lang:token<TAB>tag`` (the prefix is the language code).
* UniversalNER: ``idx<TAB>token<TAB>tag<TAB>misc<TAB>misc`` with ``#`` comment
  lines (CoNLL-style iob2).

The format is recognised per file from its first word line; a later line
in another shape is an error. No word line of any format starts with
``#``, so ``#`` lines are comments everywhere. Within a sentence the
index column must grow by one: a missing blank line shows up there.

Tags are BIO over PER/ORG/LOC (``labels.NER_LABELS``). A well-formed tag
of another entity type (UNER's ``OTH``, CoNLL's ``MISC``) becomes ``O``,
since the paper's label set has no such class; the reader counts them so
the loader can say how many. Anything else (``X-PER``, ``B-``) is an error.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from trainables.errors import DataError
from trainables.tasks.labels import NER_LABELS
from trainables.tasks.splits import split_file_names
from trainables.tasks.token_classification import TaggedSentence

_KNOWN = frozenset(NER_LABELS)
_FOREIGN = re.compile(r"^[BI]-[A-Za-z][A-Za-z_]*$")   # well-formed BIO of another type
_XTREME_PREFIX = re.compile(r"^([a-z]{2,3}(?:[-_][A-Za-z]+)?):(.+)$")

WIKIANN, XTREME, UNER = "wikiann", "xtreme", "uner"


@dataclass
class NerFile:
    """The sentences of one file, and the foreign tags that became ``O``."""
    sentences: list[TaggedSentence]
    format: str | None = None
    foreign_tags: Counter = field(default_factory=Counter)


def ner_tag(tag: str, foreign: Counter, path: Path, line: int) -> str:
    """``tag`` if in the label set, ``O`` (counted) for another entity type, else an error."""
    if tag in _KNOWN:
        return tag
    if _FOREIGN.match(tag):
        foreign[tag] += 1
        return "O"
    raise DataError(f"unknown NER tag {tag!r} (expected O or B-/I- of an entity type)", path, line)


def _line_format(columns: list[str]) -> str | None:
    if len(columns) == 2 and _XTREME_PREFIX.match(columns[0]):
        return XTREME
    if len(columns) == 3 and columns[0].isdigit():
        return WIKIANN
    if len(columns) == 5 and columns[0].isdigit():
        return UNER
    return None


def read_ner_file(path: str | Path, language: str | None = None,
                  limit: int | None = None) -> NerFile:
    """Sentences of one NER file in any of the three formats.

    For XTREME files, a ``language`` whose code differs from a line's prefix
    is an error (the wrong file for the language).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("NER file not found", path)
    result = NerFile([])
    words: list[str] = []
    tags: list[str] = []
    previous_index: int | None = None

    def close() -> bool:
        nonlocal words, tags, previous_index
        if words:
            result.sentences.append(TaggedSentence(tuple(words), tuple(tags)))
        words, tags, previous_index = [], [], None
        return limit is not None and len(result.sentences) >= limit

    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.rstrip("\n").rstrip("\r")
            if not line.strip():
                if close():
                    return result
                continue
            if line.startswith("#"):
                continue
            columns = line.split("\t")
            shape = _line_format(columns)
            if shape is None:
                raise DataError(f"not an NER word line ({len(columns)} tab-separated columns; "
                                "expected idx<TAB>token<TAB>tag, lang:token<TAB>tag or "
                                "UNER iob2 with 5 columns)", path, number)
            if result.format is None:
                result.format = shape
            elif shape != result.format:
                raise DataError(f"{shape} line in a {result.format} file", path, number)
            if shape == XTREME:
                prefix, token = _XTREME_PREFIX.match(columns[0]).groups()  # type: ignore[union-attr]
                if language is not None and prefix != language:
                    raise DataError(f"line of language {prefix!r} in data read for {language!r}",
                                    path, number)
                tag = columns[1]
            else:
                index = int(columns[0])
                if previous_index is not None and index != previous_index + 1:
                    raise DataError(f"word index {index} after {previous_index} "
                                    "(a missing blank line between sentences?)", path, number)
                previous_index = index
                token, tag = columns[1], columns[2]
            if not token.strip():
                raise DataError("empty token", path, number)
            words.append(token)
            tags.append(ner_tag(tag.strip(), result.foreign_tags, path, number))
    close()
    return result


def ner_files(directory: str | Path, language: str, split: str) -> list[Path]:
    """The files of ``language`` and ``split`` in an NER data directory.

    Layouts, tried in order:
    ``<dir>/<lang>/<split>*`` (the bundled WikiANN slices),
    ``<dir>/<split>-<lang>.tsv`` (XTREME PAN-X, any suffix after the language),
    ``<dir>/<lang>_*-<split>*.iob2`` (UniversalNER, e.g. ``en_pud-ud-test.iob2``).
    ``validation`` files are named ``dev``, ``validation`` or ``val`` (WikiANN's ``val.conllu``).
    """
    directory = Path(directory)
    patterns = tuple(pattern for name in split_file_names(split)
                     for pattern in (f"{language}/{name}*", f"{name}-{language}.*", f"{name}-{language}",
                                     f"{language}_*-{name}*.iob2"))
    for pattern in patterns:
        files = sorted(f for f in directory.glob(pattern) if f.is_file())
        if files:
            return files
    raise DataError(f"no NER file for language {language!r}, split {split!r} "
                    f"(looked for {', '.join(patterns)})", directory)
