"""NLI: TSV/JSONL/Hub loading with one label order, pair features, head, accuracy, a tiny loop."""

import json
from pathlib import Path

import pytest
import torch

from trainables.errors import DataError
from trainables.tasks.base import FinetuneSettings
from trainables.tasks.labels import NLI_LABELS
from trainables.tasks.nli import (FirstTokenClassifier, NliExample, NliTask, PooledOutputClassifier,
                                  PreClassifierHead, accuracy, nli_files, nli_label, pair_features)
from trainables.tasks.registry import get_task

BUNDLED = Path(__file__).resolve().parents[2] / "trainables" / "bundled_data"
XNLI = BUNDLED / "xnli"


@pytest.fixture(scope="module")
def task() -> NliTask:
    return get_task("nli").load()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- data

def test_bundled_english_file(task):
    examples = task.load_examples(str(XNLI / "dev-en.first500.tsv"), "en", "train")
    assert len(examples) == 500
    assert examples[0] == NliExample("And he said, Mama, I'm home.",
                                     "He called his mom as soon as the school bus dropped him off.",
                                     NLI_LABELS.index("neutral"))
    assert {e.label for e in examples} == {0, 1, 2}


def test_directory_test_split_reads_dev_files(task):
    assert nli_files(XNLI, "ar", "test") == [XNLI / "dev-ar.first100.tsv"]
    arabic = task.load_examples(str(XNLI), "ar", "test", limit=10)
    assert len(arabic) == 10 and all(e.label in (0, 1, 2) for e in arabic)
    with pytest.raises(DataError, match="no NLI file for language 'ar', split 'train'"):
        task.load_examples(str(XNLI), "ar", "train")


def test_one_label_order_across_sources(tmp_path, task):
    tsv = write(tmp_path, "a.tsv", "premise\thypothesis\tlabel\nP\tH\tentailment\nP\tH\t1\n"
                                   "P\tH\tcontradictory\nP\tH\t-\n")
    jsonl = write(tmp_path, "a.jsonl", "\n".join(json.dumps(row) for row in [
        {"premise": "P", "hypothesis": "H", "label": 0},
        {"premise": "P", "hypothesis": "H", "label": "Neutral"},
        {"premise": "P", "hypothesis": "H", "label": "contradiction"}]) + "\n\n")
    assert [e.label for e in task.load_examples(str(tsv), "en", "train")] == [0, 1, 2]   # "-" skipped
    assert [e.label for e in task.load_examples(str(jsonl), "en", "train")] == [0, 1, 2]
    assert NLI_LABELS == ("entailment", "neutral", "contradiction")


@pytest.mark.parametrize("value", ["maybe", "3", 7, "", True])
def test_unknown_label_is_an_error(value):
    with pytest.raises(DataError, match="unknown NLI label"):
        nli_label(value, "f.tsv", 4)


@pytest.mark.parametrize("name, text, line, message", [
    ("bad.tsv", "P\tH\tentailment\nP\tH\n", 2, "found 2 columns"),
    ("bad.tsv", "P\tH\tentailment\nP\tH\tneutral\nP\tH\tyes\n", 3, "unknown NLI label 'yes'"),
    ("bad.tsv", "\tH\tneutral\n", 1, "empty premise"),
    ("bad.jsonl", '{"premise": "P", "hypothesis": "H", "label": 0}\n{"premise": "P"\n', 2, "not JSON"),
    ("bad.jsonl", '{"premise": "P", "label": 0}\n', 1, "expected an object with premise"),
])
def test_malformed_line_names_file_and_line(tmp_path, task, name, text, line, message):
    path = write(tmp_path, name, text)
    with pytest.raises(DataError, match=message) as caught:
        task.load_examples(str(path), "en", "train")
    assert caught.value.line == line and str(caught.value).startswith(f"{path}:{line}: ")


