"""Word alignments of a realignment corpus, computed once and cached.

An alignment depends on the corpus, the aligner, its settings, the
pre-tokenization (pre-tokenizer and segmenter) and, for ``simalign``, the
encoder; the cache
key is a content key of all of these, so the trials of a grid that share
a corpus share one alignment (``<cache>/alignments/<key>/``), built once
under a file lock. The directory holds ``pairs.jsonl`` (one aligned pair a
line) and ``meta.json`` (what the key was made of, the pre-tokenizer and
segmenter, how many sentence pairs were skipped).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from trainables.artifacts import atomic_write_json, cached_directory, content_key, file_fingerprint
from trainables.errors import SpecError
from trainables.realignment.pretokenization import (
    DEFAULT_PRETOKENIZER, check_pretokenizer, contains_word, segmenter_name,
)
from trainables.realignment.word_pairs import AlignedPair

logger = logging.getLogger(__name__)

CACHE_KIND = "alignments"
FORMAT_VERSION = 2     # bump when the stored format or an aligner's rule changes (2: the reference's dico rule)


@dataclass(frozen=True)
class AlignmentOutcome:
    """The word pairs of one corpus and what the aligner could not use."""
    pairs: list[AlignedPair]
    skipped: int            # sentence pairs with a side without words (empty, only punctuation): never linked
    lines: int              # sentence pairs in the corpus
    segmenter: str          # how the words were made (``pretokenization.segmenter_name``)
    key: str                # cache key
    pretokenizer: str = DEFAULT_PRETOKENIZER    # ``realignment.pretokenizer`` the words were made with


def skipped_lines(tokenized: Sequence[tuple[Sequence[str], Sequence[str]]]) -> int:
    """Sentence pairs that an aligner skips: a side without words."""
    return sum(1 for src, tgt in tokenized if not (contains_word(src) and contains_word(tgt)))


def tokenized_fingerprint(tokenized: Sequence[tuple[Sequence[str], Sequence[str]]]) -> str:
    """A content hash of pre-tokenized sentence pairs (when no file fingerprint is at hand)."""
    digest = hashlib.sha256()
    for src, tgt in tokenized:
        digest.update(json.dumps([list(src), list(tgt)], ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def encoder_fingerprint(encoder) -> str:
    """A content hash of a (model, tokenizer): weights, architecture and vocabulary.

    A name is not enough: a randomly initialised or realigned model keeps
    its base model's name but aligns differently.
    """
    import torch

    model, tokenizer = encoder
    digest = hashlib.sha256()
    digest.update(f"{type(model).__name__}/{type(tokenizer).__name__}".encode())
    digest.update(json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False).encode("utf-8"))
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def _resolved_settings(aligner: str, request) -> dict[str, Any]:
    if aligner == "eflomal":
        from trainables.realignment.eflomal_aligner import resolved_settings
        return resolved_settings(request.settings)
    if aligner == "simalign":
        from trainables.realignment.similarity_aligner import resolved_settings
        if request.encoder is None:
            raise SpecError("aligner 'simalign' needs the trial's encoder (model, tokenizer)")
        return resolved_settings(request.settings, request.encoder[0])
    if aligner == "dico":
        from trainables.realignment.aligners import dico_settings
        return dico_settings(request.settings)
    return dict(request.settings or {})


def alignment_key_parts(aligner: str, request, corpus_fingerprint: str,
                        segmenter: str | None = None) -> dict[str, Any]:
    """Everything an alignment depends on (its cache key is a hash of this)."""
    from trainables.realignment.aligners import check_aligner

    check_aligner(aligner)
    parts: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "aligner": aligner,
        "language": request.language,
        "corpus": corpus_fingerprint,
        "settings": _resolved_settings(aligner, request),
        "segmenter": segmenter or segmenter_name(request.language),
        "pretokenizer": check_pretokenizer(request.pretokenizer),
    }
    if aligner == "simalign":
        parts["encoder"] = encoder_fingerprint(request.encoder)
    if aligner == "dico" and request.dictionary_path is not None and Path(request.dictionary_path).is_file():
        parts["dictionary"] = file_fingerprint(request.dictionary_path)
    if aligner == "pharaoh" and request.alignment_path is not None and Path(request.alignment_path).is_file():
        parts["alignments"] = file_fingerprint(request.alignment_path)
    return parts


def _pair_to_json(pair: AlignedPair) -> str:
    return json.dumps({"language": pair.language, "source": list(pair.source_words),
                       "target": list(pair.target_words), "links": [list(link) for link in pair.links]},
                      ensure_ascii=False)


def _pair_from_json(line: str) -> AlignedPair:
    value = json.loads(line)
    return AlignedPair(value["language"], tuple(value["source"]), tuple(value["target"]),
                       tuple((int(i), int(j)) for i, j in value["links"]))


def cached_alignment(aligner: str, request, corpus_fingerprint: str | None = None,
                     segmenter: str | None = None, root: Path | None = None) -> AlignmentOutcome:
    """The aligned pairs of ``request``'s corpus, computed on the first call only.

    ``corpus_fingerprint`` identifies the corpus (e.g. the file fingerprint
    of the parallel data and its line range); by default
    ``tokenized_fingerprint`` of the pre-tokenized sentences. ``segmenter``
    names the pre-tokenization, by default ``segmenter_name(language)``.
    """
    from trainables.realignment.aligners import aligned_pairs

    corpus = corpus_fingerprint or tokenized_fingerprint(request.tokenized)
    parts = alignment_key_parts(aligner, request, corpus, segmenter)
    key = content_key(parts)

    def build(directory: Path) -> None:
        pairs = aligned_pairs(aligner, request)
        skipped = skipped_lines(request.tokenized)
        with open(directory / "pairs.jsonl", "w", encoding="utf-8") as handle:
            for pair in pairs:
                handle.write(_pair_to_json(pair) + "\n")
        atomic_write_json(directory / "meta.json", {**parts, "skipped": skipped,
                                                    "lines": len(request.tokenized), "pairs": len(pairs)})
        logger.info("%s alignment of %s: %d pairs with links, %d of %d sentence pairs skipped",
                    aligner, request.language, len(pairs), skipped, len(request.tokenized))

    directory = cached_directory(CACHE_KIND, key, build, root=root)
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    with open(directory / "pairs.jsonl", encoding="utf-8") as handle:
        pairs = [_pair_from_json(line) for line in handle if line.strip()]
    return AlignmentOutcome(pairs=pairs, skipped=int(meta["skipped"]), lines=int(meta["lines"]),
                            segmenter=str(meta["segmenter"]), key=key, pretokenizer=str(meta["pretokenizer"]))


def cached_aligned_pairs(aligner: str, request, corpus_fingerprint: str | None = None,
                         root: Path | None = None) -> list[AlignedPair]:
    """``aligners.aligned_pairs`` through the cache (see ``cached_alignment``)."""
    return cached_alignment(aligner, request, corpus_fingerprint, root=root).pairs
