"""The word aligners a trial can choose (``aligner:`` in the spec).

Each aligner turns pre-tokenized parallel sentences of one language into
``AlignedPair``s with one-to-one links. ``dico`` and ``pharaoh`` read
their links from files; ``eflomal`` and ``simalign`` compute them in
process (their modules are imported only when used).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from trainables.errors import SpecError, unknown_name
from trainables.realignment.pretokenization import DEFAULT_PRETOKENIZER
from trainables.realignment.word_pairs import (
    AlignedPair, Link, dictionary_links, load_muse_dictionary, loaded_links, pharaoh_links, read_pharaoh,
)

ALIGNER_NAMES = ("dico", "pharaoh", "eflomal", "simalign")

# ``aligner_settings`` of ``dico``; the defaults are the reference's rule.
DICO_SETTINGS: dict[str, Any] = {
    "symmetric": True,             # read each entry both ways (the reference as it ran; see word_pairs)
    "lowercase_fallback": False,   # look up "The" as "the" when "The" is not in the dictionary
}


@dataclass
class AlignmentRequest:
    """What an aligner needs for one language's corpus."""
    language: str
    tokenized: Sequence[tuple[Sequence[str], Sequence[str]]]   # (english words, target words)
    dictionary_path: Path | None = None     # dico
    alignment_path: Path | None = None      # pharaoh
    settings: dict[str, Any] = field(default_factory=dict)     # aligner-specific options
    encoder: Any = None                     # simalign: (model, tokenizer) of the trial
    pretokenizer: str = DEFAULT_PRETOKENIZER    # how ``tokenized`` was made (part of the cache key)


def check_aligner(name: str) -> str:
    if name not in ALIGNER_NAMES:
        raise unknown_name("aligner", name, ALIGNER_NAMES)
    return name


def dico_settings(settings: dict[str, Any] | None) -> dict[str, Any]:
    """The full ``dico`` settings: the defaults updated with ``settings``, checked."""
    from trainables.settings_schema import ALIGNER_SETTINGS, check_section

    return {**DICO_SETTINGS, **check_section(settings, ALIGNER_SETTINGS["dico"], "aligner_settings")}


def dictionary_alignment(request: AlignmentRequest) -> list[list[Link]]:
    """Links of every sentence pair of ``request`` (an empty list where none), by dictionary."""
    if request.dictionary_path is None:
        raise SpecError(f"aligner 'dico' needs a dictionary for language {request.language!r}")
    settings = dico_settings(request.settings)
    dictionary = load_muse_dictionary(request.dictionary_path, symmetric=settings["symmetric"])
    return [loaded_links(dictionary_links(src, tgt, dictionary, settings["lowercase_fallback"]), src, tgt)
            for src, tgt in request.tokenized]


def alignment_links(aligner: str, request: AlignmentRequest) -> list[list[Link]]:
    """Links of every sentence pair of ``request``, in corpus order (an empty list where none)."""
    check_aligner(aligner)
    if aligner == "dico":
        return dictionary_alignment(request)
    if aligner == "pharaoh":
        if request.alignment_path is None:
            raise SpecError(f"aligner 'pharaoh' needs an alignment file for language {request.language!r}")
        return pharaoh_links(request.tokenized, read_pharaoh(request.alignment_path), request.alignment_path)
    if aligner == "eflomal":
        from trainables.realignment.eflomal_aligner import eflomal_links
        return eflomal_links(request.tokenized, request.settings)
    from trainables.realignment.similarity_aligner import simalign_links
    return simalign_links(request.tokenized, request.encoder, request.settings)


def aligned_pairs(aligner: str, request: AlignmentRequest) -> list[AlignedPair]:
    """Aligned pairs of one language's corpus; pairs with no link are left out."""
    check_aligner(aligner)
    if aligner == "eflomal":
        from trainables.realignment.eflomal_aligner import eflomal_pairs
        return eflomal_pairs(request)
    if aligner == "simalign":
        from trainables.realignment.similarity_aligner import simalign_pairs
        return simalign_pairs(request)
    return [AlignedPair(request.language, tuple(src), tuple(tgt), tuple(links))
            for (src, tgt), links in zip(request.tokenized, alignment_links(aligner, request)) if links]
