"""Word pairs for realignment: aligned sentence pairs and how they are made.

An ``AlignedPair`` is one parallel sentence (English side first), split
into words by ``pretokenization``, with one-to-one links between word
indices. Two sources of links live here: a bilingual dictionary in MUSE
format and precomputed alignment files in pharaoh ``i-j`` format; the
in-process statistical and similarity aligners build on the same types.

Both follow the AlignFreeze reference implementation by default: its
dictionary reading and lookup rule (``bilingual_dictionary``,
``dictionary_links``) and the filter its loader applies to every
alignment file (``loaded_links``). ``tests/parity/test_dico_pairs.py``
replays the reference's own output.
"""

from __future__ import annotations

import gc
import re
from collections import Counter, defaultdict
from contextlib import contextmanager
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


def loaded_links(links: Sequence[Link], source_words: Sequence[str], target_words: Sequence[str]) -> list[Link]:
    """The reference's filter on the links of an alignment file, as it loads them.

    A link is kept when its English index and its target index each occur
    in no other link of the line (a repeated link counts twice), and when
    its two words are not the same string; the order of the line is kept.
    """
    source_count = Counter(i for i, _ in links)
    target_count = Counter(j for _, j in links)
    return [(i, j) for i, j in links
            if source_count[i] == 1 and target_count[j] == 1 and source_words[i] != target_words[j]]


# ---------------------------------------------------------------- dictionary

@dataclass(frozen=True)
class BilingualDictionary:
    """A bilingual dictionary as the dictionary aligner looks it up.

    ``forward`` maps an English word to its translations, ``backward`` a
    translation to its English words. Read ``symmetric`` (the reference as
    it ran), both map every word of an entry, on either side, to the other
    word: the reference reads ``en-xx.txt`` and ``xx-en.txt``, and its
    download script saved the en-xx dictionary under both names.
    """
    forward: dict[str, frozenset[str]]
    backward: dict[str, frozenset[str]]


@contextmanager
def _collector_paused():
    """No cyclic garbage collection inside: building a dictionary makes some 10^5 small containers,
    none in a cycle, and in a trial process (torch and transformers loaded: ~400k tracked
    objects) the collector's passes over them took about 2/3 of a MUSE dictionary's loading."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def bilingual_dictionary(entries: Iterable[tuple[str, str]], symmetric: bool = True) -> BilingualDictionary:
    """The dictionary of ``(english, translation)`` entries, as the reference builds it.

    Entries whose two sides are the same string are left out; matching is
    exact (no case folding, no Unicode normalisation). Read ``symmetric``,
    ``forward`` and ``backward`` hold the same sets (every word maps to its
    partners in either column): they are one mapping, held once (a full
    MUSE dictionary, ~10^5 entries, takes some 40 MB instead of 80).
    """
    forward: dict[str, set[str]] = defaultdict(set)
    backward: dict[str, set[str]] = forward if symmetric else defaultdict(set)
    with _collector_paused():
        for english, foreign in entries:
            if english == foreign:
                continue
            forward[english].add(foreign)
            backward[foreign].add(english)
        frozen_forward = _frozen(forward)
        return BilingualDictionary(frozen_forward, frozen_forward if symmetric else _frozen(backward))


def _frozen(mapping: dict[str, set[str]]) -> dict[str, frozenset[str]]:
    """``mapping`` with frozen values, each set freed as its frozen copy is made (a lower peak)."""
    frozen = dict(mapping)
    mapping.clear()
    for word, words in frozen.items():
        frozen[word] = frozenset(words)
    return frozen


def load_muse_dictionary(path: str | Path, symmetric: bool = True) -> BilingualDictionary:
    """Read a MUSE bilingual dictionary: one ``english<TAB or space>foreign`` entry a line.

    An English word may have several lines (several translations). An
    entry with a multi-word side (``ice cream<TAB>glace``) can never match
    a single word and is skipped, as the reference skips it; any other
    line that is not two fields is an error (the reference drops it
    silently). See ``bilingual_dictionary`` for the rest.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("dictionary file not found", path)
    entries = []
    with path.open(encoding="utf-8") as handle, _collector_paused():
        for number, line in enumerate(handle, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) == 2:
                entries.append((fields[0], fields[1]))
                continue
            tab_fields = line.strip().split("\t")
            if len(tab_fields) == 2 and all(field.strip() for field in tab_fields):
                continue     # a multi-word entry
            raise DataError(f"expected 'english<TAB>translation', got {line.strip()[:60]!r}", path, number)
    if not entries:
        raise DataError("dictionary is empty", path)
    return bilingual_dictionary(entries, symmetric)


