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
from trainables.realignment.word_pairs import (
    AlignedPair, dictionary_links, load_muse_dictionary, pharaoh_pairs, read_pharaoh,
)

ALIGNER_NAMES = ("dico", "pharaoh", "eflomal", "simalign")


@dataclass
class AlignmentRequest:
    """What an aligner needs for one language's corpus."""
    language: str
    tokenized: Sequence[tuple[Sequence[str], Sequence[str]]]   # (english words, target words)
    dictionary_path: Path | None = None     # dico
    alignment_path: Path | None = None      # pharaoh
    settings: dict[str, Any] = field(default_factory=dict)     # aligner-specific options
    encoder: Any = None                     # simalign: (model, tokenizer) of the trial


def check_aligner(name: str) -> str:
    if name not in ALIGNER_NAMES:
        raise unknown_name("aligner", name, ALIGNER_NAMES)
    return name


def aligned_pairs(aligner: str, request: AlignmentRequest) -> list[AlignedPair]:
    """Aligned pairs of one language's corpus; pairs with no link are left out."""
    check_aligner(aligner)
    if aligner == "dico":
        if request.dictionary_path is None:
            raise SpecError(f"aligner 'dico' needs a dictionary for language {request.language!r}")
        dictionary = load_muse_dictionary(request.dictionary_path)
        pairs = []
        for src, tgt in request.tokenized:
            links = dictionary_links(src, tgt, dictionary)
            if links:
                pairs.append(AlignedPair(request.language, tuple(src), tuple(tgt), tuple(links)))
        return pairs
    if aligner == "pharaoh":
        if request.alignment_path is None:
            raise SpecError(f"aligner 'pharaoh' needs an alignment file for language {request.language!r}")
        return pharaoh_pairs(request.language, request.tokenized,
                             read_pharaoh(request.alignment_path), request.alignment_path)
    if aligner == "eflomal":
        from trainables.realignment.eflomal_aligner import eflomal_pairs
        return eflomal_pairs(request)
    from trainables.realignment.similarity_aligner import simalign_pairs
    return simalign_pairs(request)
