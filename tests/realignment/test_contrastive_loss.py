"""The realignment loss on a toy batch computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from trainables.realignment.contrastive_loss import ProjectionHead, contrastive_alignment_loss

# One sentence pair (B = 1): English words s0, s1; translations t0, t1; link s0 <-> t0.
S0, S1, T0, T1 = (1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (-1.0, 0.0)


def hand_loss(temperature: float) -> float:
    r = 1 / math.sqrt(2)
    # query s0: positive t0 (cos 1/sqrt2); others s1 (cos 0), t1 (cos -1); s0 itself excluded
    q_s0 = -math.log(math.exp(r / temperature) /
                     (math.exp(0 / temperature) + math.exp(r / temperature) + math.exp(-1 / temperature)))
    # query t0: positive s0 (cos 1/sqrt2); others s1 (cos 1/sqrt2), t1 (cos -1/sqrt2)
    q_t0 = -math.log(math.exp(r / temperature) /
                     (math.exp(r / temperature) + math.exp(r / temperature) + math.exp(-r / temperature)))
    return (q_s0 + q_t0) / (2 * 1)


@pytest.mark.parametrize("temperature", [1.0, 0.1, 0.5])
def test_loss_matches_hand_computation(temperature):
    words = torch.tensor([S0, S1, T0, T1], dtype=torch.float64)
    links = torch.tensor([[0, 2]])
    loss = contrastive_alignment_loss(words, links, num_sentence_pairs=1, temperature=temperature)
    assert loss.item() == pytest.approx(hand_loss(temperature), abs=1e-6)


def test_known_values_at_the_default_temperature():
    # At T = 0.1 the s0 query is nearly solved and the t0 query is a coin flip
    # between two equally similar candidates: about log 2.
    assert hand_loss(0.1) == pytest.approx((0.000849 + 0.693147) / 2, abs=1e-5)


def test_scale_does_not_matter_cosine():
    words = torch.tensor([S0, S1, T0, T1], dtype=torch.float64)
    links = torch.tensor([[0, 2]])
    scaled = words * torch.tensor([[3.0], [0.5], [7.0], [2.0]], dtype=torch.float64)
    a = contrastive_alignment_loss(words, links, 1, 0.1)
    b = contrastive_alignment_loss(scaled, links, 1, 0.1)
    assert a.item() == pytest.approx(b.item(), abs=1e-9)


def test_normalised_by_sentence_pairs():
    words = torch.tensor([S0, S1, T0, T1], dtype=torch.float64)
    links = torch.tensor([[0, 2]])
    one = contrastive_alignment_loss(words, links, 1, 1.0)
    four = contrastive_alignment_loss(words, links, 4, 1.0)
    assert one.item() == pytest.approx(4 * four.item())


def test_no_link_gives_zero_with_a_graph():
    words = torch.randn(4, 3, requires_grad=True)
    loss = contrastive_alignment_loss(words, torch.zeros((0, 2), dtype=torch.long), 1)
    assert loss.item() == 0.0
    loss.backward()
    assert words.grad is not None


def test_gradient_pulls_aligned_words_together():
    words = torch.tensor([S0, S1, T0, T1], requires_grad=True)
    links = torch.tensor([[0, 2]])
    loss = contrastive_alignment_loss(words, links, 1, 0.1)
    loss.backward()
    with torch.no_grad():
        moved = words - 0.1 * words.grad
        cosine = torch.nn.functional.cosine_similarity
        assert cosine(moved[0], moved[2], dim=0) > cosine(words[0], words[2], dim=0)


def test_projection_head_shape():
    head = ProjectionHead(16, 128)
    assert head(torch.zeros(5, 16)).shape == (5, 128)
    assert [type(m).__name__ for m in head.layers] == ["Linear", "ReLU", "Linear"]
