"""Word pairs for realignment: aligned sentence pairs and how they are made.

An ``AlignedPair`` is one parallel sentence (English side first), split
into words by ``pretokenization``, with one-to-one links between word
indices. Two sources of links live here: a bilingual dictionary in MUSE
format and precomputed alignment files in pharaoh ``i-j`` format; the
in-process statistical and similarity aligners build on the same types.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from trainables.errors import DataError

Link = tuple[int, int]


@dataclass(frozen=True)
class AlignedPair:
    language: str                    # the non-English side
    source_words: tuple[str, ...]    # English
    target_words: tuple[str, ...]
    links: tuple[Link, ...]          # (source index, target index), one-to-one


def one_to_one(links: Iterable[Link]) -> list[Link]:
    """Keep the links whose source and target word each take part in no other link."""
    links = sorted(set(links))
    source_count = Counter(i for i, _ in links)
    target_count = Counter(j for _, j in links)
    return [(i, j) for i, j in links if source_count[i] == 1 and target_count[j] == 1]


# ---------------------------------------------------------------- dictionary

def load_muse_dictionary(path: str | Path) -> dict[str, frozenset[str]]:
    """Read a MUSE bilingual dictionary: one ``english<space or tab>foreign`` pair a line.

    An English word may appear on several lines (several translations).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("dictionary file not found", path)
    entries: dict[str, set[str]] = defaultdict(set)
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            parts = line.split("\t") if "\t" in line else line.split()
            if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
                raise DataError(f"expected 'english<TAB>translation', got {line[:60]!r}", path, number)
            entries[parts[0].strip()].add(parts[1].strip())
    if not entries:
        raise DataError("dictionary is empty", path)
    return {word: frozenset(translations) for word, translations in entries.items()}


def dictionary_links(source_words: Sequence[str], target_words: Sequence[str],
                     dictionary: dict[str, frozenset[str]]) -> list[Link]:
    """Links of one sentence pair from a bilingual dictionary.

    The original implementation's rule: an English word is kept only when
    exactly one of its translations occurs in the target sentence, and
    exactly once; then the links are made one-to-one (an English word that
    occurs twice, or two English words claiming the same target word, are
    dropped).
    """
    target_positions: dict[str, list[int]] = defaultdict(list)
    for j, word in enumerate(target_words):
        target_positions[word].append(j)
    links = []
    for i, word in enumerate(source_words):
        translations = dictionary.get(word) or dictionary.get(word.lower())
        if not translations:
            continue
        present = [t for t in translations if t in target_positions]
        if len(present) == 1 and len(target_positions[present[0]]) == 1:
            links.append((i, target_positions[present[0]][0]))
    return one_to_one(links)


# ------------------------------------------------------------------- pharaoh

def parse_pharaoh_line(line: str, path: object = None, number: int | None = None,
                       include_possible: bool = False) -> list[Link]:
    """Parse ``0-1 2-3 4p5`` (0-based); ``p`` marks a possible link."""
    links = []
    for token in line.split():
        sep = "p" if "p" in token else "-"
        if sep == "p" and not include_possible:
            continue
        left, _, right = token.partition(sep)
        if not (left.isdigit() and right.isdigit()):
            raise DataError(f"bad alignment link {token!r} (expected i-j)", path, number)
        links.append((int(left), int(right)))
    return links


def read_pharaoh(path: str | Path) -> list[list[Link]]:
    """Read an alignment file in pharaoh format, one sentence pair a line."""
    path = Path(path)
    if not path.is_file():
        raise DataError("alignment file not found", path)
    with path.open(encoding="utf-8") as handle:
        return [parse_pharaoh_line(line, path, number) for number, line in enumerate(handle, 1)]


def pharaoh_pairs(language: str, tokenized: Sequence[tuple[Sequence[str], Sequence[str]]],
                  alignments: Sequence[Sequence[Link]], path: object = None) -> list[AlignedPair]:
    """Aligned pairs from precomputed links; links outside a sentence are an error."""
    if len(alignments) != len(tokenized):
        raise DataError(f"{len(alignments)} alignment lines for {len(tokenized)} sentence pairs", path)
    pairs = []
    for number, ((src, tgt), links) in enumerate(zip(tokenized, alignments), 1):
        for i, j in links:
            if i >= len(src) or j >= len(tgt):
                raise DataError(f"link {i}-{j} outside a sentence pair of {len(src)}x{len(tgt)} words",
                                path, number)
        kept = one_to_one(links)
        if kept:
            pairs.append(AlignedPair(language, tuple(src), tuple(tgt), tuple(kept)))
    return pairs
