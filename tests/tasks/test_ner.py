"""NER: readers of the three file formats, Hub mapping, the paper's metrics, Chinese
re-segmentation, a tiny end-to-end loop. (Parity with the reference: tests/parity.)"""

import logging
import math
from pathlib import Path

import pytest

from trainables.errors import DataError
from trainables.tasks.base import FinetuneSettings
from trainables.tasks.labels import NER_LABELS
from trainables.tasks.ner import NerTask, ner_metrics, ner_post_processing
from trainables.tasks.token_classification import TaggedSentence
from trainables.tasks.zh_resegmentation import resegment, resegment_sentence, split_word
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

@pytest.mark.parametrize("tags, processed", [
    (["O", "I-PER", "I-PER"], ["O", "B-PER", "I-PER"]),              # I- after O starts an entity
    (["I-LOC"], ["B-LOC"]),
    (["B-PER", "I-LOC", "I-LOC"], ["B-LOC", "I-LOC", "I-LOC"]),      # the last I- type wins
    (["B-LOC", "B-PER", "I-PER"], ["B-PER", "B-PER", "I-PER"]),      # the quirk: the type spills over
    (["B-ORG", "I-ORG", "O", "B-ORG"], ["B-ORG", "I-ORG", "O", "B-ORG"]),
    ([], []),
])
def test_post_processing(tags, processed):
    assert ner_post_processing(tags) == processed


def test_post_processing_leaves_gold_alone_and_raw_figures_stay():
    # gold B-LOC I-LOC B-PER I-PER predicted exactly: the post-processing turns
    # the LOC entity into PER, so 1 of 2 entities and 2 of 4 words stay right
    gold = [["B-LOC", "I-LOC", "B-PER", "I-PER"]]
    metrics = ner_metrics(gold, gold)
    assert metrics["accuracy"] == 0.5 and metrics["precision"] == 0.5 and metrics["recall"] == 0.5
    assert metrics["f1"] == 0.5
    assert {metrics[f"{m}_raw"] for m in ("accuracy", "f1", "precision", "recall")} == {1.0}


def test_default_mode_chunks_leniently():
    # seqeval's default (conlleval) mode: I-PER after O is an entity, B-PER I-LOC two entities
    metrics = ner_metrics([["O", "B-PER", "I-PER", "O"]], [["O", "I-PER", "I-PER", "O"]])
    assert metrics["f1_raw"] == 1.0 and metrics["accuracy_raw"] == 0.75 and metrics["accuracy"] == 1.0
    metrics = ner_metrics([["B-PER", "O", "B-LOC", "O", "B-ORG"]], [["B-PER", "B-ORG", "O", "O", "O"]])
    # 2 predicted, 1 right, 3 gold: P 1/2, R 1/3, F1 2/5
    assert metrics["precision"] == 0.5 and metrics["recall"] == pytest.approx(1 / 3)
    assert metrics["f1"] == pytest.approx(0.4)


def test_words_without_a_prediction_or_gold_tag_are_left_out():
    # "" predicted: a word of nothing but a bare "▁"; "" gold: unannotated
    metrics = ner_metrics([["B-PER", "I-PER", "O", ""]], [["B-PER", "", "O", "O"]])
    assert metrics["accuracy"] == 1.0 and metrics["f1"] == 1.0
    with pytest.raises(ValueError):
        ner_metrics([["O", "O"]], [["O"]])
    assert all(math.isnan(v) for v in ner_metrics([[""]], [["O"]]).values())


def test_no_entity_anywhere_scores_zero(task):
    metrics = task.metrics([["O"]], [["O"]])
    assert metrics["f1"] == 0.0 and metrics["precision"] == 0.0 and metrics["accuracy"] == 1.0


def test_metrics_keys_are_the_registry_metrics(task):
    metrics = task.metrics([["B-PER", "O"], ["B-LOC"]], [["B-PER", "B-LOC"], ["B-LOC"]])
    assert list(metrics) == list(get_task("ner").metrics)
    assert metrics["accuracy"] == pytest.approx(2 / 3)
    assert metrics["precision"] == pytest.approx(2 / 3) and metrics["recall"] == 1.0


# ---------------------------------------------------------------- Chinese re-segmentation

def characters(text: str, tags: str) -> TaggedSentence:
    return TaggedSentence(tuple(text), tuple(tags.split()))


