"""Word alignments of a realignment corpus, computed once and cached.

An alignment depends on the corpus, the aligner, its settings, the
pre-tokenization (pre-tokenizer and segmenter) and, for ``simalign``, the
encoder; the cache
key is a content key of all of these, so the trials of a grid that share
a corpus share one alignment (``<cache>/alignments/<key>/``), built once
under a file lock. The directory holds ``links.txt``, the links of every
sentence pair of the corpus in its order, one pharaoh line (``0-1 2-3``,
empty without a link) a pair, and ``meta.json`` (what the key was made
of, the pre-tokenizer and segmenter, how many sentence pairs were read,
skipped and linked). The words are not stored: a reader pre-tokenises the
same corpus again beside ``links.txt``, line by line, so that an alignment
of a million pairs is a few tens of MB on disk and never held in memory.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from trainables.artifacts import atomic_write_json, cached_directory, content_key, file_fingerprint
from trainables.errors import DataError, SpecError
from trainables.realignment.pretokenization import (
    DEFAULT_PRETOKENIZER, check_pretokenizer, contains_word, segmenter_name,
)
from trainables.realignment.word_pairs import AlignedPair, Link, parse_pharaoh_line, pharaoh_line

logger = logging.getLogger(__name__)

CACHE_KIND = "alignments"
FORMAT_VERSION = 3     # bump when the stored format or an aligner's rule changes
                       # (2: the reference's dico rule; 3: links.txt beside the corpus, eflomal max_pairs)
LINKS_FILE = "links.txt"


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


@dataclass(frozen=True)
class CachedLinks:
    """An alignment in the cache: its directory, key and what ``meta.json`` says."""
    directory: Path
    key: str
    meta: dict[str, Any]

    @property
    def links_path(self) -> Path:
        return self.directory / LINKS_FILE

    @property
    def lines(self) -> int:
        return int(self.meta["lines"])

    def link_lines(self) -> Iterator[str]:
        """The stored pharaoh line of every sentence pair, in corpus order, read one at a time."""
        with open(self.links_path, encoding="utf-8") as handle:
            for line in handle:
                yield line.rstrip("\n")


class _Counted:
    """Sentence pairs passed through as they are read, counted (and those with a side without words)."""

    def __init__(self, tokenized: Iterable[tuple[Sequence[str], Sequence[str]]]):
        self.tokenized = tokenized
        self.lines = self.skipped = 0

    def __iter__(self):
        for src, tgt in self.tokenized:
            self.lines += 1
            self.skipped += not (contains_word(src) and contains_word(tgt))
            yield src, tgt


def _computed_links(aligner: str, request, tokenized: Iterable[tuple[Sequence[str], Sequence[str]]],
                    progress: Callable[[str], None] | None) -> Iterable[list[Link]]:
    from dataclasses import replace

    from trainables.realignment.aligners import alignment_links

    if aligner == "eflomal":     # streams its input to disk: a corpus of any size in bounded memory
        from trainables.realignment.eflomal_aligner import eflomal_link_lines
        return eflomal_link_lines(tokenized, request.settings, progress, request.language)
    return alignment_links(aligner, replace(request, tokenized=list(tokenized)))


def cached_links(aligner: str, request, corpus_fingerprint: str | None = None,
                 tokenized: Callable[[], Iterable[tuple[Sequence[str], Sequence[str]]]] | None = None,
                 segmenter: str | None = None, root: Path | None = None,
                 progress: Callable[[str], None] | None = None) -> CachedLinks:
    """The links of ``request``'s corpus in the cache, computed on the first call only.

    ``tokenized`` gives the pre-tokenized sentence pairs when they are to
    be read as a stream (a large corpus) rather than from
    ``request.tokenized``; it is called only on a cache miss.
    ``corpus_fingerprint`` identifies the corpus (e.g. a content hash of
    the pairs read); by default ``tokenized_fingerprint`` of
    ``request.tokenized``. ``segmenter`` names the pre-tokenization, by
    default ``segmenter_name(language)``.
    """
    corpus = corpus_fingerprint or tokenized_fingerprint(request.tokenized)
    parts = alignment_key_parts(aligner, request, corpus, segmenter)
    key = content_key(parts)

    def build(directory: Path) -> None:
        counted = _Counted(tokenized() if tokenized is not None else request.tokenized)
        linked = 0
        with open(directory / LINKS_FILE, "w", encoding="utf-8") as handle:
            for links in _computed_links(aligner, request, counted, progress):
                handle.write(pharaoh_line(links) + "\n")
                linked += bool(links)
        atomic_write_json(directory / "meta.json", {**parts, "skipped": counted.skipped,
                                                    "lines": counted.lines, "pairs": linked})
        logger.info("%s alignment of %s: %d pairs with links, %d of %d sentence pairs skipped",
                    aligner, request.language, linked, counted.skipped, counted.lines)

    directory = cached_directory(CACHE_KIND, key, build, root=root)
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    return CachedLinks(directory, key, meta)


def cached_alignment(aligner: str, request, corpus_fingerprint: str | None = None,
                     segmenter: str | None = None, root: Path | None = None) -> AlignmentOutcome:
    """The aligned pairs of ``request``'s corpus (a list), computed on the first call only.

    See ``cached_links``; this reads the whole alignment into memory, for
    a corpus given as a list (tools, tests).
    """
    cached = cached_links(aligner, request, corpus_fingerprint, segmenter=segmenter, root=root)
    if cached.lines != len(request.tokenized):
        raise DataError(f"the cached alignment holds {cached.lines} sentence pairs, the corpus "
                        f"{len(request.tokenized)}; delete it", cached.directory)
    pairs = []
    for number, ((src, tgt), line) in enumerate(zip(request.tokenized, cached.link_lines()), 1):
        links = parse_pharaoh_line(line, cached.links_path, number)
        if links:
            pairs.append(AlignedPair(request.language, tuple(src), tuple(tgt), tuple(links)))
    meta = cached.meta
    return AlignmentOutcome(pairs=pairs, skipped=int(meta["skipped"]), lines=cached.lines,
                            segmenter=str(meta["segmenter"]), key=cached.key,
                            pretokenizer=str(meta["pretokenizer"]))


def cached_aligned_pairs(aligner: str, request, corpus_fingerprint: str | None = None,
                         root: Path | None = None) -> list[AlignedPair]:
    """``aligners.aligned_pairs`` through the cache (see ``cached_alignment``)."""
    return cached_alignment(aligner, request, corpus_fingerprint, root=root).pairs
