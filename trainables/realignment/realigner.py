"""The realignment phase: train the encoder on the contrastive loss, some blocks frozen.

``RealignmentStream`` yields batches of aligned sentence pairs, the
languages interleaved round-robin and reshuffled at every pass, for as
many steps as asked. ``realign`` runs the "before" schedule;
``realignment_loss`` is shared with the "during" schedule of the
fine-tuning loop.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from trainables.errors import SpecError
from trainables.freezing import frozen, trainable_parameters
from trainables.optimizers import adam
from trainables.realignment.batches import EncodedPair, RealignmentBatch, collate_pairs, encode_pair
from trainables.realignment.contrastive_loss import ProjectionHead, contrastive_alignment_loss
from trainables.realignment.word_pairs import AlignedPair
from trainables.tasks.token_classification import special_tokens


@dataclass(frozen=True)
class RealignSettings:
    steps: int | str = "auto"        # "auto": as many as the fine-tuning's optimizer steps
    learning_rate: float = 2e-5
    xlmr_learning_rate: float = 7.5e-6
    batch_size: int = 16             # sentence pairs
    temperature: float = 0.1
    layer: int = -1                  # hidden state index: 0 = embeddings, -1 = last block
    projection: bool = True
    projection_dim: int = 128
    max_length: int = 128
    during_weight: float = 0.1       # "during" schedule: weight of the realignment loss
    max_pairs: int | None = None     # per language; None: all


def interleave(pairs_by_language: dict[str, Sequence[AlignedPair]]) -> list[AlignedPair]:
    """Round-robin over languages (in the given order) until every list is used up."""
    lists = [list(pairs) for pairs in pairs_by_language.values()]
    merged: list[AlignedPair] = []
    for index in range(max((len(p) for p in lists), default=0)):
        merged.extend(p[index] for p in lists if index < len(p))
    return merged


class RealignmentStream:
    """Endless batches of encoded pairs; each pass reshuffles every language, then interleaves."""

    def __init__(self, pairs_by_language: dict[str, Sequence[AlignedPair]], tokenizer: Any,
                 settings: RealignSettings, seed: int):
        empty = [language for language, pairs in pairs_by_language.items() if not pairs]
        if empty:
            raise SpecError(f"no usable aligned sentence pair for realignment language(s) {', '.join(empty)}")
        specials = special_tokens(tokenizer)
        self.encoded = {language: [encode_pair(tokenizer, pair, settings.max_length, specials) for pair in pairs]
                        for language, pairs in pairs_by_language.items()}
        self.batch_size = settings.batch_size
        self.pad_token_id = tokenizer.pad_token_id
        self.generator = torch.Generator().manual_seed(seed)
        self._buffer: list[EncodedPair] = []
        self.batches_drawn = 0

    @property
    def num_pairs(self) -> int:
        return sum(len(pairs) for pairs in self.encoded.values())

    def _refill(self) -> None:
        shuffled = {}
        for language, pairs in self.encoded.items():
            order = torch.randperm(len(pairs), generator=self.generator).tolist()
            shuffled[language] = [pairs[i] for i in order]
        self._buffer.extend(interleave(shuffled))

    def next_batch(self) -> RealignmentBatch:
        while len(self._buffer) < self.batch_size:
            self._refill()
        batch, self._buffer = self._buffer[: self.batch_size], self._buffer[self.batch_size:]
        self.batches_drawn += 1
        return collate_pairs(batch, self.pad_token_id)

    def skip(self, batches: int) -> None:
        """Advance as if ``batches`` had been drawn (resuming a run)."""
        for _ in range(batches):
            self.next_batch()

    def __iter__(self) -> Iterator[RealignmentBatch]:
        while True:
            yield self.next_batch()


def word_states(encoder: nn.Module, batch: RealignmentBatch, layer: int) -> torch.Tensor:
    """States [N, d] of every word (first sub-word) of the batch at hidden-state ``layer``."""
    output = encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                     output_hidden_states=True)
    hidden = output.hidden_states[layer]
    return hidden[batch.word_rows, batch.word_positions]


def realignment_loss(encoder: nn.Module, head: nn.Module | None, batch: RealignmentBatch,
                     settings: RealignSettings) -> torch.Tensor:
    states = word_states(encoder, batch, settings.layer)
    if head is not None:
        states = head(states)
    return contrastive_alignment_loss(states, batch.links, batch.num_pairs, settings.temperature)


def build_projection_head(encoder: nn.Module, settings: RealignSettings) -> nn.Module | None:
    from trainables.models import hidden_size

    return ProjectionHead(hidden_size(encoder), settings.projection_dim) if settings.projection else None


def realign(encoder: nn.Module, stream: RealignmentStream, settings: RealignSettings, steps: int,
            frozen_names: frozenset[str], learning_rate: float, device: torch.device,
            autocast_dtype: torch.dtype | None = None, log_every: int = 0) -> dict[str, Any]:
    """Train ``encoder`` for ``steps`` batches with ``frozen_names`` frozen; all trainable after."""
    head = build_projection_head(encoder, settings)
    if head is not None:
        head.to(device)
    started = time.perf_counter()
    losses: list[float] = []
    encoder.train()
    with frozen(encoder, frozen_names):
        parameters = trainable_parameters(encoder) + (list(head.parameters()) if head is not None else [])
        optimizer = adam(parameters, learning_rate)
        for step in range(steps):
            batch = stream.next_batch().to(device)
            with torch.autocast(device.type, dtype=autocast_dtype or torch.float32,
                                enabled=autocast_dtype is not None):
                loss = realignment_loss(encoder, head, batch, settings)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            if log_every and (step + 1) % log_every == 0:
                print(f"realignment step {step + 1}/{steps}: loss {sum(losses[-log_every:]) / log_every:.4f}",
                      flush=True)
    tail = losses[-max(1, len(losses) // 10):] if losses else [math.nan]
    return {"realign_steps": steps, "realign_loss_first": losses[0] if losses else math.nan,
            "realign_loss_last": sum(tail) / len(tail), "realign_s": time.perf_counter() - started,
            "realign_pairs": stream.num_pairs}
