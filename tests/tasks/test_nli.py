"""NLI: TSV/JSONL/Hub loading with one label order, pair features, head, accuracy, a tiny loop."""

import json
from pathlib import Path

import pytest
import torch

from trainables.errors import DataError
from trainables.tasks.base import FinetuneSettings
from trainables.tasks.labels import NLI_LABELS
from trainables.tasks.nli import (FirstTokenClassifier, NliExample, NliTask, accuracy, nli_files,
                                  nli_label, pair_features)
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