def dictionary_links(source_words: Sequence[str], target_words: Sequence[str],
                     dictionary: BilingualDictionary, lowercase_fallback: bool = False) -> list[Link]:
    """Links of one sentence pair from a bilingual dictionary, by the reference's rule.

    An English word is linked when exactly one word type among its
    translations occurs in the target sentence, that word occurs there
    exactly once, and exactly one English token of the sentence (the word
    itself) is among that word's English translations: a repeated English
    word, or two English words claiming one target word, give no link.
    ``lowercase_fallback`` (not the reference) also looks up the
    lower-cased English word when the word itself is not in the dictionary.
    Links come in increasing English index and are one-to-one.
    """
    target_positions: dict[str, list[int]] = defaultdict(list)
    for j, word in enumerate(target_words):
        target_positions[word].append(j)
    links = []
    for i, word in enumerate(source_words):
        translations = dictionary.forward.get(word)
        if translations is None and lowercase_fallback:
            translations = dictionary.forward.get(word.lower())
        if not translations:
            continue
        present = [t for t in translations if t in target_positions]
        if len(present) != 1 or len(target_positions[present[0]]) != 1:
            continue
        english = dictionary.backward.get(present[0], frozenset())
        claims = sum(1 for w in source_words if w in english or (lowercase_fallback and w.lower() in english))
        if claims != 1:
            continue
        links.append((i, target_positions[present[0]][0]))
    return links


# ------------------------------------------------------------------- pharaoh

# ``i-j`` (a sure link) or ``ipj`` (a possible one), ASCII digits only: ``str.isdigit``
# also takes "²" or "١", which ``int`` then refuses or reads as another number.
_PHARAOH_LINK = re.compile(r"([0-9]+)([-p])([0-9]+)")
_PHARAOH_LINE = re.compile(r"\s*(?:[0-9]+[-p][0-9]+(?:\s+|$))*")


def check_pharaoh_line(line: str, path: object = None, number: int | None = None) -> None:
    """``parse_pharaoh_line``'s check without building the links (one regex: a 1M-line file in ~1 s)."""
    if _PHARAOH_LINE.fullmatch(line) is None:
        parse_pharaoh_line(line, path, number)     # raises, naming the bad token


def parse_pharaoh_line(line: str, path: object = None, number: int | None = None,
                       include_possible: bool = False) -> list[Link]:
    """Parse ``0-1 2-3 4p5`` (0-based); ``p`` marks a possible link. Any other token is a DataError."""
    links = []
    for token in line.split():
        match = _PHARAOH_LINK.fullmatch(token)
        if match is None:
            shown = token if len(token) <= 40 else token[:37] + "..."
            raise DataError(f"bad alignment link {shown!r} (expected i-j, or ipj for a possible link)",
                            path, number)
        if match.group(2) == "p" and not include_possible:
            continue
        links.append((int(match.group(1)), int(match.group(3))))
    return links


def read_pharaoh(path: str | Path) -> list[list[Link]]:
    """Read an alignment file in pharaoh format, one sentence pair a line.

    Its indices are word indices of this tool's pre-tokenization of the
    same parallel data (English first), under the same ``pretokenizer``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("alignment file not found", path)
    with path.open(encoding="utf-8") as handle:
        return [parse_pharaoh_line(line, path, number) for number, line in enumerate(handle, 1)]


def pharaoh_links(tokenized: Sequence[tuple[Sequence[str], Sequence[str]]],
                  alignments: Sequence[Sequence[Link]], path: object = None) -> list[list[Link]]:
    """Precomputed links of every sentence pair, filtered as the reference loads them (``loaded_links``).

    One alignment line per sentence pair; a link outside its sentence pair
    is an error.
    """
    if len(alignments) != len(tokenized):
        raise DataError(f"{len(alignments)} alignment lines for {len(tokenized)} sentence pairs", path)
    result = []
    for number, ((src, tgt), links) in enumerate(zip(tokenized, alignments), 1):
        for i, j in links:
            if i >= len(src) or j >= len(tgt):
                raise DataError(f"link {i}-{j} outside a sentence pair of {len(src)}x{len(tgt)} words",
                                path, number)
        result.append(loaded_links(links, src, tgt))
    return result


def pharaoh_pairs(language: str, tokenized: Sequence[tuple[Sequence[str], Sequence[str]]],
                  alignments: Sequence[Sequence[Link]], path: object = None) -> list[AlignedPair]:
    """Aligned pairs from precomputed links (``pharaoh_links``); a pair left without a link is left out."""
    return [AlignedPair(language, tuple(src), tuple(tgt), tuple(links))
            for (src, tgt), links in zip(tokenized, pharaoh_links(tokenized, alignments, path)) if links]


def pharaoh_line(links: Iterable[Link]) -> str:
    """Links as one line of a pharaoh file: ``0-1 2-3`` (empty when there is none)."""
    return " ".join(f"{i}-{j}" for i, j in links)
