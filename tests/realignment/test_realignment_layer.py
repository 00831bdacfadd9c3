"""Which hidden state the realignment loss uses, per architecture.

The reference realigns ``hidden_states[L-1]`` of an L-block encoder (the
penultimate block's output), so its last block gets no realignment
gradient; ``realignment.layer`` defaults to that ('penultimate'), and
'last' or a hidden-state index choose otherwise.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml
from transformers import (BertConfig, BertModel, DistilBertConfig, DistilBertModel, XLMRobertaConfig,
                          XLMRobertaModel)

from trainables.errors import SpecError
from trainables.models import encoder_layout
from trainables.realignment.realigner import (RealignmentStream, RealignSettings, hidden_state_index, realign,
                                              realignment_loss, realignment_provenance, word_states)
from trainables.realignment.word_pairs import AlignedPair

NUM_BLOCKS = 3
DEMO = Path(__file__).resolve().parents[2] / "search_spaces" / "demo.yaml"


def build(architecture: str, vocab_size: int) -> torch.nn.Module:
    torch.manual_seed(0)
    width = dict(num_attention_heads=2, intermediate_size=16, hidden_dropout_prob=0.0,
                 attention_probs_dropout_prob=0.0)
    if architecture == "bert":
        return BertModel(BertConfig(vocab_size=vocab_size, hidden_size=8, num_hidden_layers=NUM_BLOCKS, **width),
                         add_pooling_layer=False)
    if architecture == "xlmr":
        return XLMRobertaModel(XLMRobertaConfig(vocab_size=vocab_size, hidden_size=8, num_hidden_layers=NUM_BLOCKS,
                                                max_position_embeddings=160, pad_token_id=0, **width),
                               add_pooling_layer=False)
    return DistilBertModel(DistilBertConfig(vocab_size=vocab_size, dim=8, n_layers=NUM_BLOCKS, n_heads=2,
                                            hidden_dim=16, dropout=0.0, attention_dropout=0.0))


ARCHITECTURES = ("bert", "distilbert", "xlmr")
PAIRS = {"fr": [AlignedPair("fr", ("the", "cat", "sleeps"), ("le", "chat", "dort"), ((1, 1), (2, 2))),
                AlignedPair("fr", ("a", "dog"), ("un", "chien"), ((0, 0), (1, 1)))]}


def one_batch(tokenizer):
    return RealignmentStream(PAIRS, tokenizer, RealignSettings(batch_size=2), seed=0).next_batch()


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_hidden_state_used_per_setting(architecture, mbert_tokenizer):
    encoder = build(architecture, len(mbert_tokenizer)).eval()
    batch = one_batch(mbert_tokenizer)
    with torch.no_grad():
        hidden = encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                         output_hidden_states=True).hidden_states
        assert len(hidden) == NUM_BLOCKS + 1
        expected = {"penultimate": NUM_BLOCKS - 1, "last": NUM_BLOCKS, 0: 0, 1: 1}
        for layer, index in expected.items():
            states = word_states(encoder, batch, layer)
            assert torch.equal(states, hidden[index][batch.word_rows, batch.word_positions]), layer
        assert not torch.equal(word_states(encoder, batch, "penultimate"), word_states(encoder, batch, "last"))
    assert RealignSettings().layer == "penultimate"
    provenance = realignment_provenance(encoder, RealignSettings())
    assert (provenance["realign_layer"], provenance["realign_hidden_state"]) == ("penultimate", NUM_BLOCKS - 1)
    assert provenance["realign_loss_reduction"] == "queries" and provenance["realign_max_length"] == 96


def block_gradients(encoder: torch.nn.Module, block: int) -> list[torch.Tensor | None]:
    layout = encoder_layout(encoder)
    return [p.grad for name, p in encoder.named_parameters() if layout.block_of(name) == block]


def no_gradient(grad: torch.Tensor | None) -> bool:
    return grad is None or not grad.any()


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_penultimate_leaves_the_last_block_without_gradient(architecture, mbert_tokenizer):
    encoder = build(architecture, len(mbert_tokenizer))
    batch = one_batch(mbert_tokenizer)
    realignment_loss(encoder, None, batch, RealignSettings(projection=False)).backward()
    assert all(no_gradient(g) for g in block_gradients(encoder, NUM_BLOCKS - 1)), "last block got a gradient"
    below = block_gradients(encoder, NUM_BLOCKS - 2)
    assert below and all(g is not None and g.any() for g in below), "block L-2 got no gradient"

    encoder.zero_grad(set_to_none=True)
    realignment_loss(encoder, None, batch, RealignSettings(projection=False, layer="last")).backward()
    last = block_gradients(encoder, NUM_BLOCKS - 1)
    assert last and all(g is not None and g.any() for g in last), "'last' must reach the last block"


def test_realign_records_the_choice(mbert_tokenizer):
    encoder = build("bert", len(mbert_tokenizer))
    settings = RealignSettings(batch_size=2, layer="last")
    stream = RealignmentStream(PAIRS, mbert_tokenizer, settings, seed=0)
    stats = realign(encoder, stream, settings, steps=1, frozen_names=frozenset(), learning_rate=1e-3,
                    device=torch.device("cpu"))
    assert (stats["realign_layer"], stats["realign_hidden_state"]) == ("last", NUM_BLOCKS)
    assert stats["realign_pairs_without_link"] == {"fr": 0}


@pytest.mark.parametrize("layer, message", [
    ("final", "realignment.layer must be 'penultimate', 'last' or a hidden-state index (0 = the embeddings), "
              "got 'final'"),
    (-1, "got -1 (the reference's -1 is 'penultimate')"),
    (1.5, "got 1.5"),
    (True, "got True"),
])
def test_bad_layer_values_are_refused(layer, message):
    with pytest.raises(SpecError) as error:
        RealignSettings(layer=layer)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_index_out_of_range_names_model_and_range():
    assert hidden_state_index(12, 12) == 12 and hidden_state_index(0, 6) == 0
    assert hidden_state_index("penultimate", 6) == 5 and hidden_state_index("last", 6) == 6
    with pytest.raises(SpecError, match=r"realignment.layer 7 is out of range for distilbert-base-multilingual-"
                                        r"cased: hidden-state indices 0\.\.6 \(0 = the embeddings, 6 = the last"):
        hidden_state_index(7, 6, "distilbert-base-multilingual-cased")


def test_unknown_loss_reduction_is_refused():
    with pytest.raises(SpecError, match="realignment.loss_reduction must be one of queries, sentence_pairs, "
                                        "got 'mean'"):
        RealignSettings(loss_reduction="mean")


def dry_run_error(tmp_path: Path, capsys, realignment: dict) -> str:
    from orchestrator.cli import main

    experiment = copy.deepcopy(yaml.safe_load(DEMO.read_text(encoding="utf-8")))
    experiment["realignment"].update(realignment)
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False, allow_unicode=True), encoding="utf-8")
    code = main(["run", str(path), "--output", str(tmp_path / "out"), "--dry-run"])
    captured = capsys.readouterr()
    assert code == 2 and len(captured.err.splitlines()) == 1, captured.err
    return captured.err


@pytest.mark.parametrize("realignment, expected", [
    ({"layer": 5}, "realignment.layer 5 is out of range for tiny-mbert: hidden-state indices 0..4"),
    ({"layer": "top"}, "realignment.layer must be 'penultimate', 'last' or an integer from 0 to 1000, got 'top'"),
    ({"loss_reduction": "pairs"}, "realignment.loss_reduction must be one of queries, sentence_pairs"),
    ({"word_representation": "mean"}, "realignment.word_representation must be one of first, sum, got 'mean'"),
])
def test_the_experiment_file_is_checked_before_any_trial(tmp_path, capsys, realignment, expected):
    assert expected in dry_run_error(tmp_path, capsys, realignment)
