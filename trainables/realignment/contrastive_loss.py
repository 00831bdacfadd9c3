"""The realignment loss: contrastive, over aligned words of a batch.

For a batch of B sentence pairs, let W be the representations of every
word (its first sub-word) of both sides of every pair, and H ⊆ W those of
aligned words. Each aligned word h is a query whose positive is the word
it is aligned to; its candidates are all of W except h itself:

    L = 1/(2B) * sum_{h in H} -log( exp(sim(h, a(h))/T) / sum_{w in W, w != h} exp(sim(h, w)/T) )

sim is cosine similarity and T the temperature (0.1 in the original).
"""

from __future__ import annotations

import torch
from torch import nn


def contrastive_alignment_loss(words: torch.Tensor, links: torch.Tensor, num_sentence_pairs: int,
                               temperature: float = 0.1) -> torch.Tensor:
    """The loss above.

    ``words``: [N, d], every word of both sides of the batch.
    ``links``: [M, 2] long, row (a, b) = word a aligned with word b (indices into ``words``);
    each link makes two queries, a -> b and b -> a.
    """
    if links.numel() == 0:
        return words.sum() * 0.0   # keeps the graph; a batch without links teaches nothing
    normalized = nn.functional.normalize(words.float(), dim=-1)
    queries = torch.cat([links[:, 0], links[:, 1]])
    positives = torch.cat([links[:, 1], links[:, 0]])
    logits = normalized[queries] @ normalized.T / temperature          # [2M, N]
    self_mask = torch.zeros_like(logits, dtype=torch.bool)
    self_mask[torch.arange(len(queries)), queries] = True
    logits = logits.masked_fill(self_mask, float("-inf"))
    total = nn.functional.cross_entropy(logits, positives, reduction="sum")
    return total / (2 * num_sentence_pairs)


class ProjectionHead(nn.Module):
    """The original's MLP on word states during realignment (d -> d -> ReLU -> 128); dropped after."""

    def __init__(self, hidden_size: int, output_size: int = 128):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(),
                                    nn.Linear(hidden_size, output_size))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.layers(states)
