"""NER: readers of the three file formats, Hub mapping, BIO repair, metrics, a tiny end-to-end loop."""

import logging
import random
from pathlib import Path

import pytest

from trainables.errors import DataError
from trainables.tasks.base import FinetuneSettings
from trainables.tasks.labels import NER_LABELS
from trainables.tasks.ner import NerTask, entity_scores, repair_bio
from trainables.tasks.ner_readers import ner_files, read_ner_file
from trainables.tasks.registry import get_task

BUNDLED = Path(__file__).resolve().parents[2] / "trainables" / "bundled_data"
WIKIANN = BUNDLED / "ner" / "wikiann"
UNER = BUNDLED / "ner" / "uner_pud"


@pytest.fixture(scope="module")
def task() -> NerTask:
    return get_task("ner").load()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- readers

def test_bundled_wikiann_directory(task):
    train = task.load_examples(str(WIKIANN), "en", "train")
    assert len(train) == 1000
    assert train[0].words[:3] == ("R.H.", "Saunders", "(")
    assert train[0].labels[:3] == ("B-ORG", "I-ORG", "O")
    russian = task.load_examples(str(WIKIANN), "ru", "test", limit=50)
    assert len(russian) == 50
    assert all(set(s.labels) <= set(NER_LABELS) for s in russian)
    assert read_ner_file(WIKIANN / "ru" / "test.first200.conllu").format == "wikiann"


def test_bundled_uner_files_with_comments(task):
    chinese = task.load_examples(str(UNER), "zh", "test")
    assert len(chinese) == 100
    assert chinese[0].words[:3] == ('"', "雖然", "美國")
    assert chinese[0].labels[:3] == ("O", "O", "B-LOC")
    assert read_ner_file(UNER / "en_pud-ud-test.first100.iob2").format == "uner"
    one_file = task.load_examples(str(UNER / "de_pud-ud-test.first100.iob2"), "de", "test", limit=3)
    assert len(one_file) == 3


def test_xtreme_format_and_layout(tmp_path, task):
    write(tmp_path, "train-en.tsv",
          "en:John\tB-PER\nen:lives\tO\nen:in\tO\nen:New\tB-LOC\nen:York:City\tI-LOC\n\n"
          "en:IBM\tB-ORG\n")
    sentences = task.load_examples(str(tmp_path), "en", "train")
    assert [s.words for s in sentences] == [("John", "lives", "in", "New", "York:City"), ("IBM",)]
    assert sentences[0].labels == ("B-PER", "O", "O", "B-LOC", "I-LOC")
    with pytest.raises(DataError, match=r"train-en.tsv:1: line of language 'en'"):
        task.load_examples(str(tmp_path / "train-en.tsv"), "de", "train")


def test_directory_layouts(tmp_path):
    assert ner_files(WIKIANN, "de", "test") == [WIKIANN / "de" / "test.first200.conllu"]
    assert ner_files(UNER, "ru", "test") == [UNER / "ru_pud-ud-test.first100.iob2"]
    with pytest.raises(DataError, match="no NER file for language 'fr'"):
        ner_files(WIKIANN, "fr", "test")


def test_foreign_entity_types_become_o_and_are_counted(tmp_path, task, caplog):
    path = write(tmp_path, "x.iob2", "# sent_id = 1\n1\tThe\tO\t-\t-\n2\tOscars\tB-OTH\t-\t-\n"
                                     "3\tin\tO\t-\t-\n4\tRome\tB-LOC\t-\t-\n")
    read = read_ner_file(path)
    assert read.sentences[0].labels == ("O", "O", "O", "B-LOC")
    assert read.foreign_tags == {"B-OTH": 1}
    with caplog.at_level(logging.WARNING):
        task.load_examples(str(path), "en", "test")
    assert "1 tags of entity types outside PER/ORG/LOC" in caplog.text


