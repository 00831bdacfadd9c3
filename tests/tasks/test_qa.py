"""QA: SQuAD-format loading, overflowing windows, span choice, oracle evaluation, a tiny loop."""

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from trainables.errors import DataError
from trainables.tasks.base import FinetuneSettings
from trainables.tasks.qa import (QaExample, QaTask, answer_positions, best_span, cut_question,
                                 pipeline_span, qa_files, qa_windows, read_squad_json)
from trainables.tasks.registry import get_task

BUNDLED = Path(__file__).resolve().parents[2] / "trainables" / "bundled_data"
TYDIQA = BUNDLED / "qa" / "tydiqa_goldp_en_train.first300.json"
XQUAD = BUNDLED / "qa" / "xquad"
# short evaluation windows too, so that the small files overflow
PAPER = {"doc_stride": 32, "eval_doc_stride": 32, "max_answer_length": 30, "n_best": 20}


@pytest.fixture(scope="module")
def task() -> QaTask:
    return get_task("qa").load()


@pytest.fixture(scope="module")
def bert_tokenizer(mbert_tokenizer):
    return mbert_tokenizer   # the bundled mBERT vocabulary (tests/conftest.py)


@pytest.fixture(scope="module")
def sentencepiece_tokenizer():
    """A small XLM-R (Unigram, '▁' word starts) fast tokenizer built from the English XQuAD words."""
    import re
    from collections import Counter

    from transformers import XLMRobertaTokenizerFast

    data = json.loads((XQUAD / "xquad.en.first2articles.json").read_text(encoding="utf-8"))
    text = " ".join(p["context"] + " " + q["question"] for a in data["data"]
                    for p in a["paragraphs"] for q in p["qas"])
    words = Counter(re.findall(r"\w+", text))
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("<mask>", 0.0), ("▁", -3.0)]
    vocab += [("▁" + w, -2.0) for w, _ in words.most_common(300)]
    vocab += [(c, -8.0) for c in sorted(set(text)) if not c.isspace()]
    return XLMRobertaTokenizerFast(vocab=vocab)


def examples_of(path: Path, limit=None) -> list[QaExample]:
    return read_squad_json(path, limit)


# ---------------------------------------------------------------- data

def test_bundled_files_and_directory(task):
    train = task.load_examples(str(TYDIQA), "en", "train")
    assert len(train) == 300
    assert train[0].answers == ("1920s",) and train[0].question == "When was quantum field theory developed?"
    assert qa_files(XQUAD, "ar", "test") == [XQUAD / "xquad.ar.first2articles.json"]
    arabic = task.load_examples(str(XQUAD), "ar", "test", limit=5)
    assert len(arabic) == 5 and arabic[0].answers == ("308",)
    for example in arabic:
        start = example.answer_starts[0]
        assert example.context[start:start + len(example.answers[0])] == example.answers[0]


def squad(qas, context="Paris is the capital of France."):
    return json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": [
        {"context": context, "qas": qas}]}]})


def test_answer_start_off_by_some_is_moved_to_the_nearest_occurrence(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(squad([{"id": "1", "question": "Capital?",
                            "answers": [{"text": "France", "answer_start": 20}]}]), encoding="utf-8")
    assert read_squad_json(path)[0].answer_starts == (24,)


@pytest.mark.parametrize("text, line, message", [
    ('{"data": [\n  {"paragraphs": [}\n]}', 2, "not JSON"),
    (squad([{"id": "1", "answers": [{"text": "Paris", "answer_start": 0}]}]), None,
     r"data\[0\].paragraphs\[0\].qas\[0\]: expected a non-empty 'question'"),
    (squad([{"id": "1", "question": "Q?", "answers": []}]), None, "non-empty 'answers'"),
    (squad([{"id": "1", "question": "Q?", "answers": [{"text": "Berlin", "answer_start": 0}]}]), None,
     r"answers\[0\]: answer 'Berlin' is not in the context"),
    ('{"version": "1.1"}', None, "expected a SQuAD object"),
])
def test_malformed_json_names_file_and_place(tmp_path, text, line, message):
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message) as caught:
        read_squad_json(path)
    assert caught.value.line == line and str(caught.value).startswith(str(path))


