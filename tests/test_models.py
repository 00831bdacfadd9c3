"""Built-in tiny models, tokenizers that do not fail silently, model loading errors."""

from __future__ import annotations

import time

import pytest
import torch

from trainables.errors import SpecError
from trainables.models import encoder_layout, load_encoder, model_num_blocks
from trainables.tiny_models import MBERT_VOCAB_SIZE, train_xlmr_vocabulary

MIXED = "Der Hund läuft, 東京は大きい, собака бежит, الكلب يجري, कुत्ता दौड़ता है."


def test_mbert_vocabulary_is_complete_and_cased(mbert_tokenizer):
    assert len(mbert_tokenizer) == MBERT_VOCAB_SIZE == 119_547
    ids = mbert_tokenizer(MIXED, add_special_tokens=False)["input_ids"]
    assert mbert_tokenizer.unk_token_id not in ids, "a script maps to [UNK]: broken vocabulary"
    # cased: 'Der' and 'der' differ
    assert mbert_tokenizer.tokenize("Der") != mbert_tokenizer.tokenize("der")
    decoded = mbert_tokenizer.decode(ids)
    assert decoded.replace(" ", "") == MIXED.replace(" ", "")


@pytest.mark.parametrize("name, blocks, layout", [
    ("tiny-mbert", 4, "encoder.layer"),
    ("tiny-distilmbert", 2, "transformer.layer"),
    ("tiny-xlmr", 4, "encoder.layer"),
])
def test_tiny_models_load_with_their_layout(name, blocks, layout):
    encoder, tokenizer = load_encoder(name)
    assert encoder_layout(encoder).block_prefix == layout
    assert encoder_layout(encoder).num_blocks == blocks == model_num_blocks(name)
    assert encoder.training, "from_pretrained returns eval mode; load_encoder must switch to train"
    assert tokenizer.is_fast
    ids = tokenizer(MIXED, add_special_tokens=False)["input_ids"]
    assert ids.count(tokenizer.unk_token_id) <= 2


def test_distilmbert_has_half_the_blocks_of_mbert():
    assert model_num_blocks("tiny-distilmbert") * 2 == model_num_blocks("tiny-mbert")


def test_tiny_models_are_built_deterministically():
    import torch

    first, _ = load_encoder("tiny-mbert")
    second, _ = load_encoder("tiny-mbert")
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.slow
def test_xlmr_tokenizer_training_is_deterministic():
    first = train_xlmr_vocabulary()
    second = train_xlmr_vocabulary()
    assert first == second
    assert [piece for piece, _ in first[:5]] == ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def test_local_directory_loads(tmp_path):
    from transformers import BertConfig, BertModel

    from trainables.tiny_models import mbert_tokenizer

    BertModel(BertConfig(vocab_size=MBERT_VOCAB_SIZE, hidden_size=8, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=16)).save_pretrained(tmp_path)
    mbert_tokenizer().save_pretrained(tmp_path)
    encoder, tokenizer = load_encoder(str(tmp_path))
    assert encoder_layout(encoder).num_blocks == 2
    assert len(tokenizer) == MBERT_VOCAB_SIZE


def test_unknown_model_fails_fast_with_one_line():
    started = time.perf_counter()
    with pytest.raises(SpecError, match="unknown model 'no-such-org/no-such-model'") as error:
        model_num_blocks("no-such-org/no-such-model")
    assert "\n" not in str(error.value)
    assert time.perf_counter() - started < 15


def test_mbert_pooler_is_loaded_from_the_checkpoint_only_when_asked():
    """NLI classifies from BERT's pretrained pooler (as BertForSequenceClassification); other tasks load none."""
    from safetensors.torch import load_file

    from trainables.tiny_models import tiny_model_dir

    saved = load_file(str(tiny_model_dir("tiny-mbert") / "model.safetensors"))
    encoder, _ = load_encoder("tiny-mbert", pooler=True)
    assert torch.equal(encoder.pooler.dense.weight.detach(), saved["pooler.dense.weight"])
    assert torch.equal(encoder.pooler.dense.bias.detach(), saved["pooler.dense.bias"])
    assert load_encoder("tiny-mbert")[0].pooler is None
    # XLM-R's and DistilBERT's sentence classifiers use no pooler: none is loaded
    assert load_encoder("tiny-xlmr", pooler=True)[0].pooler is None
    assert not hasattr(load_encoder("tiny-distilmbert", pooler=True)[0], "pooler")


def test_a_bert_checkpoint_without_pooler_weights_is_refused_when_the_pooler_is_needed(tmp_path):
    from transformers import BertConfig, BertModel

    from trainables.tiny_models import mbert_tokenizer

    BertModel(BertConfig(vocab_size=MBERT_VOCAB_SIZE, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=16), add_pooling_layer=False).save_pretrained(tmp_path)
    mbert_tokenizer().save_pretrained(tmp_path)
    with pytest.raises(SpecError, match="has no pretrained pooler weights") as error:
        load_encoder(str(tmp_path), pooler=True)
    assert "\n" not in str(error.value)
    assert load_encoder(str(tmp_path))[0].pooler is None   # PoS, NER, QA do not need it


@pytest.mark.parametrize("config, expected", [
    ({"model_type": "bert", "classifier_dropout": 0.3, "hidden_dropout_prob": 0.1}, 0.3),
    ({"model_type": "bert", "classifier_dropout": None, "hidden_dropout_prob": 0.0}, 0.0),
    ({"model_type": "distilbert", "dropout": 0.15, "seq_classif_dropout": 0.2}, 0.15),
])
def test_head_dropout_is_the_one_transformers_token_heads_use(config, expected):
    from types import SimpleNamespace

    from trainables.models import dropout_rate

    assert dropout_rate(SimpleNamespace(config=SimpleNamespace(**config))) == expected
