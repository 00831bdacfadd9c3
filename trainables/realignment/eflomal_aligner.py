"""The ``eflomal`` aligner: statistical word alignment trained on the corpus itself.

In the role fast_align played in the original implementation, without a
C++ build: eflomal (a Bayesian HMM + fertility aligner sampled with Gibbs
sampling, installed from PyPI with its binary) is trained on the
realignment corpus, aligns it in both directions, and the two directions
are symmetrised here (``grow-diag-final-and`` by default, or
``intersection``); the links are then made one-to-one.

Determinism: eflomal 2.0 seeds its sampler from ``/dev/urandom`` and its
API takes no seed, so two runs on the same corpus can differ in a few
links. The alignment cache (``alignment_cache``) computes a corpus's
alignment once, so every trial of a grid sees the same links.

Sentence pairs with a side without words (empty, or only punctuation) are
skipped and counted, not given to eflomal. At most ``max_pairs`` sentence
pairs of a corpus (its first) are read and aligned, as a stream: a corpus
of any size costs eflomal's own memory for those pairs only.
"""

from __future__ import annotations

import logging
import tempfile
import time
from array import array
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from trainables.errors import unknown_name
from trainables.realignment.pretokenization import contains_word
from trainables.realignment.word_pairs import AlignedPair, Link, one_to_one

logger = logging.getLogger(__name__)

SYMMETRISATIONS = ("grow-diag-final-and", "intersection")

# eflomal's own defaults, except 3 samplers (its Python class default),
# which averages out part of the sampling noise on small corpora.
DEFAULT_SETTINGS: dict[str, Any] = {
    "symmetrisation": "grow-diag-final-and",
    "model": 3,              # 1 = IBM1, 2 = + HMM, 3 = + fertility
    "samplers": 3,
    "iterations": 1.0,       # eflomal's rel_iterations: a factor on its default iteration counts
    "null_prior": 0.2,
    # Sentence pairs eflomal is trained on, per corpus: the first N. Over ten
    # times what a realignment draws per language (the paper's longest, QA
    # with steps: auto: about 37,000 steps x 16 pairs over 34 languages,
    # about 18,000 a language), where a statistical aligner's quality has
    # levelled off; it bounds the one-off alignment to minutes and its
    # memory to a few hundred MB.
    "max_pairs": 200_000,
}

PROGRESS_EVERY = 100_000     # a progress line every N sentence pairs read

_NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def resolved_settings(settings: dict[str, Any] | None) -> dict[str, Any]:
    """The full settings of a run: the defaults updated with ``settings``, checked."""
    from trainables.settings_schema import ALIGNER_SETTINGS, check_section

    # keys, types and ranges, declared in trainables.settings_schema
    return {**DEFAULT_SETTINGS, **check_section(settings, ALIGNER_SETTINGS["eflomal"], "aligner_settings")}


def symmetrised_links(forward: Sequence[Link], reverse: Sequence[Link], method: str,
                      source_length: int, target_length: int) -> list[Link]:
    """Combine the links of both directions (each as (source, target) pairs).

    ``intersection``: the links both directions agree on.
    ``grow-diag-final-and`` (Koehn et al. 2003, as in Moses): start from
    the intersection; repeatedly add a union link that neighbours (also
    diagonally) a kept link and covers a word not yet aligned; finally add
    the links of each direction whose source and target words are both
    still unaligned.
    """
    forward, reverse = set(forward), set(reverse)
    alignment = forward & reverse
    if method == "intersection":
        return sorted(alignment)
    if method != "grow-diag-final-and":
        raise unknown_name("symmetrisation", method, SYMMETRISATIONS)
    union = forward | reverse
    aligned_source = {i for i, _ in alignment}
    aligned_target = {j for _, j in alignment}

    def add(i: int, j: int) -> None:
        alignment.add((i, j))
        aligned_source.add(i)
        aligned_target.add(j)

    added = True
    while added:   # grow-diag
        added = False
        for i in range(source_length):
            for j in range(target_length):
                if (i, j) not in alignment:
                    continue
                for di, dj in _NEIGHBOURS:
                    ni, nj = i + di, j + dj
                    if (ni, nj) in union and (ni, nj) not in alignment and (
                            ni not in aligned_source or nj not in aligned_target):
                        add(ni, nj)
                        added = True
    for direction in (forward, reverse):   # final-and
        for i, j in sorted(direction):
            if i not in aligned_source and j not in aligned_target:
                add(i, j)
    return sorted(alignment)


def _eflomal_word(word: str) -> str:
    # eflomal reads space-separated words: a word must hold no space and not be empty.
    return "_".join(word.split()) or "_"


