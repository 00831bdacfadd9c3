"""The realignment loss: contrastive, over the aligned words of a batch.

For a batch of B sentence pairs with N links in all, let W be the
representations of every word of both sides of every pair (the
candidates), and let each link (a, b) make two queries, a -> b and
b -> a: 2N queries. A query h's positive is the word it is linked to;
its candidates are all of W except h itself, so words of h's own
language are negatives too:

    l(h) = -log( exp(sim(h, a(h))/T) / sum_{w in W, w != h} exp(sim(h, w)/T) )

    L = 1/(2N) * sum_h l(h)          (reduction "queries": the reference's)
    L = 1/(2B) * sum_h l(h)          (reduction "sentence_pairs": this tool's earlier choice)

sim is cosine similarity and T the temperature (0.1 in the reference).
With "queries" a pair with more links weighs more, exactly as in the
reference's ``nll_loss(..., reduction="mean")``. A batch with no link
gives a zero loss that keeps the graph (it teaches nothing).

The loss is computed in float32 at least, also under bf16 autocast:
bfloat16 keeps about 3 significant digits, so at T = 0.1 a similarity
logit near 10 would be off by up to 0.03 (on a random batch of the tests
the loss moves by about 1e-2).
"""

from __future__ import annotations

import torch
from torch import nn

LOSS_REDUCTIONS = ("queries", "sentence_pairs")


def query_losses(words: torch.Tensor, links: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """l(h) of every query, [2N]: the a -> b queries in link order, then the b -> a ones.

    ``words``: [W, d], every word of both sides of the batch.
    ``links``: [N, 2] long, row (a, b) = word a aligned with word b (indices into ``words``).
    """
    dtype = torch.promote_types(words.dtype, torch.float32)
    with torch.autocast(words.device.type, enabled=False):
        normalized = nn.functional.normalize(words.to(dtype), dim=-1)
        queries = torch.cat([links[:, 0], links[:, 1]])
        positives = torch.cat([links[:, 1], links[:, 0]])
        logits = normalized[queries] @ normalized.T / temperature          # [2N, W]
        self_mask = torch.zeros_like(logits, dtype=torch.bool)
        self_mask[torch.arange(len(queries), device=logits.device), queries] = True
        logits = logits.masked_fill(self_mask, float("-inf"))
        return nn.functional.cross_entropy(logits, positives, reduction="none")


def contrastive_alignment_loss(words: torch.Tensor, links: torch.Tensor, num_sentence_pairs: int,
                               temperature: float = 0.1, reduction: str = "queries") -> torch.Tensor:
    """The loss above, a scalar of ``words``' dtype promoted to at least float32."""
    if reduction not in LOSS_REDUCTIONS:
        raise ValueError(f"unknown loss reduction {reduction!r}; expected one of {', '.join(LOSS_REDUCTIONS)}")
    if links.numel() == 0:
        # keeps the graph; a batch without links teaches nothing (and a mean over 0 queries is NaN)
        return words.sum().to(torch.promote_types(words.dtype, torch.float32)) * 0.0
    losses = query_losses(words, links, temperature)
    if reduction == "queries":
        return losses.mean()
    return losses.sum() / (2 * num_sentence_pairs)


class ProjectionHead(nn.Module):
    """The reference's MLP on word states during realignment; dropped after.

    Linear(d, d, no bias) -> ReLU -> Linear(d, 128, no bias), initialised
    as Hugging Face initialises a new module of a pretrained model (normal,
    std = the encoder's ``initializer_range``, 0.02), which is how the
    reference's head starts.
    """

    def __init__(self, hidden_size: int, output_size: int = 128, init_std: float = 0.02):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(hidden_size, hidden_size, bias=False), nn.ReLU(),
                                    nn.Linear(hidden_size, output_size, bias=False))
        for module in self.layers:
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=init_std)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.layers(states)