def test_hub_sources_route_to_squad_and_xquad(monkeypatch, task):
    import datasets

    import trainables.hub

    calls = []
    fake = datasets.Dataset.from_dict({
        "id": ["a"], "title": ["t"], "context": ["Paris is the capital of France."],
        "question": ["Capital?"], "answers": [{"text": ["Paris"], "answer_start": [0]}]})

    def load(dataset_id, config, split):
        calls.append((dataset_id, config, split))
        return fake

    monkeypatch.setattr(trainables.hub, "load_hub_split", load)
    assert task.load_examples("hub", "en", "train")[0].answers == ("Paris",)
    task.load_examples("hub", "ar", "test")
    task.load_examples("hub:google/xquad", "de", "test")
    task.load_examples("hub:someone/squad-copy", "en", "train")
    assert calls == [("rajpurkar/squad", None, "train"), ("google/xquad", "xquad.ar", "validation"),
                     ("google/xquad", "xquad.de", "validation"), ("someone/squad-copy", None, "train")]


# ---------------------------------------------------------------- windows and labels

@pytest.mark.parametrize("which", ["bert_tokenizer", "sentencepiece_tokenizer"])
def test_training_windows_point_at_the_answer(request, task, which):
    tokenizer = request.getfixturevalue(which)
    source = TYDIQA if which == "bert_tokenizer" else XQUAD / "xquad.en.first2articles.json"
    examples = examples_of(source, 40)
    settings = FinetuneSettings(max_length=96, extra=PAPER)
    features = task.features(examples, tokenizer, settings)
    windows = qa_windows(examples, tokenizer, 96, 32)
    assert len(features) > len(examples)   # long contexts overflow into several windows
    assert all(len(f["input_ids"]) <= 96 for f in features)
    found = set()
    for feature, index, offsets in zip(features, windows.example_index, windows.context_offsets):
        start, end = feature["start_positions"], feature["end_positions"]
        if start == 0:
            assert end == 0
            continue
        example = examples[index]
        span = example.context[offsets[start][0]:offsets[end][1]]
        assert example.answers[0] in span and len(span) <= len(example.answers[0]) + 12
        found.add(index)
    assert len(found) >= 0.9 * len(examples)


def test_long_questions_are_cut_to_fit_short_windows(bert_tokenizer, task):
    question = "Which of the following very long and winding questions " * 20
    example = QaExample("1", question, "Paris is the capital of France. " * 30, ("France",), (24,))
    features = task.features([example], bert_tokenizer, FinetuneSettings(max_length=96, extra=PAPER))
    assert features and all(len(f["input_ids"]) <= 96 for f in features)
    assert len(bert_tokenizer(cut_question(bert_tokenizer, question, 10),
                              add_special_tokens=False)["input_ids"]) <= 10


def test_answer_positions():
    offsets = [None, None, (0, 5), (6, 8), (9, 12), None]
    assert answer_positions(offsets, 6, 12, 0) == (3, 4)
    assert answer_positions(offsets, 7, 8, 0) == (3, 3)        # inside a token: that token
    assert answer_positions(offsets, 9, 20, 0) == (0, 0)       # runs past the window


def test_best_span_respects_context_order_and_length():
    offsets = [None, (0, 1), (2, 3), (4, 5), (6, 7)]
    start = [9.0, 1.0, 0.0, 5.0, 0.0]
    end = [9.0, 3.0, 0.0, -2.0, -2.0]
    # CLS (9 + 9) is outside the context; (3, 1) scores 8 but ends before it starts
    assert best_span(start, end, offsets, n_best=5, max_answer_length=30) == (4.0, 1, 1)
    assert best_span([0, 0, 0, 9, 0], [0, 0, 0, 0, 9], offsets, 5, 2)[1:] == (3, 4)
    assert best_span([0, 0, 0, 9, 0], [0, 0, 0, 0, 9], offsets, 5, 1)[1:] != (3, 4)   # too long
    assert best_span([0, 0, 0, 9, 0], [0, 0, 0, 0, 9], offsets, 1, 2)[1:] == (3, 4)   # n_best 1
    assert best_span(start, end, [None] * 5, 5, 30) is None


def test_pipeline_span_by_hand():
    # tokens: CLS, question, three context tokens, SEP
    offsets = [None, None, (0, 1), (2, 3), (4, 5), None]
    start = torch.tensor([0.0, 50.0, 0.0, 1.0, 0.0, 50.0])   # question/SEP logits take no part
    end = torch.tensor([1.0, 50.0, 0.0, 0.0, 2.0, 50.0])
    # softmax over CLS + context: start e^0,e^0,e^1,e^0; end e^1,e^0,e^0,e^2; CLS then dropped
    z_start, z_end = 3 + math.e, 2 + math.e + math.exp(2)
    score, s, e = pipeline_span(start, end, offsets, cls_position=0, max_answer_length=15)
    assert (s, e) == (3, 4) and score == pytest.approx(math.e / z_start * math.exp(2) / z_end, rel=1e-12)
    # at most 1 token long: the best single-token span, (4, 4)
    score, s, e = pipeline_span(start, end, offsets, 0, max_answer_length=1)
    assert (s, e) == (4, 4) and score == pytest.approx(1 / z_start * math.exp(2) / z_end, rel=1e-12)
    # an end before the start never counts; ties go to the earliest start
    assert pipeline_span(torch.tensor([0.0, 0, 0, 0, 9, 0]), torch.tensor([0.0, 0, 9, 0, 0, 0]),
                         offsets, 0, 15)[1:] == (2, 2)
    assert pipeline_span(start, end, [None] * 6, 0, 15) is None


