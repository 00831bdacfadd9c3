"""Assemble the realignment corpus of a trial: parallel sentences -> words -> aligned pairs."""

from __future__ import annotations

from typing import Any, Sequence

from trainables.realignment.aligners import AlignmentRequest
from trainables.realignment.alignment_cache import cached_alignment
from trainables.realignment.parallel_data import load_parallel
from trainables.realignment.pretokenization import pretokenize
from trainables.realignment.word_pairs import AlignedPair


def tokenized_pairs(language: str, sentences: Sequence[tuple[str, str]]) -> list[tuple[list[str], list[str]]]:
    return [(pretokenize(english, "en"), pretokenize(translation, language))
            for english, translation in sentences]


def realignment_pairs(languages: Sequence[str], parallel: dict[str, Any], aligner: str, *,
                      dictionaries: dict[str, str] | None = None,
                      alignments: dict[str, str] | None = None,
                      aligner_settings: dict[str, Any] | None = None,
                      max_pairs: int | None = None, encoder: Any = None,
                      report: dict[str, Any] | None = None) -> dict[str, list[AlignedPair]]:
    """Aligned pairs of every realignment language, in the order given.

    Sentence pairs keep the order of their source, so that a pharaoh
    alignment file lines up with the sentences it was made for. Alignments
    come from the shared cache: a grid aligns each corpus once. ``report``,
    when given, receives per language the segmenter, the sentence pairs
    read, those skipped (a side without words) and the cache key.
    """
    from pathlib import Path

    result = {}
    for language in languages:
        sentences = load_parallel(language, parallel[language], max_pairs)
        tokenized = tokenized_pairs(language, sentences)
        request = AlignmentRequest(
            language=language, tokenized=tokenized,
            dictionary_path=Path(dictionaries[language]) if dictionaries and language in dictionaries else None,
            alignment_path=Path(alignments[language]) if alignments and language in alignments else None,
            settings=dict(aligner_settings or {}), encoder=encoder)
        outcome = cached_alignment(aligner, request)
        result[language] = outcome.pairs
        if report is not None:
            report[language] = {"segmenter": outcome.segmenter, "lines": outcome.lines,
                                "skipped": outcome.skipped, "pairs": len(outcome.pairs),
                                "alignment_key": outcome.key}
    return result
