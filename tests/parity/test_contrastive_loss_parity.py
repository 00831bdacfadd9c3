"""The realignment loss against the reference's own ``compute_realignment_loss``.

``tests/data/parity/contrastive_loss.jsonl`` (see its README, section 3)
holds 30 batches: padded hidden states of both sides, each word's
sub-word range, the links, and the reference's loss in float64. Each
first-sub-word case (0-23) is replayed through the project's own path:
pairs collated by ``collate_pairs`` (which fixes the candidate order),
a stand-in encoder whose hidden state L-1 of L is the case's tensor
(every other hidden state is noise, so the default ``penultimate`` must
pick the right one), then ``realignment_loss`` without a projection head
(the cases were made without one).

Cases 24-29 use full-word ranges whose sub-word vectors the reference
sums: they are replayed with ``word_representation: sum``.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from trainables.realignment.batches import EncodedPair, collate_pairs
from trainables.realignment.contrastive_loss import query_losses
from trainables.realignment.realigner import RealignSettings, realignment_loss, word_states

CASES_FILE = Path(__file__).parent.parent / "data" / "parity" / "contrastive_loss.jsonl"
CASES = [json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
FIRST_SUBWORD = [case for case in CASES if case["range_mode"] == "first_subword"]
FULL_WORD = [case for case in CASES if case["range_mode"] == "full_word"]
NUM_BLOCKS = 12


class HiddenStatesEncoder(nn.Module):
    """Returns fixed hidden states: ``states`` at index ``NUM_BLOCKS - 1``, noise elsewhere."""

    def __init__(self, states: torch.Tensor):
        super().__init__()
        self.states = states
        generator = torch.Generator().manual_seed(7)
        self.noise = [torch.randn(states.shape, generator=generator, dtype=states.dtype)
                      for _ in range(NUM_BLOCKS + 1)]

    def forward(self, input_ids, attention_mask, output_hidden_states):
        assert output_hidden_states and input_ids.shape == self.states.shape[:2]
        hidden = list(self.noise)
        hidden[NUM_BLOCKS - 1] = self.states
        return SimpleNamespace(hidden_states=tuple(hidden))


def replay(case: dict):
    """The case as the project's batch and a stand-in encoder, in float64."""
    pairs = []
    for pair in case["pairs"]:
        if case["range_mode"] == "first_subword":
            assert all(end == start + 1 for start, end in pair["left_word_ranges"] + pair["right_word_ranges"])
        pairs.append(EncodedPair(source_ids=[0] * pair["left_seq_len"], target_ids=[0] * pair["right_seq_len"],
                                 source_first=[start for start, _ in pair["left_word_ranges"]],
                                 target_first=[start for start, _ in pair["right_word_ranges"]],
                                 links=[tuple(link) for link in pair["links"]],
                                 source_ends=[end for _, end in pair["left_word_ranges"]],
                                 target_ends=[end for _, end in pair["right_word_ranges"]]))
    batch = collate_pairs(pairs, pad_token_id=0)
    length = batch.input_ids.shape[1]
    sides = [torch.tensor(side, dtype=torch.float64) for side in case["left_hidden"] + case["right_hidden"]]
    states = torch.zeros((len(sides), length, case["hidden_size"]), dtype=torch.float64)
    for row, side in enumerate(sides):
        kept = min(length, side.shape[0])
        states[row, :kept] = side[:kept]    # beyond a side's length: padding, never a word
    return batch, HiddenStatesEncoder(states)


def test_the_file_holds_24_first_subword_cases():
    assert [case["id"] for case in FIRST_SUBWORD] == list(range(24))


@pytest.mark.parametrize("case", FIRST_SUBWORD, ids=lambda case: f"case{case['id']}")
def test_loss_equals_the_references(case):
    batch, encoder = replay(case)
    settings = RealignSettings(projection=False)                 # defaults: penultimate, queries, T = 0.1
    loss = realignment_loss(encoder, None, batch, settings)
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(case["loss_float64"], abs=1e-7)
    # the same queries in the same order, each with the same positive
    num_links = case["n_links_total"]
    assert batch.links[:, 1].tolist() + batch.links[:, 0].tolist() == case["goal"]
    per_query = query_losses(word_states(encoder, batch, settings.layer), batch.links, settings.temperature)
    assert per_query.tolist() == pytest.approx(case["per_query_nll_float64"], abs=1e-7)
    assert len(per_query) == 2 * num_links
    # the hidden state matters: the last one (noise here) gives another loss
    other = realignment_loss(encoder, None, batch, RealignSettings(projection=False, layer="last"))
    assert abs(other.item() - case["loss_float64"]) > 1e-3


def test_the_file_holds_6_full_word_cases_with_several_subwords():
    assert [case["id"] for case in FULL_WORD] == list(range(24, 30))
    assert any(end - start > 1 for case in FULL_WORD for pair in case["pairs"]
               for start, end in pair["left_word_ranges"] + pair["right_word_ranges"])


@pytest.mark.parametrize("case", FULL_WORD, ids=lambda case: f"case{case['id']}")
def test_summed_subwords_loss_equals_the_references(case):
    batch, encoder = replay(case)
    settings = RealignSettings(projection=False, word_representation="sum")
    loss = realignment_loss(encoder, None, batch, settings)
    assert loss.item() == pytest.approx(case["loss_float64"], abs=1e-7)
    per_query = query_losses(word_states(encoder, batch, settings.layer, "sum"), batch.links,
                             settings.temperature)
    assert per_query.tolist() == pytest.approx(case["per_query_nll_float64"], abs=1e-7)
    # the first sub-word alone gives another loss on these cases
    first = realignment_loss(encoder, None, batch, RealignSettings(projection=False))
    assert abs(first.item() - case["loss_float64"]) > 1e-4


def test_encoded_pairs_carry_each_words_subword_range(mbert_tokenizer):
    """Real tokenization: a word's range covers exactly its pieces (sum mode reads them all)."""
    from trainables.realignment.batches import encode_pair
    from trainables.realignment.word_pairs import AlignedPair

    pair = AlignedPair("fr", ("Unbelievably", "big", "houses"), ("Incroyablement", "grandes"), ((0, 0),))
    encoded = encode_pair(mbert_tokenizer, pair, max_length=32)
    pieces = [len(mbert_tokenizer.tokenize(w)) for w in pair.source_words]
    assert encoded.source_first == [1, 1 + pieces[0], 1 + pieces[0] + pieces[1]]
    assert encoded.source_ends == [1 + pieces[0], 1 + pieces[0] + pieces[1], 1 + sum(pieces)]
    batch = collate_pairs([encoded], mbert_tokenizer.pad_token_id)
    assert (batch.word_ends - batch.word_positions).tolist()[:3] == pieces