def reference_pipeline_choice(windows, max_answer_len):
    """The Hugging Face pipeline's postprocess (transformers 4.18, default settings), in numpy."""
    np = pytest.importorskip("numpy")
    answers = []
    for number, (start, end, context) in enumerate(windows):
        p_mask = np.array([0 if c or i == 0 else 1 for i, c in enumerate(context)])  # CLS unmasked
        undesired = np.abs(p_mask - 1)
        start = np.where(undesired == 0, -10000.0, start)
        end = np.where(undesired == 0, -10000.0, end)
        start = np.exp(start - np.log(np.sum(np.exp(start), axis=-1, keepdims=True)))
        end = np.exp(end - np.log(np.sum(np.exp(end), axis=-1, keepdims=True)))
        start[0] = end[0] = 0.0
        candidates = np.tril(np.triu(np.outer(start, end)), max_answer_len - 1)
        s, e = np.unravel_index(np.argmax(candidates), candidates.shape)
        if undesired[s] and undesired[e]:
            answers.append((candidates[s, e], number, int(s), int(e)))
    return sorted(answers, key=lambda a: a[0], reverse=True)[0][1:]


def test_pipeline_selection_matches_the_pipeline_on_random_logits():
    generator = torch.Generator().manual_seed(0)
    for trial in range(200):
        windows = []
        for _ in range(1 + trial % 3):
            length = 12
            context = [False, False, False] + [True] * 8 + [False]
            start, end = (torch.randn(length, generator=generator, dtype=torch.float64) * 3 for _ in "se")
            windows.append((start.numpy(), end.numpy(), context))
        expected = reference_pipeline_choice(windows, max_answer_len=4)
        best = None
        for number, (start, end, context) in enumerate(windows):
            offsets = [(i, i + 1) if c else None for i, c in enumerate(context)]
            span = pipeline_span(torch.from_numpy(start), torch.from_numpy(end), offsets, 0, 4)
            if span is not None and (best is None or span[0] > best[0]):
                best = (span[0], number, span[1], span[2])
        assert best[1:] == expected


class Logits(nn.Module):
    """Returns the given start/end logits for the window with the given input ids."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def forward(self, input_ids, attention_mask, **_):
        out = torch.full((*input_ids.shape, 2), -5.0)
        for row, (ids, mask) in enumerate(zip(input_ids, attention_mask)):
            for (position, column), value in self.table[tuple(ids[mask.bool()].tolist())].items():
                out[row, position, column] = value
        return out


def test_windows_compete_on_probability_not_on_logits(bert_tokenizer, task):
    context = " ".join(f"word{i}" for i in range(60))
    example = QaExample("1", "Which word?", context, ("word1",), (6,), "de")
    windows = qa_windows([example], bert_tokenizer, 48, 16)
    assert len(windows.features) >= 2
    first, second = (tuple(f["input_ids"]) for f in windows.features[:2])
    inside = [[i for i, o in enumerate(offsets) if o is not None] for offsets in windows.context_offsets]
    a, b = inside[0][0], inside[1][-1]
    # window 1: two rival starts (p ~ 1/2 each), one end; window 2: lower, unrivalled logits
    table = {first: {(a, 0): 9.0, (a + 1, 0): 9.0, (a + 1, 1): 9.0},
             second: {(b, 0): 6.0, (b, 1): 6.0}}
    table.update({tuple(f["input_ids"]): {} for f in windows.features[2:]})
    model = Logits(table)

    def answer(selection):
        # the evaluation windows follow eval_doc_stride (16), not doc_stride (32): else no table entry
        settings = FinetuneSettings(eval_max_length=48, extra={**PAPER, "eval_doc_stride": 16,
                                                                "span_selection": selection})
        return task.predict(model, bert_tokenizer, [example], settings, torch.device("cpu"))[0]

    offsets = windows.context_offsets
    assert answer("n_best") == context[offsets[0][a][0]:offsets[0][a + 1][1]] == "word0"   # 18 > 12
    assert answer("pipeline") == context[offsets[1][b][0]:offsets[1][b][1]]   # p ~ 1 > 1/2 x 1


def test_unknown_span_selection_is_a_spec_error(bert_tokenizer, task):
    from trainables.errors import SpecError

    example = QaExample("1", "Q?", "Paris is nice.", ("Paris",), (0,))
    settings = FinetuneSettings(eval_max_length=48, extra={**PAPER, "span_selection": "best"})
    with pytest.raises(SpecError, match="span_selection"):
        task.predict(Logits({}), bert_tokenizer, [example], settings, torch.device("cpu"))


def test_loss_ignores_padding(task):
    logits = torch.zeros(1, 4, 2)
    batch = {"attention_mask": torch.tensor([[1, 1, 1, 0]]),
             "start_positions": torch.tensor([1]), "end_positions": torch.tensor([2])}
    padded = logits.clone()
    padded[0, 3] = 50.0
    assert task.loss(padded, batch).item() == pytest.approx(task.loss(logits, batch).item())
    assert task.loss(logits, batch).item() == pytest.approx(torch.log(torch.tensor(3.0)).item())


# ---------------------------------------------------------------- evaluation

class Oracle(nn.Module):
    """Puts the highest logits on the gold span of each window it was shown."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def forward(self, input_ids, attention_mask, **_):
        out = torch.zeros(*input_ids.shape, 2)
        for row, (ids, mask) in enumerate(zip(input_ids, attention_mask)):
            start, end = self.table[tuple(ids[mask.bool()].tolist())]
            out[row, start, 0] = out[row, end, 1] = 10.0
        return out


