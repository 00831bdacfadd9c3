"""Assemble the realignment corpus of a trial: parallel sentences -> words -> aligned pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from trainables.realignment.aligners import AlignmentRequest
from trainables.realignment.alignment_cache import cached_alignment
from trainables.realignment.muse import MUSE_SOURCE, muse_dictionary
from trainables.realignment.parallel_data import load_parallel
from trainables.realignment.pretokenization import DEFAULT_PRETOKENIZER, check_pretokenizer, pretokenize
from trainables.realignment.word_pairs import AlignedPair


def tokenized_pairs(language: str, sentences: Sequence[tuple[str, str]],
                    pretokenizer: str = DEFAULT_PRETOKENIZER) -> list[tuple[list[str], list[str]]]:
    """Both sides of every sentence pair split into words (English first)."""
    check_pretokenizer(pretokenizer)
    return [(pretokenize(english, "en", pretokenizer), pretokenize(translation, language, pretokenizer))
            for english, translation in sentences]


def dictionary_path(language: str, dictionaries: dict[str, str] | None) -> Path | None:
    """The dictionary file of ``language``: a local path, or MUSE's (``muse``) fetched into the cache."""
    if not dictionaries or language not in dictionaries:
        return None
    if dictionaries[language] == MUSE_SOURCE:
        return muse_dictionary(language)
    return Path(dictionaries[language])


def realignment_pairs(languages: Sequence[str], parallel: dict[str, Any], aligner: str, *,
                      dictionaries: dict[str, str] | None = None,
                      alignments: dict[str, str] | None = None,
                      aligner_settings: dict[str, Any] | None = None,
                      max_pairs: int | None = None, encoder: Any = None,
                      pretokenizer: str = DEFAULT_PRETOKENIZER,
                      report: dict[str, Any] | None = None) -> dict[str, list[AlignedPair]]:
    """Aligned pairs of every realignment language, in the order given.

    Sentence pairs keep the order of their source, so that a pharaoh
    alignment file lines up with the sentences it was made for (its word
    indices must come from the same ``pretokenizer``). Alignments come
    from the shared cache: a grid aligns each corpus once. ``report``,
    when given, receives per language the pre-tokenizer and segmenter, the
    sentence pairs read, those skipped (a side without words) and the
    cache key.
    """
    result = {}
    for language in languages:
        sentences = load_parallel(language, parallel[language], max_pairs)
        tokenized = tokenized_pairs(language, sentences, pretokenizer)
        request = AlignmentRequest(
            language=language, tokenized=tokenized,
            dictionary_path=dictionary_path(language, dictionaries),
            alignment_path=Path(alignments[language]) if alignments and language in alignments else None,
            settings=dict(aligner_settings or {}), encoder=encoder, pretokenizer=pretokenizer)
        outcome = cached_alignment(aligner, request)
        result[language] = outcome.pairs
        if report is not None:
            report[language] = {"pretokenizer": outcome.pretokenizer, "segmenter": outcome.segmenter,
                                "lines": outcome.lines, "skipped": outcome.skipped,
                                "pairs": len(outcome.pairs), "alignment_key": outcome.key}
    return result