def test_split_word_follows_the_tags():
    assert split_word("北京", ["B-LOC", "I-LOC"]) == [("北京", "B-LOC")]
    assert split_word("天安门", ["B-LOC", "I-LOC", "O"]) == [("天安", "B-LOC"), ("门", "O")]
    assert split_word("李小龙", ["B-PER", "B-PER", "I-PER"]) == [("李", "B-PER"), ("小龙", "B-PER")]
    assert split_word("ab", ["I-PER", "I-PER"]) == [("ab", "I-PER")]
    assert split_word("ab", ["I-PER", "I-LOC"]) == [("a", "I-PER"), ("b", "I-LOC")]
    assert split_word("ab", ["O", "O"]) == [("ab", "O")]


def test_jieba_resegmentation_of_a_character_tokenised_sentence():
    # jieba: 我 / 爱 / 北京 / 天安门 ; the entity ends inside 天安门, which is cut there
    sentence = characters("我爱北京天安门", "O O B-LOC I-LOC B-LOC I-LOC O")
    assert resegment_sentence(sentence) == TaggedSentence(("我", "爱", "北京", "天安", "门"),
                                                          ("O", "O", "B-LOC", "B-LOC", "O"))
    # spaces (and WikiANN's "None") belong to no word; "。" cuts the sentence and stays a word
    sentence = TaggedSentence(tuple("约翰") + ("None",) + tuple("史密斯住在上海。"),
                              ("B-PER", "I-PER", "I-PER", "I-PER", "I-PER", "I-PER", "O", "O",
                               "B-LOC", "I-LOC", "O"))
    assert resegment_sentence(sentence) == TaggedSentence(
        ("约翰", "史密斯", "住", "在", "上海", "。"), ("B-PER", "I-PER", "O", "O", "B-LOC", "O"))


def test_resegment_leaves_word_tokenised_sentences_and_checks_the_setting(caplog):
    words = TaggedSentence(("雖然", "美國"), ("O", "B-LOC"))
    chars = characters("北京", "B-LOC I-LOC")
    assert resegment([words, chars], "none") == [words, chars]
    with caplog.at_level(logging.WARNING):
        assert resegment([words, chars], "jieba") == [words, TaggedSentence(("北京",), ("B-LOC",))]
    assert "1 of 2 Chinese sentences are not character-tokenised" in caplog.text
    with pytest.raises(Exception, match="zh_segmentation"):
        resegment([chars], "stanford")


def test_only_chinese_evaluation_data_is_resegmented(tmp_path, task):
    text = "".join(f"{i}\t{c}\t{t}\n" for i, (c, t) in enumerate(zip("我爱北京", ["O", "O", "B-LOC", "I-LOC"])))
    for language in ("zh", "ja"):
        (tmp_path / language).mkdir()
        (tmp_path / language / "test.txt").write_text(text, encoding="utf-8")
    jieba = FinetuneSettings(extra={"zh_segmentation": "jieba"})
    assert task.evaluation_examples(str(tmp_path), "zh", jieba)[0].words == ("我", "爱", "北京")
    assert task.evaluation_examples(str(tmp_path), "ja", jieba)[0].words == tuple("我爱北京")
    assert task.evaluation_examples(str(tmp_path), "zh", FinetuneSettings())[0].words == tuple("我爱北京")


def test_zh_segmentation_value_is_validated():
    from trainables.errors import SpecError
    from trainables.trial_spec import TrialSpec, validate

    spec = TrialSpec(model="tiny-mbert", task="ner", strategy="baseline", seed=1,
                     languages=("zh",), data={"train": "hub", "eval": {"en": "hub", "zh": "hub"}},
                     finetune={"zh_segmentation": "stanford"})
    with pytest.raises(SpecError, match="zh_segmentation"):
        validate(spec, check_files=False)


# ---------------------------------------------------------------- a tiny loop

@pytest.mark.slow
def test_tiny_model_trains_and_evaluates(task, train_and_evaluate):
    settings = FinetuneSettings(batch_size=8, max_length=96, eval_max_length=96, eval_batch_size=16)
    train = task.load_examples(str(WIKIANN), "en", "train", limit=32)
    test = task.load_examples(str(UNER), "zh", "test", limit=20)
    metrics = train_and_evaluate(task, train, test, settings)
    assert set(metrics) == set(get_task("ner").metrics)
    assert all(0.0 <= value <= 1.0 for value in metrics.values())