def _parse_links(line: str) -> list[Link]:
    links = []
    for token in line.split():
        left, _, right = token.partition("-")
        links.append((int(left), int(right)))
    return links


def eflomal_link_lines(tokenized: Iterable[tuple[Sequence[str], Sequence[str]]],
                       settings: dict[str, Any] | None = None,
                       progress: Callable[[str], None] | None = None, language: str = "") -> Iterator[list[Link]]:
    """One-to-one links of every sentence pair, in order ([] for a pair not aligned).

    eflomal is trained on the alignable pairs among the first
    ``max_pairs`` of ``tokenized`` themselves; the pairs beyond are not
    aligned. ``tokenized`` is read once, as a stream: the words go to
    eflomal's input files as they come, and only the sentence lengths stay
    in memory; the links are read back from eflomal's output line by line.
    """
    import eflomal

    settings = resolved_settings(settings)
    limit = settings["max_pairs"]
    say = progress or logger.info
    name = f" {language}" if language else ""
    source_lengths, target_lengths = array("l"), array("l")    # -1: not given to eflomal
    trained = beyond = 0
    with tempfile.TemporaryDirectory(prefix="alignfreeze-eflomal-") as tmp:
        source_path, target_path = Path(tmp, "source"), Path(tmp, "target")
        with open(source_path, "w", encoding="utf-8") as source_file, \
                open(target_path, "w", encoding="utf-8") as target_file:
            for number, (src, tgt) in enumerate(tokenized):
                if number >= limit:
                    beyond += 1
                elif contains_word(src) and contains_word(tgt):
                    source_file.write(" ".join(_eflomal_word(w) for w in src) + "\n")
                    target_file.write(" ".join(_eflomal_word(w) for w in tgt) + "\n")
                    source_lengths.append(len(src))
                    target_lengths.append(len(tgt))
                    trained += 1
                    if trained % PROGRESS_EVERY == 0:
                        say(f"eflomal{name}: {trained} sentence pairs read")
                    continue
                source_lengths.append(-1)
                target_lengths.append(-1)
        skipped = len(source_lengths) - trained - beyond
        say(f"eflomal{name}: training on {trained} sentence pairs"
            + (f" ({skipped} skipped: a side without words)" if skipped else "")
            + (f"; {beyond} beyond aligner_settings.max_pairs {limit} left unaligned" if beyond else ""))
        if not trained:
            yield from ([] for _ in source_lengths)
            return
        started = time.perf_counter()
        forward_path, reverse_path = Path(tmp, "forward"), Path(tmp, "reverse")
        aligner = eflomal.Aligner(model=settings["model"], n_samplers=settings["samplers"],
                                  rel_iterations=float(settings["iterations"]),
                                  null_prior=float(settings["null_prior"]))
        with open(source_path, encoding="utf-8") as source_file, open(target_path, encoding="utf-8") as target_file:
            aligner.align(source_file, target_file, links_filename_fwd=str(forward_path),
                          links_filename_rev=str(reverse_path), quiet=True)
        say(f"eflomal{name}: {trained} sentence pairs aligned in {time.perf_counter() - started:.0f} s")
        with open(forward_path, encoding="utf-8") as forward_file, open(reverse_path, encoding="utf-8") as reverse_file:
            for source_length, target_length in zip(source_lengths, target_lengths):
                if source_length < 0:
                    yield []
                    continue
                # Both files hold (source, target) links; eflomal leaves a line empty
                # for a sentence it could not align (e.g. over its length limit).
                forward = _parse_links(forward_file.readline())
                reverse = _parse_links(reverse_file.readline())
                links = symmetrised_links(forward, reverse, settings["symmetrisation"], source_length, target_length)
                yield one_to_one((i, j) for i, j in links if i < source_length and j < target_length)


def eflomal_links(tokenized: Sequence[tuple[Sequence[str], Sequence[str]]],
                  settings: dict[str, Any] | None = None) -> list[list[Link]]:
    """One-to-one links of every sentence pair of a list ([] for a pair not aligned); see ``eflomal_link_lines``."""
    return list(eflomal_link_lines(tokenized, settings))


def eflomal_pairs(request) -> list[AlignedPair]:
    """Aligned pairs of one language's corpus (``aligners`` dispatches ``eflomal`` here)."""
    links = eflomal_links(request.tokenized, request.settings)
    return [AlignedPair(request.language, tuple(src), tuple(tgt), tuple(kept))
            for (src, tgt), kept in zip(request.tokenized, links) if kept]