@pytest.mark.parametrize("text, line, message", [
    ("0\tParis\tB-LOC\n1\tis\n", 2, "2 tab-separated columns"),
    ("0\tParis\tB-LOC\n1\tis\tX-LOC\n", 2, "unknown NER tag 'X-LOC'"),
    ("0\tParis\tB-LOC\n1\tis\tB-\n", 2, "unknown NER tag"),
    ("0\tParis\tB-LOC\n1\tis\tO\n0\tNew\tO\n", 3, "word index 0 after 1"),
    ("0\tParis\tB-LOC\n\nen:Rome\tB-LOC\n", 3, "xtreme line in a wikiann file"),
    ("# c\n1\tParis\tB-LOC\t-\t-\n2\t \tO\t-\t-\n", 3, "empty token"),
    ("Paris\tB-LOC\n", 1, "not an NER word line"),
])
def test_malformed_line_names_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path, "bad.tsv", text)
    with pytest.raises(DataError, match=message) as caught:
        read_ner_file(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_missing_source_is_a_data_error(tmp_path, task):
    with pytest.raises(DataError, match="not found"):
        task.load_examples(str(tmp_path / "nothing"), "en", "train")


def test_hub_source_maps_class_names(monkeypatch, task):
    import datasets

    import trainables.hub

    calls = []
    features = datasets.Features({"tokens": datasets.Sequence(datasets.Value("string")),
                                  "ner_tags": datasets.Sequence(datasets.ClassLabel(names=list(NER_LABELS)))})
    fake = datasets.Dataset.from_dict({"tokens": [["Анна", "в", "Москве"], ["x"]],
                                       "ner_tags": [[1, 0, 5], [0]]}, features=features)

    def load(dataset_id, config, split):
        calls.append((dataset_id, config, split))
        return fake

    monkeypatch.setattr(trainables.hub, "load_hub_split", load)
    sentences = task.load_examples("hub", "ru", "test", limit=1)
    assert calls == [("unimelb-nlp/wikiann", "ru", "test")]
    assert sentences[0].labels == ("B-PER", "O", "B-LOC") and len(sentences) == 1
    task.load_examples("hub:someone/panx:ru-copy", "ru", "train")
    assert calls[-1] == ("someone/panx", "ru-copy", "train")


def test_hub_offline_is_one_clear_data_error(task, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match="cannot load Hub dataset unimelb-nlp/wikiann"):
        task.load_examples("hub", "zz", "test")


# ---------------------------------------------------------------- metrics

@pytest.mark.parametrize("tags, repaired", [
    (["O", "I-PER", "I-PER"], ["O", "B-PER", "I-PER"]),
    (["I-LOC"], ["B-LOC"]),
    (["B-PER", "I-LOC", "I-LOC"], ["B-PER", "B-LOC", "I-LOC"]),
    (["B-ORG", "I-ORG", "O", "B-ORG"], ["B-ORG", "I-ORG", "O", "B-ORG"]),
    ([], []),
])
def test_repair_bio(tags, repaired):
    assert repair_bio(tags) == repaired


def test_entity_scores_known_cases():
    # one of two entities right: P = R = F1 = 1/2
    assert entity_scores([["B-PER", "I-PER", "O", "B-LOC"]],
                         [["B-PER", "I-PER", "O", "B-ORG"]]) == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    # a truncated entity is wrong: P = 0/1, R = 0/1
    assert entity_scores([["B-PER", "I-PER"]], [["B-PER", "O"]])["f1"] == 0.0
    # 2 predicted, 1 right, 3 gold: P 1/2, R 1/3, F1 2/5
    scores = entity_scores([["B-PER", "O", "B-LOC", "O", "B-ORG"]],
                           [["B-PER", "B-ORG", "O", "O", "O"]])
    assert scores == pytest.approx({"precision": 0.5, "recall": 1 / 3, "f1": 0.4})
    # ill-formed sequences are repaired before strict scoring
    assert entity_scores([["O", "B-PER", "I-PER"]], [["O", "I-PER", "I-PER"]])["f1"] == 1.0
    # no entity anywhere: 0 without a warning
    assert entity_scores([["O"]], [["O"]])["f1"] == 0.0


def test_repair_then_strict_equals_seqeval_default_mode():
    from seqeval.metrics import f1_score

    rng = random.Random(0)
    for _ in range(300):
        length = rng.randint(1, 8)
        gold = [[rng.choice(NER_LABELS) for _ in range(length)]]
        predicted = [[rng.choice(NER_LABELS) for _ in range(length)]]
        assert entity_scores(gold, predicted)["f1"] == pytest.approx(
            f1_score(gold, predicted, zero_division=0))


def test_metrics_keys_are_the_registry_metrics(task):
    metrics = task.metrics([["B-PER", "O"], ["B-LOC"]], [["B-PER", "B-LOC"], ["B-LOC"]])
    assert set(metrics) == set(get_task("ner").metrics)
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["precision"] == pytest.approx(2 / 3) and metrics["recall"] == 1.0


# ---------------------------------------------------------------- a tiny loop

@pytest.mark.slow
def test_tiny_model_trains_and_evaluates(task, train_and_evaluate):
    settings = FinetuneSettings(batch_size=8, max_length=96, eval_max_length=96, eval_batch_size=16)
    train = task.load_examples(str(WIKIANN), "en", "train", limit=32)
    test = task.load_examples(str(UNER), "zh", "test", limit=20)
    metrics = train_and_evaluate(task, train, test, settings)
    assert set(metrics) == set(get_task("ner").metrics)
    assert all(0.0 <= value <= 1.0 for value in metrics.values())
