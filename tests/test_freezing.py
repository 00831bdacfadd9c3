"""The frozen-parameter sets, name by name, and what one realignment step does to them."""

from __future__ import annotations

import pytest
import torch
from transformers import (BertConfig, BertModel, DistilBertConfig, DistilBertModel, XLMRobertaConfig,
                          XLMRobertaModel)

from trainables.errors import SpecError
from trainables.freezing import frozen, frozen_parameter_names, parse_freeze_spec
from trainables.models import encoder_layout

# Parameter names of one block, written out by hand from the transformers layouts.
BERT_BLOCK = ["attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight",
              "attention.self.key.bias", "attention.self.value.weight", "attention.self.value.bias",
              "attention.output.dense.weight", "attention.output.dense.bias",
              "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
              "intermediate.dense.weight", "intermediate.dense.bias", "output.dense.weight",
              "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias"]
DISTIL_BLOCK = ["attention.q_lin.weight", "attention.q_lin.bias", "attention.k_lin.weight",
                "attention.k_lin.bias", "attention.v_lin.weight", "attention.v_lin.bias",
                "attention.out_lin.weight", "attention.out_lin.bias", "sa_layer_norm.weight",
                "sa_layer_norm.bias", "ffn.lin1.weight", "ffn.lin1.bias", "ffn.lin2.weight", "ffn.lin2.bias",
                "output_layer_norm.weight", "output_layer_norm.bias"]
BERT_EMBEDDINGS = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                   "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
                   "embeddings.LayerNorm.bias"]
DISTIL_EMBEDDINGS = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                     "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]


def bert(blocks: int):
    return BertModel(BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=blocks, num_attention_heads=2,
                                intermediate_size=16, max_position_embeddings=32))


def xlmr(blocks: int):
    return XLMRobertaModel(XLMRobertaConfig(vocab_size=50, hidden_size=8, num_hidden_layers=blocks,
                                            num_attention_heads=2, intermediate_size=16,
                                            max_position_embeddings=34))


def distil(blocks: int):
    return DistilBertModel(DistilBertConfig(vocab_size=50, dim=8, n_layers=blocks, n_heads=2, hidden_dim=16,
                                            max_position_embeddings=32))


ARCHITECTURES = {
    "bert": (bert, "encoder.layer", BERT_BLOCK, BERT_EMBEDDINGS),
    "xlmr": (xlmr, "encoder.layer", BERT_BLOCK, BERT_EMBEDDINGS),
    "distilbert": (distil, "transformer.layer", DISTIL_BLOCK, DISTIL_EMBEDDINGS),
}


