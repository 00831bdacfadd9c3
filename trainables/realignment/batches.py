"""Turning aligned sentence pairs into model inputs for the realignment loss.

A word is represented by its first sub-word (the paper), or by the sum of
its sub-words (``realignment.word_representation: sum``, the reference's
other mode): a batch carries each word's first position and the end of its
pieces. Each side is tokenized word by word and cut at ``max_length``
sub-words; links to words cut off are dropped. With a SentencePiece tokenizer (XLM-R) the bare "▁" pieces are
deleted after the cut, as in the reference: a side then holds fewer than
``max_length`` ids, and a word left with no sub-word is no word of the
batch (no candidate, its links dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from trainables.realignment.word_pairs import AlignedPair
from trainables.tasks.token_classification import (bare_metaspace_id, raw_word_pieces, special_tokens,
                                                   with_special_tokens, without_bare_metaspace)


@dataclass(frozen=True)
class EncodedPair:
    source_ids: list[int]
    target_ids: list[int]
    source_first: list[int]      # position of each kept source word's first sub-word, in word order
    target_first: list[int]
    links: list[tuple[int, int]]  # indices into source_first / target_first
    source_ends: list[int] | None = None   # end (exclusive) of each kept word's pieces; None: first + 1
    target_ends: list[int] | None = None


@dataclass
class RealignmentBatch:
    input_ids: torch.Tensor        # [2B, T]: the B English sides, then the B translations
    attention_mask: torch.Tensor
    word_rows: torch.Tensor        # [N] row of each word in input_ids
    word_positions: torch.Tensor   # [N] position of its first sub-word
    links: torch.Tensor            # [M, 2] indices into the N words
    num_pairs: int
    word_ends: torch.Tensor | None = None   # [N] end (exclusive) of its sub-words
    real_tokens: int = 0           # non-pad tokens of input_ids, counted on the host

    @property
    def padded_tokens(self) -> int:
        """Tokens the encoder runs on: both sides of every pair, padded to the longest."""
        return self.input_ids.numel()

    def to(self, device: torch.device) -> "RealignmentBatch":
        from trainables.device_settings import to_device

        tensors = to_device({"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                             "word_rows": self.word_rows, "word_positions": self.word_positions,
                             "links": self.links, "word_ends": self.word_ends}, device)
        return RealignmentBatch(tensors["input_ids"], tensors["attention_mask"], tensors["word_rows"],
                                tensors["word_positions"], tensors["links"], self.num_pairs,
                                tensors["word_ends"], self.real_tokens)


class WordPieces:
    """``raw_word_pieces`` with a memo of up to ``max_words`` words (emptied when full).

    A word's pieces never depend on its sentence (each word is tokenized
    on its own), and parallel corpora repeat their words: the realignment
    stream tokenizes most words once instead of at every pair, and each
    sentence's new words in one call.
    """

    def __init__(self, tokenizer: Any, max_words: int = 200_000):
        self.tokenizer = tokenizer
        self.max_words = max_words
        self.known: dict[str, list[int]] = {}

    def __call__(self, words: Sequence[str]) -> list[list[int]]:
        missing = [word for word in dict.fromkeys(words) if word not in self.known]
        if missing:
            if len(self.known) + len(missing) > self.max_words:
                self.known.clear()
                missing = list(dict.fromkeys(words))
            self.known.update(zip(missing, raw_word_pieces(self.tokenizer, missing)))
        return [self.known[word] for word in words]


def _encode_side(tokenizer: Any, words: Sequence[str], max_length: int,
                 specials: tuple[list[int], list[int]],
                 pieces: WordPieces | None = None) -> tuple[list[int], list[tuple[int, int] | None]]:
    """Sub-word ids of one side and the range [first, end) of each word's sub-words.

    None for a word cut off by ``max_length`` or left with no sub-word once
    the bare "▁" pieces are gone. The cut counts the "▁" pieces: the
    reference truncates before deleting them.
    """
    before, after = len(specials[0]), len(specials[1])
    budget = max_length - before - after
    bare = bare_metaspace_id(tokenizer)
    ids: list[int] = []
    spans: list[tuple[int, int] | None] = []
    used = 0                    # sub-words kept so far, bare "▁" included
    for word_ids in (pieces(words) if pieces is not None else raw_word_pieces(tokenizer, words)):
        within = word_ids[: max(budget - used, 0)]
        used += len(within)
        kept = without_bare_metaspace(within, bare)
        spans.append((before + len(ids), before + len(ids) + len(kept)) if kept else None)
        ids.extend(kept)
    return with_special_tokens(ids, specials), spans


def _kept_words(spans: list[tuple[int, int] | None]) -> tuple[list[int], list[int], dict[int, int]]:
    """First positions and ends of the words that have sub-words, and each such word's new index."""
    kept = [span for span in spans if span is not None]
    index = {word: new for new, word in enumerate(w for w, span in enumerate(spans) if span is not None)}
    return [first for first, _ in kept], [end for _, end in kept], index


def encode_pair(tokenizer: Any, pair: AlignedPair, max_length: int = 128,
                specials: tuple[list[int], list[int]] | None = None,
                pieces: WordPieces | None = None) -> EncodedPair:
    """``pair`` as model input; ``pieces``: a memo of word pieces for ``tokenizer`` (the same ids)."""
    specials = specials or special_tokens(tokenizer)
    source_ids, source_spans = _encode_side(tokenizer, pair.source_words, max_length, specials, pieces)
    target_ids, target_spans = _encode_side(tokenizer, pair.target_words, max_length, specials, pieces)
    source_first, source_ends, source_index = _kept_words(source_spans)
    target_first, target_ends, target_index = _kept_words(target_spans)
    links = [(source_index[i], target_index[j]) for i, j in pair.links
             if i in source_index and j in target_index]
    return EncodedPair(source_ids, target_ids, source_first, target_first, links, source_ends, target_ends)


def collate_pairs(pairs: Sequence[EncodedPair], pad_token_id: int) -> RealignmentBatch:
    sequences = [p.source_ids for p in pairs] + [p.target_ids for p in pairs]
    length = max(len(s) for s in sequences)
    # one tensor from padded lists, not one per row: this runs on the training loop's critical path
    input_ids = torch.tensor([s + [pad_token_id] * (length - len(s)) for s in sequences], dtype=torch.long)
    attention_mask = (torch.arange(length) < torch.tensor([len(s) for s in sequences])[:, None]).long()
    rows: list[int] = []
    positions: list[int] = []
    ends: list[int] = []
    links: list[tuple[int, int]] = []
    offsets: list[int] = []

    def add_side(row: int, first: list[int], side_ends: list[int] | None) -> None:
        rows.extend([row] * len(first))
        positions.extend(first)
        ends.extend(side_ends if side_ends is not None else [p + 1 for p in first])

    for row, pair in enumerate(pairs):             # English sides: rows 0..B-1
        offsets.append(len(rows))
        add_side(row, pair.source_first, pair.source_ends)
    for index, pair in enumerate(pairs):           # translations: rows B..2B-1
        target_offset = len(rows)
        add_side(len(pairs) + index, pair.target_first, pair.target_ends)
        links.extend((offsets[index] + i, target_offset + j) for i, j in pair.links)
    return RealignmentBatch(input_ids, attention_mask, torch.tensor(rows, dtype=torch.long),
                            torch.tensor(positions, dtype=torch.long),
                            torch.tensor(links, dtype=torch.long).reshape(-1, 2), len(pairs),
                            torch.tensor(ends, dtype=torch.long), sum(len(s) for s in sequences))
