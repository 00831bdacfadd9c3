"""The UD reader and the PoS task: multi-word tokens, windows, accuracy."""

from __future__ import annotations

import pytest
import torch

from trainables.bundled import bundled_path
from trainables.errors import DataError
from trainables.tasks.base import IGNORE_INDEX, FinetuneSettings
from trainables.tasks.conllu_reader import read_conllu
from trainables.tasks.labels import UPOS_LABELS
from trainables.tasks.registry import get_task
from trainables.tasks.token_classification import TaggedSentence, sentence_windows, word_accuracy

CONLLU = """# sent_id = 1
# text = Im Haus.
1-2\tIm\t_\t_\t_\t_\t_\t_\t_\t_
1\tIn\tin\tADP\t_\t_\t3\tcase\t_\t_
2\tdem\tder\tDET\t_\t_\t3\tdet\t_\t_
3\tHaus\tHaus\tNOUN\t_\t_\t0\troot\t_\t_
3.1\tist\tsein\tAUX\t_\t_\t_\t_\t_\t_
4\t.\t.\tPUNCT\t_\t_\t3\tpunct\t_\t_

1\tJa\tja\tINTJ\t_\t_\t0\troot\t_\t_
"""


def test_reader_skips_multiword_tokens_and_empty_nodes(tmp_path):
    path = tmp_path / "de-ud-test.conllu"
    path.write_text(CONLLU, encoding="utf-8")
    sentences = read_conllu(path)
    assert sentences == [TaggedSentence(("In", "dem", "Haus", "."), ("ADP", "DET", "NOUN", "PUNCT")),
                         TaggedSentence(("Ja",), ("INTJ",))]


@pytest.mark.parametrize("line, message", [
    ("1\tIn\tin\tADP\t_\t_\t3\tcase\t_", "expected 10 tab-separated columns, found 9"),
    ("x\tIn\tin\tADP\t_\t_\t3\tcase\t_\t_", "bad token id 'x'"),
    ("1\tIn\tin\tPREP\t_\t_\t3\tcase\t_\t_", "unknown UPOS tag 'PREP'"),
])
def test_malformed_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.conllu"
    path.write_text("# a comment\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:2: {message}"):
        read_conllu(path)


def test_bundled_treebanks_read(tmp_path):
    for name, count in [("ud/ja_gsd-ud-test.first50.conllu", 50), ("ud/ar_pud-ud-test.first50.conllu", 50),
                        ("ud/fr_gsd-ud-test.first100.conllu", 100)]:
        sentences = read_conllu(bundled_path(name))
        assert len(sentences) == count
        assert all(len(s.words) == len(s.labels) for s in sentences)


def test_treebank_directory_and_limit(tmp_path):
    (tmp_path / "xx_test-ud-test.conllu").write_text(CONLLU, encoding="utf-8")
    task = get_task("pos").load()
    assert len(task.load_examples(str(tmp_path), "de", "test")) == 2
    assert len(task.load_examples(str(tmp_path), "de", "test", limit=1)) == 1
    with pytest.raises(DataError, match="no \\*-ud-train.conllu file"):
        task.load_examples(str(tmp_path), "de", "train")


def test_labels_on_first_subwords_only(mbert_tokenizer):
    sentence = TaggedSentence(("Unbelievably", "good"), ("ADV", "ADJ"))
    [window] = sentence_windows(mbert_tokenizer, [sentence], {l: i for i, l in enumerate(UPOS_LABELS)}, 96)
    pieces = mbert_tokenizer("Unbelievably", add_special_tokens=False)["input_ids"]
    assert len(pieces) > 1
    expected = ([IGNORE_INDEX] + [UPOS_LABELS.index("ADV")] + [IGNORE_INDEX] * (len(pieces) - 1)
                + [UPOS_LABELS.index("ADJ")] + [IGNORE_INDEX])
    assert window.labels == expected
    assert window.input_ids[0] == mbert_tokenizer.cls_token_id and window.input_ids[-1] == mbert_tokenizer.sep_token_id


def test_long_sentence_split_into_windows_without_losing_words(mbert_tokenizer):
    words = tuple(f"word{i}" for i in range(120))
    sentence = TaggedSentence(words, ("NOUN",) * 120)
    windows = sentence_windows(mbert_tokenizer, [sentence], {"NOUN": 7}, 32)
    assert len(windows) > 1
    assert all(len(w.input_ids) <= 32 for w in windows)
    assert sum(sum(l != IGNORE_INDEX for l in w.labels) for w in windows) == 120


def test_every_word_of_a_long_sentence_is_predicted(mbert_tokenizer):
    from transformers import BertConfig, BertModel

    from trainables.tasks.base import TaskModel

    torch.manual_seed(0)
    task = get_task("pos").load()
    encoder = BertModel(BertConfig(vocab_size=len(mbert_tokenizer), hidden_size=16, num_hidden_layers=1,
                                   num_attention_heads=2, intermediate_size=32), add_pooling_layer=False)
    model = TaskModel(encoder, task.build_head(16, 0.0))
    sentences = [TaggedSentence(tuple(f"w{i}" for i in range(200)), ("NOUN",) * 200),
                 TaggedSentence(("a", "b"), ("DET", ""))]
    settings = FinetuneSettings(eval_max_length=24, eval_batch_size=4)
    predicted = task.predict(model, mbert_tokenizer, sentences, settings, torch.device("cpu"))
    assert [len(p) for p in predicted] == [200, 2]
    metrics = task.evaluate(model, mbert_tokenizer, sentences, settings, torch.device("cpu"))
    assert set(metrics) == {"accuracy"} and 0.0 <= metrics["accuracy"] <= 1.0


def test_word_accuracy_known_values():
    gold = [["NOUN", "VERB", ""], ["DET"]]
    predicted = [["NOUN", "NOUN", "X"], ["DET"]]
    # 3 annotated words, 2 right; the unannotated one is not scored
    assert word_accuracy(gold, predicted) == pytest.approx(2 / 3)
