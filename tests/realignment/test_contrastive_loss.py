"""The realignment loss on toy batches computed by hand, its reductions, dtype and head."""

from __future__ import annotations

import math

import pytest
import torch

from trainables.realignment.contrastive_loss import ProjectionHead, contrastive_alignment_loss, query_losses

# One sentence pair (B = 1): English words s0, s1; translations t0, t1; link s0 <-> t0.
S0, S1, T0, T1 = (1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (-1.0, 0.0)
WORDS = torch.tensor([S0, S1, T0, T1], dtype=torch.float64)
LINK = torch.tensor([[0, 2]])


def hand_queries(temperature: float) -> tuple[float, float]:
    r = 1 / math.sqrt(2)
    # query s0: positive t0 (cos 1/sqrt2); others s1 (cos 0), t1 (cos -1); s0 itself excluded
    q_s0 = -math.log(math.exp(r / temperature) /
                     (math.exp(0 / temperature) + math.exp(r / temperature) + math.exp(-1 / temperature)))
    # query t0: positive s0 (cos 1/sqrt2); others s1 (cos 1/sqrt2), t1 (cos -1/sqrt2)
    q_t0 = -math.log(math.exp(r / temperature) /
                     (math.exp(r / temperature) + math.exp(r / temperature) + math.exp(-r / temperature)))
    return q_s0, q_t0


@pytest.mark.parametrize("temperature", [1.0, 0.1, 0.5])
def test_loss_matches_hand_computation(temperature):
    q_s0, q_t0 = hand_queries(temperature)
    assert query_losses(WORDS, LINK, temperature).tolist() == pytest.approx([q_s0, q_t0], abs=1e-12)
    loss = contrastive_alignment_loss(WORDS, LINK, num_sentence_pairs=1, temperature=temperature)
    assert loss.item() == pytest.approx((q_s0 + q_t0) / 2, abs=1e-12)


def test_known_values_at_the_default_temperature():
    # At T = 0.1 the s0 query is nearly solved and the t0 query is a coin flip
    # between two equally similar candidates: about log 2.
    assert hand_queries(0.1) == pytest.approx((0.000849, 0.693147), abs=1e-6)


def test_scale_does_not_matter_cosine():
    scaled = WORDS * torch.tensor([[3.0], [0.5], [7.0], [2.0]], dtype=torch.float64)
    a = contrastive_alignment_loss(WORDS, LINK, 1, 0.1)
    b = contrastive_alignment_loss(scaled, LINK, 1, 0.1)
    assert a.item() == pytest.approx(b.item(), abs=1e-12)


def two_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """B = 2 pairs, N = 3 links (pair 0 has two): candidates [s0 s1 | u0 | t0 t1 | v0]."""
    words = torch.tensor([S0, S1, (0.5, -1.0), T0, T1, (0.3, 0.2)], dtype=torch.float64)
    links = torch.tensor([[0, 3], [1, 4], [2, 5]])
    return words, links


def test_default_is_one_mean_over_the_2n_queries_of_the_batch():
    words, links = two_pairs()
    per_query = query_losses(words, links, 0.1)
    assert per_query.shape == (6,)
    loss = contrastive_alignment_loss(words, links, num_sentence_pairs=2, temperature=0.1)
    assert loss.item() == pytest.approx(per_query.sum().item() / 6, abs=1e-12)
    # not a mean of per-pair means: pair 0's four queries weigh twice pair 1's two
    per_pair = (per_query[[0, 1, 3, 4]].mean() + per_query[[2, 5]].mean()) / 2
    assert abs(loss.item() - per_pair.item()) > 1e-3
    # the number of sentence pairs plays no part
    assert contrastive_alignment_loss(words, links, 7, 0.1).item() == loss.item()


def test_sentence_pairs_reduction_is_the_sum_over_2b():
    words, links = two_pairs()
    per_query = query_losses(words, links, 0.1)
    loss = contrastive_alignment_loss(words, links, 2, 0.1, reduction="sentence_pairs")
    assert loss.item() == pytest.approx(per_query.sum().item() / 4, abs=1e-12)
    four = contrastive_alignment_loss(words, links, 8, 0.1, reduction="sentence_pairs")
    assert loss.item() == pytest.approx(4 * four.item(), abs=1e-12)


def test_same_language_words_are_negatives():
    """Moving a same-language word towards the query raises the query's loss."""
    words, links = two_pairs()
    before = query_losses(words, links, 0.1)[0].item()
    closer = words.clone()
    closer[1] = words[0] * 2          # s1 made identical in direction to the query s0
    assert query_losses(closer, links, 0.1)[0].item() > before + 1.0


@pytest.mark.parametrize("reduction", ["queries", "sentence_pairs"])
def test_no_link_gives_zero_with_a_graph(reduction):
    words = torch.randn(4, 3, requires_grad=True)
    loss = contrastive_alignment_loss(words, torch.zeros((0, 2), dtype=torch.long), 1, reduction=reduction)
    assert loss.item() == 0.0 and not torch.isnan(loss)
    loss.backward()
    assert words.grad is not None and torch.equal(words.grad, torch.zeros_like(words))


def test_unknown_reduction_is_refused():
    with pytest.raises(ValueError, match="unknown loss reduction 'pairs'"):
        contrastive_alignment_loss(WORDS, LINK, 1, reduction="pairs")


def test_float64_stays_float64():
    assert contrastive_alignment_loss(WORDS, LINK, 1).dtype == torch.float64


def test_loss_is_float32_under_bf16_autocast():
    """bf16 word states under autocast: the loss is computed in float32.

    The reference value is the float32 computation, without autocast, on
    the same bf16-rounded values: the two run the same float32 arithmetic,
    so they agree to rounding of the summation order (1e-6 on a loss of
    about 7 is ~ 1e-7 relative, float32's epsilon). The same batch with
    the similarities left to autocast (a bf16 matmul) is off by about
    1e-2, so the tolerance tells the two apart.
    """
    generator = torch.Generator().manual_seed(0)
    words = torch.randn(40, 16, generator=generator).bfloat16()
    links = torch.stack([torch.arange(5), torch.arange(5) + 20], dim=1)
    reference = contrastive_alignment_loss(words.float(), links, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = contrastive_alignment_loss(words, links, 4)
        normalized = torch.nn.functional.normalize(words, dim=-1)
        queries = torch.cat([links[:, 0], links[:, 1]])
        logits = (normalized[queries] @ normalized.T) / 0.1          # bf16 under autocast
        logits[torch.arange(len(queries)), queries] = float("-inf")
        in_bf16 = torch.nn.functional.cross_entropy(logits, torch.cat([links[:, 1], links[:, 0]]))
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(reference.item(), abs=1e-6)
    assert abs(in_bf16.item() - reference.item()) > 1e-3


def test_gradient_pulls_aligned_words_together():
    words = torch.tensor([S0, S1, T0, T1], requires_grad=True)
    loss = contrastive_alignment_loss(words, LINK, 1, 0.1)
    loss.backward()
    with torch.no_grad():
        moved = words - 0.1 * words.grad
        cosine = torch.nn.functional.cosine_similarity
        assert cosine(moved[0], moved[2], dim=0) > cosine(words[0], words[2], dim=0)


def test_projection_head_is_the_references():
    """Linear(d, d, no bias) -> ReLU -> Linear(d, 128, no bias), weights ~ N(0, 0.02)."""
    torch.manual_seed(0)
    head = ProjectionHead(256, 128)
    assert head(torch.zeros(5, 256)).shape == (5, 128)
    assert [type(m).__name__ for m in head.layers] == ["Linear", "ReLU", "Linear"]
    first, _, second = head.layers
    assert first.bias is None and second.bias is None
    assert (first.in_features, first.out_features, second.out_features) == (256, 256, 128)
    assert first.weight.std().item() == pytest.approx(0.02, rel=0.02)
    assert first.weight.mean().abs().item() < 1e-3
    assert ProjectionHead(256, 128, init_std=0.05).layers[2].weight.std().item() == pytest.approx(0.05, rel=0.05)