@pytest.mark.parametrize("selection", ["pipeline", "n_best"])
@pytest.mark.parametrize("which, file", [("bert_tokenizer", "xquad.en.first2articles.json"),
                                         ("sentencepiece_tokenizer", "xquad.en.first2articles.json"),
                                         ("bert_tokenizer", "xquad.ru.first2articles.json")])
def test_gold_spans_map_back_to_the_gold_text(request, task, which, file, selection):
    tokenizer = request.getfixturevalue(which)
    examples = task.load_examples(str(XQUAD / file), file.split(".")[1], "test")
    settings = FinetuneSettings(eval_max_length=96, eval_batch_size=16,
                                extra={**PAPER, "span_selection": selection})
    windows = qa_windows(examples, tokenizer, 96, 32, None if selection == "pipeline" else 64)
    table = {}
    for feature, index, offsets in zip(windows.features, windows.example_index, windows.context_offsets):
        start = examples[index].answer_starts[0]
        table[tuple(feature["input_ids"])] = answer_positions(
            offsets, start, start + len(examples[index].answers[0]), 0)
    metrics = task.evaluate(Oracle(table), tokenizer, examples, settings, torch.device("cpu"))
    assert list(metrics) == list(get_task("qa").metrics)
    assert metrics["exact_match"] >= 0.95 and metrics["f1"] >= 0.97
    assert metrics["exact_match_paper"] >= 0.95 and metrics["f1_paper"] >= 0.97


# ---------------------------------------------------------------- a tiny loop

@pytest.mark.slow
def test_tiny_model_trains_and_evaluates(task, train_and_evaluate):
    settings = FinetuneSettings(batch_size=8, max_length=96, eval_max_length=128, eval_batch_size=16,
                                extra=PAPER)
    train = task.load_examples(str(TYDIQA), "en", "train", limit=16)
    test = task.load_examples(str(XQUAD), "zh", "test", limit=10)
    metrics = train_and_evaluate(task, train, test, settings, max_features=32)
    assert set(metrics) == set(get_task("qa").metrics)
    assert all(0.0 <= value <= 1.0 for value in metrics.values())


@pytest.mark.parametrize("finetune, message", [
    ({"doc_stride": 92}, "qa doc_stride 92 must be smaller than max_length 96"),
    ({"eval_doc_stride": 380}, "qa eval_doc_stride 380 must be smaller than eval_max_length 384"),
    ({"span_selection": "best"}, "span_selection"),
])
def test_qa_settings_are_validated(finetune, message):
    from trainables.errors import SpecError
    from trainables.trial_spec import TrialSpec, validate

    spec = TrialSpec(model="tiny-mbert", task="qa", strategy="baseline", seed=1, languages=("de",),
                     data={"train": "hub", "eval": {"en": "hub", "de": "hub"}}, finetune=finetune)
    with pytest.raises(SpecError, match=message):
        validate(spec, check_files=False)
    # the evaluation stride is checked against the evaluation windows only
    validate(TrialSpec(**{**spec.__dict__, "finetune": {"doc_stride": 32, "eval_doc_stride": 128}}),
             check_files=False)