def test_hub_sources_route_and_map_labels_by_name(monkeypatch, task):
    import datasets

    import trainables.hub

    calls = []
    # a copy whose class order differs from ours: labels are mapped by name
    features = datasets.Features({"premise": datasets.Value("string"),
                                  "hypothesis": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["contradiction", "neutral",
                                                                      "entailment"])})
    fake = datasets.Dataset.from_dict({"premise": ["P1", "P2", "P3", ""],
                                       "hypothesis": ["H1", "H2", "H3", "H4"],
                                       "label": [0, -1, 2, 1]}, features=features)

    def load(dataset_id, config, split):
        calls.append((dataset_id, config, split))
        return fake

    monkeypatch.setattr(trainables.hub, "load_hub_split", load)
    english = task.load_examples("hub", "en", "train")
    assert [(e.premise, e.label) for e in english] == [("P1", 2), ("P3", 0)]   # -1 and empty dropped
    task.load_examples("hub", "ar", "test")
    task.load_examples("hub:someone/xnli-copy", "de", "test")
    assert calls == [("nyu-mll/multi_nli", None, "train"), ("facebook/xnli", "ar", "test"),
                     ("someone/xnli-copy", "de", "test")]


# ---------------------------------------------------------------- features, head, metric

def test_pair_features_truncate_to_the_window(mbert_tokenizer, task):
    tokenizer = mbert_tokenizer
    long = NliExample("word " * 300, "short hypothesis", 1)
    train = task.features([long], tokenizer, FinetuneSettings(max_length=96))
    assert len(train[0]["input_ids"]) == 96 and train[0]["labels"] == 1
    # longest_first trims the premise, so the hypothesis survives whole
    assert tokenizer.decode(train[0]["input_ids"]).endswith("short hypothesis [SEP]")
    assert len(pair_features([long], tokenizer, 256)[0]["input_ids"]) == 256


def test_head_reads_the_first_token():
    head = FirstTokenClassifier(8, 3, 0.0)
    hidden = torch.randn(2, 5, 8)
    changed = hidden.clone()
    changed[:, 1:] = 0
    assert head(hidden).shape == (2, 3)
    assert torch.allclose(head(hidden), head(changed))


# ---------------------------------------------------------------- each architecture's own head

def tiny_encoder(architecture: str, **config):
    """A small encoder of ``architecture``; BERT with its pooler, as load_encoder(pooler=True) gives it."""
    from transformers import (BertConfig, BertModel, DistilBertConfig, DistilBertModel, XLMRobertaConfig,
                              XLMRobertaModel)

    torch.manual_seed(0)
    if architecture == "bert":
        return BertModel(BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=32, max_position_embeddings=40, **config))
    if architecture == "xlmr":
        return XLMRobertaModel(XLMRobertaConfig(vocab_size=60, hidden_size=16, num_hidden_layers=2,
                                                num_attention_heads=2, intermediate_size=32,
                                                max_position_embeddings=42, **config), add_pooling_layer=False)
    return DistilBertModel(DistilBertConfig(vocab_size=60, dim=16, n_layers=2, n_heads=2, hidden_dim=32,
                                            max_position_embeddings=40, **config))


# transformers' class, where its encoder sits, and how our head's names map to its own
HF_CLASSIFIERS = {
    "bert": ("BertForSequenceClassification", "bert", PooledOutputClassifier, ""),
    "xlmr": ("XLMRobertaForSequenceClassification", "roberta", FirstTokenClassifier, "classifier."),
    "distilbert": ("DistilBertForSequenceClassification", "distilbert", PreClassifierHead, ""),
}


