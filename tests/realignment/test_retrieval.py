"""Realignment of a tiny model on bundled Tatoeba + MUSE raises held-out word retrieval."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from realignment_retrieval import held_out_retrieval  # noqa: E402


@pytest.mark.slow
def test_realignment_raises_held_out_word_retrieval():
    result = held_out_retrieval("tiny-mbert", steps=120, freeze="none", languages=("fr", "de", "ru"))
    chance = 1 / result["candidates"]
    print(f"retrieval before {result['before']:.3f}, after {result['after']:.3f}, chance {chance:.4f}")
    assert result["before"] < 10 * chance + 0.02          # a random model is near chance
    assert result["after"] > result["before"] + 0.10      # realignment clearly helps
    assert result["loss_last"] < result["loss_first"]


def test_retrieval_accuracy_of_identical_states_is_perfect(mbert_tokenizer):
    """Sanity of the metric: if every translation is the same string, retrieval is exact."""
    import torch
    from transformers import BertConfig, BertModel

    from trainables.realignment.retrieval import word_retrieval_accuracy
    from trainables.realignment.word_pairs import AlignedPair

    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=len(mbert_tokenizer), hidden_size=16, num_hidden_layers=1,
                                   num_attention_heads=2, intermediate_size=16,
                                   hidden_dropout_prob=0.0), add_pooling_layer=False)
    # Layer 0 is the embedding output: the same word at the same position has the same state.
    pairs = [AlignedPair("fr", ("alpha", "beta"), ("alpha", "beta"), ((0, 0), (1, 1))),
             AlignedPair("fr", ("gamma", "delta"), ("gamma", "delta"), ((0, 0), (1, 1)))]
    result = word_retrieval_accuracy(encoder, mbert_tokenizer, pairs, layer=0)
    assert result == {"retrieval_accuracy": 1.0, "retrieval_candidates": 4}
