"""Which sub-word carries a word's label with a SentencePiece tokenizer (XLM-R).

SentencePiece splits most Chinese, Japanese and Thai words, tokenized one by
one, into a bare "▁" piece and the rest. That piece is shared by every word;
a label put on it says nothing about the word (tiny-xlmr PoS on Thai scored
0.8% so). The bare piece is deleted, as the reference does; a word of
nothing but "▁" has no label and no prediction.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainables.bundled import bundled_path
from trainables.tasks.base import IGNORE_INDEX, FinetuneSettings
from trainables.tasks.conllu_reader import read_conllu
from trainables.tasks.labels import UPOS_LABELS
from trainables.tasks.registry import get_task
from trainables.tasks.token_classification import (TaggedSentence, bare_metaspace_id, scored_gold,
                                                   sentence_windows, word_accuracy, word_pieces)

PARITY_TOKENIZER = Path(__file__).resolve().parents[1] / "data" / "parity" / "xlmr_alignment" / "tokenizer.json"
TREEBANKS = ["ud/zh_gsd-ud-test.first100.conllu", "ud/ja_gsd-ud-test.first50.conllu",
             "ud/th_pud-ud-test.first50.conllu"]
UPOS = {label: i for i, label in enumerate(UPOS_LABELS)}


@pytest.fixture(scope="module")
def parity_tokenizer():
    from tokenizers import Tokenizer
    from transformers import XLMRobertaTokenizerFast

    return XLMRobertaTokenizerFast(tokenizer_object=Tokenizer.from_file(str(PARITY_TOKENIZER)))


@pytest.fixture(scope="module")
def tiny_xlmr_tokenizer():
    from transformers import AutoTokenizer

    from trainables.tiny_models import tiny_model_dir

    return AutoTokenizer.from_pretrained(tiny_model_dir("tiny-xlmr"))


@pytest.fixture(params=["parity", "tiny-xlmr"])
def sentencepiece_tokenizer(request, parity_tokenizer, tiny_xlmr_tokenizer):
    return parity_tokenizer if request.param == "parity" else tiny_xlmr_tokenizer


def expected_first_piece(tokenizer, word: str) -> int | None:
    """The word's first piece that is not the bare "▁", read from its token strings."""
    pieces = [token for token in tokenizer.tokenize(word) if token != "▁"]
    return tokenizer.convert_tokens_to_ids(pieces[0]) if pieces else None


@pytest.mark.parametrize("treebank", TREEBANKS)
def test_labels_never_sit_on_the_bare_piece(sentencepiece_tokenizer, treebank):
    tokenizer = sentencepiece_tokenizer
    sentences = read_conllu(bundled_path(treebank))
    bare = tokenizer.convert_tokens_to_ids("▁")
    assert bare_metaspace_id(tokenizer) == bare != tokenizer.unk_token_id
    # the situation of the bug: most words start with the bare piece when tokenized alone
    words = [word for sentence in sentences for word in sentence.words]
    starting_bare = sum(tokenizer.tokenize(word)[:1] == ["▁"] for word in words)
    assert starting_bare > len(words) / 2

    windows = sentence_windows(tokenizer, sentences, UPOS, 128)
    labelled: dict[tuple[int, int], int] = {}
    for window in windows:
        assert bare not in window.input_ids
        for word, position in window.first_subwords.items():
            assert (window.sentence, word) not in labelled, "a word labelled twice"
            labelled[window.sentence, word] = window.input_ids[position]
            assert window.labels[position] == UPOS[sentences[window.sentence].labels[word]]
        assert sum(label != IGNORE_INDEX for label in window.labels) == len(window.first_subwords)
    expected = {(s, w): expected_first_piece(tokenizer, word)
                for s, sentence in enumerate(sentences) for w, word in enumerate(sentence.words)}
    assert labelled == {key: piece for key, piece in expected.items() if piece is not None}


