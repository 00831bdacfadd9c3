"""Parallel sentences for realignment: local files and OPUS-100 from the Hub.

Sources, per language (English is always the first side):

- ``{"source": PATH_EN, "target": PATH_XX}``: two line-aligned files;
- ``PATH.tsv``: ``english<TAB>translation`` a line;
- ``hub`` / ``hub:Helsinki-NLP/opus-100``: OPUS-100's ``en-xx`` training split.

A mismatch in line counts, a TSV line without exactly two fields, or a
missing file is a DataError with the file (and line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainables.errors import DataError

OPUS100 = "Helsinki-NLP/opus-100"
SentencePair = tuple[str, str]


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError("parallel file not found", path)
    with path.open(encoding="utf-8") as handle:
        return [line.rstrip("\n").rstrip("\r") for line in handle]


def read_line_aligned(source: str | Path, target: str | Path, limit: int | None = None) -> list[SentencePair]:
    source_lines, target_lines = _read_lines(Path(source)), _read_lines(Path(target))
    if len(source_lines) != len(target_lines):
        raise DataError(f"parallel files differ in length: {len(source_lines)} lines vs "
                        f"{len(target_lines)} in {target}", source)
    pairs = list(zip(source_lines, target_lines))
    return pairs[:limit] if limit is not None else pairs


def read_tsv(path: str | Path, limit: int | None = None) -> list[SentencePair]:
    path = Path(path)
    pairs = []
    for number, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise DataError(f"expected 'english<TAB>translation', found {len(fields)} fields", path, number)
        pairs.append((fields[0], fields[1]))
        if limit is not None and len(pairs) >= limit:
            break
    return pairs


def opus100_dataset(source: str, language: str) -> tuple[str, str, str]:
    """(dataset id, config, split) of a ``hub`` / ``hub:<id>`` parallel source for ``language``."""
    dataset_id = OPUS100 if source == "hub" else source[len("hub:"):]
    return dataset_id, "-".join(sorted(["en", language])), "train"


def read_opus100(language: str, dataset_id: str = OPUS100, limit: int | None = None) -> list[SentencePair]:
    """OPUS-100 en-xx training pairs (the config name lists the two codes alphabetically)."""
    from trainables.hub import load_hub_split

    config = "-".join(sorted(["en", language]))
    split = "train" if limit is None else f"train[:{limit}]"
    dataset = load_hub_split(dataset_id, config, split)
    return [(row["translation"]["en"], row["translation"][language]) for row in dataset]


def load_parallel(language: str, source: Any, limit: int | None = None) -> list[SentencePair]:
    """Sentence pairs (english, translation) of one language from a resolved source."""
    if isinstance(source, dict):
        return read_line_aligned(source["source"], source["target"], limit)
    if source == "hub":
        return read_opus100(language, limit=limit)
    if isinstance(source, str) and source.startswith("hub:"):
        return read_opus100(language, source[len("hub:"):], limit)
    return read_tsv(source, limit)