@pytest.mark.parametrize("architecture", sorted(HF_CLASSIFIERS))
def test_sentence_pair_head_computes_what_transformers_classifier_does(task, architecture):
    """Same weights in our model and in transformers' *ForSequenceClassification: same logits.

    In train mode too, from the same seed: the dropouts sit at the same
    places with the same rates (DistilBERT: seq_classif_dropout 0.2, not
    its dropout 0.1).
    """
    import transformers

    class_name, prefix, head_class, head_prefix = HF_CLASSIFIERS[architecture]
    encoder = tiny_encoder(architecture)
    ours = task.build_model(encoder)
    assert type(ours.head) is head_class
    expected_dropout = 0.2 if architecture == "distilbert" else 0.1
    assert ours.head.dropout.p == expected_dropout
    config = encoder.config
    config.num_labels = len(NLI_LABELS)
    reference = getattr(transformers, class_name)(config)
    mapped = {(prefix + "." + name[len("encoder."):]) if name.startswith("encoder.")
              else head_prefix + name[len("head."):]: value for name, value in ours.state_dict().items()}
    reference.load_state_dict(mapped, strict=True)   # every parameter of each, one to one
    inputs = {"input_ids": torch.tensor([[2, 17, 9, 33, 4, 3], [2, 8, 51, 3, 1, 1]]),
              "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])}
    for training in (False, True):
        ours.train(training)
        reference.train(training)
        torch.manual_seed(11)
        mine = ours(**inputs)
        torch.manual_seed(11)
        theirs = reference(**inputs).logits
        assert mine.shape == (2, 3)
        assert torch.allclose(mine, theirs, atol=1e-6), f"training={training}"


@pytest.mark.parametrize("architecture", sorted(HF_CLASSIFIERS))
def test_new_head_layers_are_initialised_as_transformers_does_and_deterministically(task, architecture):
    encoder = tiny_encoder(architecture, initializer_range=0.5)
    pooler = {k: v.clone() for k, v in encoder.state_dict().items() if k.startswith("pooler.")}
    torch.manual_seed(4)
    first = task.build_model(encoder).head
    torch.manual_seed(4)
    second = task.build_model(encoder).head
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    linears = [m for m in first.modules() if isinstance(m, torch.nn.Linear)]
    assert linears
    for layer in linears:
        assert torch.all(layer.bias == 0)
        # N(0, initializer_range); torch's default would give about 1/sqrt(3 * 16) = 0.14
        assert 0.35 < float(layer.weight.detach().std()) < 0.65
    # BERT's pooler belongs to the encoder, loaded from the checkpoint: never re-initialised
    assert all(torch.equal(encoder.state_dict()[k], v) for k, v in pooler.items())
    assert bool(pooler) == (architecture == "bert")


def test_bert_head_without_the_pretrained_pooler_is_refused(task):
    from transformers import BertConfig, BertModel

    encoder = BertModel(BertConfig(vocab_size=60, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=32), add_pooling_layer=False)
    with pytest.raises(ValueError, match="pretrained pooler"):
        task.build_model(encoder)


def test_explicit_dropout_replaces_the_architecture_rate(task):
    assert task.build_model(tiny_encoder("distilbert"), dropout=0.3).head.dropout.p == 0.3
    assert task.build_model(tiny_encoder("bert", classifier_dropout=0.25)).head.dropout.p == 0.25


def test_realignment_never_changes_the_pooler(mbert_tokenizer, task):
    """The pooler lies outside every block: no freezing spec names it, no realignment gradient reaches it."""
    from trainables.freezing import frozen_parameter_names
    from trainables.realignment.realigner import RealignmentStream, RealignSettings, realignment_loss
    from trainables.realignment.word_pairs import AlignedPair
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=len(mbert_tokenizer), hidden_size=8, num_hidden_layers=2,
                                   num_attention_heads=2, intermediate_size=16))
    assert not any(name.startswith("pooler.") for name in frozen_parameter_names(encoder, "range:0-3"))
    before = encoder.pooler.dense.weight.detach().clone()
    settings = RealignSettings(batch_size=1, projection=False, layer="last")
    stream = RealignmentStream({"fr": [AlignedPair("fr", ("a", "cat"), ("un", "chat"), ((1, 1), (0, 0)))]},
                               mbert_tokenizer, settings, seed=0)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=0.1)
    realignment_loss(encoder, None, stream.next_batch(), settings).backward()
    optimizer.step()
    assert encoder.pooler.dense.weight.grad is None
    assert torch.equal(encoder.pooler.dense.weight, before)
    assert encoder.encoder.layer[1].output.dense.weight.grad is not None


def test_accuracy():
    assert accuracy([0, 1, 2, 2], [0, 2, 2, 1]) == 0.5


# ---------------------------------------------------------------- a tiny loop

@pytest.mark.slow
def test_tiny_model_trains_and_evaluates(task, train_and_evaluate):
    settings = FinetuneSettings(batch_size=8, max_length=96, eval_max_length=256, eval_batch_size=16)
    train = task.load_examples(str(XNLI / "dev-en.first500.tsv"), "en", "train", limit=32)
    test = task.load_examples(str(XNLI), "th", "test", limit=20)
    metrics = train_and_evaluate(task, train, test, settings)
    assert set(metrics) == set(get_task("nli").metrics)
    assert all(0.0 <= value <= 1.0 for value in metrics.values())