def block_names(prefix: str, block: list[str], indices) -> set[str]:
    return {f"{prefix}.{i}.{name}" for i in indices for name in block}


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
@pytest.mark.parametrize("blocks", [6, 12])
@pytest.mark.parametrize("spec, frozen_blocks, embeddings", [
    ("none", lambda L: [], False),
    ("front", lambda L: range(L // 2), False),           # paper: blocks 0 .. L/2-1
    ("back", lambda L: range(L // 2, L), False),         # paper: blocks L/2 .. L-1
    ("front:1", lambda L: [0], False),
    ("back:2", lambda L: [L - 2, L - 1], False),
    ("front+embeddings", lambda L: range(L // 2), True),
    ("range:0-2", lambda L: [0], True),                  # embeddings and block 0
    ("range:3-5", lambda L: [2, 3], False),              # positions 3, 4 = blocks 2, 3
])
def test_exact_frozen_names(architecture, blocks, spec, frozen_blocks, embeddings):
    build, prefix, block, embedding_names = ARCHITECTURES[architecture]
    model = build(blocks)
    expected = block_names(prefix, block, frozen_blocks(blocks))
    if embeddings:
        expected |= set(embedding_names)
    assert frozen_parameter_names(model, spec) == expected


def test_paper_halves_on_twelve_blocks_are_complementary():
    model = bert(12)
    front = frozen_parameter_names(model, "front")
    back = frozen_parameter_names(model, "back")
    assert front == block_names("encoder.layer", BERT_BLOCK, range(6))
    assert back == block_names("encoder.layer", BERT_BLOCK, range(6, 12))
    assert not front & back


def test_pooler_and_embeddings_stay_trainable_with_front_and_back():
    model = bert(6)
    frozen_names = frozen_parameter_names(model, "front") | frozen_parameter_names(model, "back")
    trainable = {n for n, _ in model.named_parameters()} - frozen_names
    assert trainable == set(BERT_EMBEDDINGS) | {"pooler.dense.weight", "pooler.dense.bias"}


@pytest.mark.parametrize("spec, message", [
    ("front:7", "outside 1..6"),
    ("back:0", "outside 1..6"),
    ("range:0-8", "0 <= A < B <= 7"),
    ("range:4-4", "0 <= A < B <= 7"),
    ("middle", "bad freezing spec"),
    ("front:two", "bad freezing spec"),
    ("none:3", "takes no count"),
])
def test_bad_specs_are_one_line_errors(spec, message):
    with pytest.raises(SpecError, match=message) as error:
        frozen_parameter_names(bert(6), spec)
    assert "\n" not in str(error.value)


def test_unknown_layout_is_a_clear_error():
    class NotAnEncoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(2, 2)])

    with pytest.raises(SpecError, match="unsupported encoder layout"):
        encoder_layout(NotAnEncoder())


def test_spec_round_trips_to_text():
    assert str(parse_freeze_spec("back:3", freeze_embeddings=True)) == "back:3+embeddings"
    assert str(parse_freeze_spec("range:1-4")) == "range:1-4"


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_one_realignment_step_leaves_frozen_tensors_bit_identical(architecture, mbert_tokenizer):
    """Realign with the front half frozen: frozen tensors unchanged to the bit, all others moved."""
    from trainables.realignment.realigner import RealignmentStream, RealignSettings, realign
    from trainables.realignment.word_pairs import AlignedPair

    torch.manual_seed(0)
    build = ARCHITECTURES[architecture][0]
    model = build(4)
    model.resize_token_embeddings(len(mbert_tokenizer)) if architecture != "xlmr" else None
    if architecture == "xlmr":
        model = XLMRobertaModel(XLMRobertaConfig(vocab_size=len(mbert_tokenizer), hidden_size=8,
                                                 num_hidden_layers=4, num_attention_heads=2,
                                                 intermediate_size=16, max_position_embeddings=160,
                                                 pad_token_id=0))
    pairs = {"fr": [AlignedPair("fr", ("the", "cat", "sleeps"), ("le", "chat", "dort"), ((1, 1), (2, 2))),
                    AlignedPair("fr", ("a", "dog"), ("un", "chien"), ((0, 0), (1, 1)))]}
    # "last": with the default (penultimate) the last block gets no realignment gradient
    settings = RealignSettings(batch_size=2, learning_rate=1e-2, projection=True, layer="last")
    stream = RealignmentStream(pairs, mbert_tokenizer, settings, seed=0)
    names = frozen_parameter_names(model, "front")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    realign(model, stream, settings, steps=1, frozen_names=names, learning_rate=1e-2,
            device=torch.device("cpu"))
    after = dict(model.named_parameters())
    assert names, "front froze nothing"
    for name in names:
        assert torch.equal(before[name], after[name]), name
    # Everything that takes part in the loss moves; the type embeddings of
    # unused segment ids and position rows beyond the batch do not matter.
    moved = {n for n in after if n not in names and not torch.equal(before[n], after[n])}
    layout = encoder_layout(model)
    for name in after:
        if layout.block_of(name) is not None and name not in names:
            assert name in moved, f"{name} did not change"
    assert "embeddings.word_embeddings.weight" in moved
    assert all(p.requires_grad for p in model.parameters()), "not every parameter is trainable after realignment"


def test_frozen_context_restores_trainability_on_error():
    model = bert(2)
    names = frozen_parameter_names(model, "front")
    with pytest.raises(RuntimeError):
        with frozen(model, names):
            assert not any(p.requires_grad for n, p in model.named_parameters() if n in names)
            raise RuntimeError("boom")
    assert all(p.requires_grad for p in model.parameters())