def test_wordpiece_tokenizers_are_left_alone(mbert_tokenizer):
    assert bare_metaspace_id(mbert_tokenizer) is None
    words = ["今天", "天气", "很好", "▁", "Unbelievably"]
    assert word_pieces(mbert_tokenizer, words) == [
        mbert_tokenizer(word, add_special_tokens=False)["input_ids"] or [mbert_tokenizer.unk_token_id]
        for word in words]


def test_a_word_longer_than_a_window_keeps_its_first_pieces(parity_tokenizer):
    long_word = "commencement" * 4
    pieces = word_pieces(parity_tokenizer, [long_word])[0]
    assert len(pieces) > 6
    sentence = TaggedSentence(("Dieu", long_word, "."), ("PROPN", "NOUN", "PUNCT"))
    windows = sentence_windows(parity_tokenizer, [sentence], UPOS, 8)
    assert [w.first_subwords for w in windows] == [{0: 1}, {1: 1}, {2: 1}]
    assert windows[1].input_ids[1:-1] == pieces[:6]
    assert [w.labels[1] for w in windows] == [UPOS["PROPN"], UPOS["NOUN"], UPOS["PUNCT"]]


def tiny_xlmr_model(tokenizer, labels: int):
    from transformers import XLMRobertaConfig, XLMRobertaModel

    from trainables.tasks.base import TaskModel

    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1,
                              num_attention_heads=2, intermediate_size=32, pad_token_id=tokenizer.pad_token_id,
                              max_position_embeddings=66)
    return TaskModel(XLMRobertaModel(config, add_pooling_layer=False), torch.nn.Linear(16, labels))


def test_a_word_of_nothing_but_the_bare_piece_is_not_scored(parity_tokenizer):
    task = get_task("pos").load()
    model = tiny_xlmr_model(parity_tokenizer, len(task.labels))
    sentences = [TaggedSentence(("a", "▁", "b"), ("DET", "SYM", "NOUN")),
                 TaggedSentence(("x", "▁▁", "y", "z"), ("X", "PUNCT", "", "NOUN"))]
    settings = FinetuneSettings(eval_max_length=8, eval_batch_size=1)
    predicted = task.predict(model, parity_tokenizer, sentences, settings, torch.device("cpu"))
    assert [len(row) for row in predicted] == [3, 4]
    assert predicted[0][1] == "" and predicted[1][1] == ""
    assert all(label in task.labels for row in predicted for i, label in enumerate(row) if i != 1)
    gold = scored_gold(sentences, predicted)
    assert gold == [["DET", "", "NOUN"], ["X", "", "", "NOUN"]]
    metrics = task.evaluate(model, parity_tokenizer, sentences, settings, torch.device("cpu"))
    # 4 scored words: the two "▁" words are neither right nor wrong, "y" is unannotated
    right = sum(p == g for row_p, row_g in zip(predicted, gold) for p, g in zip(row_p, row_g) if g)
    assert metrics["accuracy"] == pytest.approx(right / 4) == pytest.approx(word_accuracy(gold, predicted))
    # training features: the "▁" words carry no label anywhere
    features = task.features(sentences, parity_tokenizer, FinetuneSettings(max_length=8))
    assert sorted(l for f in features for l in f["labels"] if l != IGNORE_INDEX) == sorted(
        UPOS[label] for label in ("DET", "NOUN", "X", "NOUN"))


def test_ner_gets_one_prediction_per_word(parity_tokenizer):
    task = get_task("ner").load()
    model = tiny_xlmr_model(parity_tokenizer, len(task.labels))
    sentences = [TaggedSentence(("Paris", "▁", "est", "belle"), ("B-LOC", "O", "O", "O"))]
    settings = FinetuneSettings(eval_max_length=16, eval_batch_size=2)
    predicted = task.predict(model, parity_tokenizer, sentences, settings, torch.device("cpu"))
    assert len(predicted[0]) == 4 and predicted[0][1] == ""
    assert scored_gold(sentences, predicted) == [["B-LOC", "", "O", "O"]]
    metrics = task.evaluate(model, parity_tokenizer, sentences, settings, torch.device("cpu"))
    assert set(metrics) == set(task.metrics([["O"]], [["O"]]))
