"""Word retrieval: how close translated words are in the encoder's space.

For every aligned word pair of a held-out set, the English word's state is
compared (cosine) with the states of every aligned target word of the
set; retrieval is right when the nearest one is its translation. Chance
level is 1 / number of candidates.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from trainables.realignment.batches import collate_pairs, encode_pair
from trainables.realignment.realigner import word_states
from trainables.realignment.word_pairs import AlignedPair
from trainables.tasks.token_classification import special_tokens


@torch.no_grad()
def word_retrieval_accuracy(encoder: nn.Module, tokenizer: Any, pairs: Sequence[AlignedPair],
                            layer: int = -1, batch_size: int = 32,
                            device: torch.device | None = None) -> dict[str, float]:
    device = device or next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    sources, targets = [], []
    specials = special_tokens(tokenizer)
    try:
        for start in range(0, len(pairs), batch_size):
            encoded = [encode_pair(tokenizer, pair, specials=specials) for pair in pairs[start:start + batch_size]]
            batch = collate_pairs(encoded, tokenizer.pad_token_id).to(device)
            states = word_states(encoder, batch, layer)
            if len(batch.links):
                sources.append(states[batch.links[:, 0]].float().cpu())
                targets.append(states[batch.links[:, 1]].float().cpu())
    finally:
        encoder.train(was_training)
    if not sources:
        return {"retrieval_accuracy": float("nan"), "retrieval_candidates": 0}
    source = nn.functional.normalize(torch.cat(sources), dim=-1)
    target = nn.functional.normalize(torch.cat(targets), dim=-1)
    nearest = (source @ target.T).argmax(dim=1)
    correct = (nearest == torch.arange(len(source))).float().mean().item()
    return {"retrieval_accuracy": correct, "retrieval_candidates": len(target)}
