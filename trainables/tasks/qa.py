"""Extractive question answering: SQuAD v1.1 training, XQuAD zero-shot evaluation.

Sources:

* ``hub`` -- English ``train``: ``rajpurkar/squad``; otherwise
  ``google/xquad`` with config ``xquad.<lang>``. ``hub:<id>`` loads another
  SQuAD-shaped dataset without a config (``google/xquad``: ``xquad.<lang>``),
  ``hub:<id>:<config>`` with one. Neither dataset has a ``test`` split, so
  ``test`` reads ``validation``. ``validation`` (held-out data for a
  search) cannot come from XQuAD, whose one split is the test set: ``hub``
  reads MLQA's development data (``google/xtreme``, config
  ``MLQA.<lang>.<lang>``, split ``validation``; ``hub:facebook/mlqa`` for
  the original, ``mlqa.<lang>.<lang>``). English too: XQuAD's English is
  drawn from SQuAD's dev set. MLQA covers en, ar, de, es, hi, vi and zh;
  another language needs a local file.
* a SQuAD v1.1 JSON file (``{"data": [{"paragraphs": [{"context", "qas"}]}]}``);
* a directory: ``<dir>/xquad.<lang>*.json`` (the XQuAD layout, never read
  for validation) or ``<dir>/<split>-<lang>*.json``; validation files are
  named ``dev`` (or ``validation``, ``val``), MLQA's
  ``dev-context-<lang>-question-<lang>.json`` included.

Windows: question first, context second, truncated ``only_second`` into
overflowing windows that overlap by a stride (the Hugging Face meaning of
``stride``: overlap, not step): ``max_length`` / ``doc_stride`` for
training (the reference's 96 / 32), ``eval_max_length`` /
``eval_doc_stride`` for evaluation (384 / 128, the question-answering
pipeline's defaults). A training window that does not contain the whole
answer points at the CLS token. Training questions longer than 64 tokens,
or than a window leaves room for, are cut (the reference drops an example
whose question does not fit its 96-token windows).

Span selection at evaluation (``span_selection``):

* ``pipeline`` (default): what the Hugging Face question-answering
  pipeline does with its default settings, which is how the reference
  predicted. In each window the start and end logits become probabilities
  by a softmax over the context tokens and the CLS token (the CLS
  probability is then set to 0); a span scores p(start) x p(end), with
  start <= end < start + ``max_answer_length`` (15) inside the context;
  the best span of each window competes with the other windows' on that
  probability, the first window winning a tie. The question is not cut
  (the pipeline cuts none); the softmax is computed in float64.
* ``n_best``: this tool's former rule: the ``n_best`` (20) best starts and
  ends of each window, the best start + end logit sum over all windows;
  questions cut to 64 tokens.

Either way the answer is the context text between the chosen tokens'
character offsets. (The pipeline of transformers 4.18 also tries to widen
the span to whole pre-tokenizer words; that is not reproduced: with
XLM-R such a "word" is a whole space-free run of Chinese or Thai, and the
authors' XLM-R exact-match figures on Chinese and Thai, 38% and 49% raw,
could not have been reached with it.)

Scores: ``squad_metric.qa_metrics``: the paper's ``f1_paper`` and
``exact_match_paper`` (exact match normalised on English only), and the
official SQuAD v1.1 ``f1`` and ``exact_match``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from trainables.device_settings import to_device
from trainables.errors import DataError, SpecError, unknown_name
from trainables.languages import MLQA_LANGUAGES, SOURCE_LANGUAGE
from trainables.length_grouping import length_sorted_batches
from trainables.tasks.base import FinetuneSettings, Task, TaskModel, defined_scores
from trainables.tasks.hub_source import is_hub, parse_hub_source
from trainables.tasks.splits import TEST, TRAIN, VALIDATION, split_file_names
from trainables.tasks.squad_metric import qa_metrics

TRAIN_DATASET = "rajpurkar/squad"
EVAL_DATASET = "google/xquad"
# XQuAD has no held-out split: validation reads MLQA's development data. Its
# Parquet copy in XTREME loads with any ``datasets``; facebook/mlqa is a script.
VALIDATION_DATASET = "google/xtreme"
MLQA_CONFIGS = {"google/xtreme": "MLQA.{language}.{language}", "facebook/mlqa": "mlqa.{language}.{language}"}

SPAN_SELECTIONS = ("pipeline", "n_best")
MAX_QUERY_LENGTH = 64   # tokens of a question, in training and n_best evaluation windows


@dataclass(frozen=True)
class QaExample:
    id: str
    question: str
    context: str
    answers: tuple[str, ...]          # gold answer texts (training uses the first)
    answer_starts: tuple[int, ...]    # character offsets in context, one per answer
    language: str = ""                # decides how the paper's exact match compares (see squad_metric)


# ---------------------------------------------------------------- data

def read_squad_json(path: str | Path, limit: int | None = None, language: str = "") -> list[QaExample]:
    """The questions of a SQuAD-format JSON file; errors name file and JSON location."""
    path = Path(path)
    if not path.is_file():
        raise DataError("SQuAD JSON file not found", path)
    try:
        with path.open(encoding="utf-8") as handle:
            document = json.load(handle)
    except json.JSONDecodeError as error:
        raise DataError(f"not JSON: {error.msg} (column {error.colno})", path, error.lineno) from None
    examples: list[QaExample] = []
    articles = document.get("data") if isinstance(document, dict) else None
    if not isinstance(articles, list):
        raise DataError("expected a SQuAD object with a 'data' list", path)
    for a, article in enumerate(articles):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(f"data[{a}]: expected a 'paragraphs' list", path)
        for p, paragraph in enumerate(paragraphs):
            where = f"data[{a}].paragraphs[{p}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str) \
                    or not isinstance(paragraph.get("qas"), list):
                raise DataError(f"{where}: expected 'context' text and a 'qas' list", path)
            for q, qa in enumerate(paragraph["qas"]):
                examples.append(_squad_example(qa, paragraph["context"], path, f"{where}.qas[{q}]",
                                               language))
                if limit is not None and len(examples) >= limit:
                    return examples
    return examples


def _squad_example(qa: Any, context: str, path: object, where: str, language: str = "") -> QaExample:
    if not isinstance(qa, dict) or not isinstance(qa.get("question"), str) or not qa["question"].strip():
        raise DataError(f"{where}: expected a non-empty 'question'", path)
    answers = qa.get("answers")
    if not isinstance(answers, list) or not answers:
        raise DataError(f"{where}: expected a non-empty 'answers' list (SQuAD v1.1)", path)
    texts, starts = [], []
    for n, answer in enumerate(answers):
        if not isinstance(answer, dict) or not isinstance(answer.get("text"), str) \
                or not isinstance(answer.get("answer_start"), int):
            raise DataError(f"{where}.answers[{n}]: expected 'text' and an integer 'answer_start'", path)
        texts.append(answer["text"])
        starts.append(answer_start(context, answer["text"], answer["answer_start"], path,
                                   f"{where}.answers[{n}]"))
    return QaExample(str(qa.get("id", where)), qa["question"], context, tuple(texts), tuple(starts),
                     language)


def answer_start(context: str, text: str, start: int, path: object, where: str) -> int:
    """``start`` if the answer text is there, else its occurrence nearest to ``start``."""
    if not text.strip():
        raise DataError(f"{where}: empty answer text", path)
    if context[start:start + len(text)] == text:
        return start
    found = [i for i in range(len(context)) if context.startswith(text, i)]
    if not found:
        raise DataError(f"{where}: answer {text[:40]!r} is not in the context", path)
    return min(found, key=lambda i: abs(i - start))


def qa_files(directory: Path, language: str, split: str) -> list[Path]:
    # XQuAD files are test data (XQuAD has no other split): never validation
    xquad = () if split == VALIDATION else (f"xquad.{language}*.json",)
    patterns = xquad + tuple(pattern for name in split_file_names(split)
                             for pattern in (f"{name}-{language}*.json",
                                             f"{name}-context-{language}-question-{language}*.json"))
    for pattern in patterns:
        files = sorted(f for f in directory.glob(pattern) if f.is_file())
        if files:
            return files
    raise DataError(f"no QA file for language {language!r}, split {split!r} "
                    f"(looked for {' and '.join(patterns)})", directory)


# ---------------------------------------------------------------- features

@dataclass(frozen=True)
class QaWindows:
    """The tokenised windows of some examples, and where each came from."""
    features: list[dict[str, Any]]               # input_ids, attention_mask[, token_type_ids]
    example_index: list[int]                      # window -> example
    context_offsets: list[list[tuple[int, int] | None]]  # character span per token, None outside the context


def cut_question(tokenizer: Any, question: str, budget: int) -> str:
    """``question`` cut to at most ``budget`` tokens (at a token's end)."""
    question = question.lstrip()   # leading spaces only make windows shorter
    for _ in range(3):   # re-tokenising a cut prefix can differ by a token; a few tries settle it
        encoded = tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
        offsets = encoded["offset_mapping"]
        if len(offsets) <= budget:
            return question
        question = question[:offsets[budget - 1][1]]
    return question


def qa_windows(examples: Sequence[QaExample], tokenizer: Any, max_length: int, stride: int,
               max_query_length: int | None = MAX_QUERY_LENGTH) -> QaWindows:
    """Windows of ``max_length`` tokens overlapping by ``stride``; questions cut to fit.

    ``max_query_length``: the most tokens a question keeps (None: as many
    as a window leaves room for).
    """
    specials = tokenizer.num_special_tokens_to_add(pair=True)
    # the tokenizer needs more context room than the stride in every window
    budget = max_length - specials - stride - 1
    if max_query_length is not None:
        budget = min(max_query_length, budget)
    if budget < 1:
        raise SpecError(f"finetune: a window of {max_length} tokens overlapping by {stride} leaves no room "
                        f"for a question (the stride must stay below the window length - {specials + 1})")
    questions = [cut_question(tokenizer, e.question, budget) for e in examples]
    encoded = tokenizer(questions, [e.context for e in examples], truncation="only_second",
                        max_length=max_length, stride=stride, return_overflowing_tokens=True,
                        return_offsets_mapping=True)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    features, offsets = [], []
    for i in range(len(encoded["input_ids"])):
        features.append({k: encoded[k][i] for k in keys})
        sequence = encoded.sequence_ids(i)
        offsets.append([tuple(o) if s == 1 else None
                        for o, s in zip(encoded["offset_mapping"][i], sequence)])
    return QaWindows(features, list(encoded["overflow_to_sample_mapping"]), offsets)


def answer_positions(offsets: Sequence[tuple[int, int] | None], start_char: int, end_char: int,
                     cls_index: int) -> tuple[int, int]:
    """Token start and end of the character span, or (cls, cls) if the window misses part of it."""
    inside = [i for i, o in enumerate(offsets) if o is not None]
    if not inside or offsets[inside[0]][0] > start_char or offsets[inside[-1]][1] < end_char:
        return cls_index, cls_index
    start = next(i for i in inside if offsets[i][1] > start_char)
    end = next(i for i in reversed(inside) if offsets[i][0] < end_char)
    return (start, end) if start <= end else (cls_index, cls_index)


def best_span(start_logits: Sequence[float], end_logits: Sequence[float],
              offsets: Sequence[tuple[int, int] | None], n_best: int,
              max_answer_length: int) -> tuple[float, int, int] | None:
    """``n_best`` selection: (start + end logit, start token, end token) of the best span, or None."""
    starts = sorted(range(len(start_logits)), key=lambda i: -start_logits[i])[:n_best]
    ends = sorted(range(len(end_logits)), key=lambda i: -end_logits[i])[:n_best]
    best = None
    for s in starts:
        for e in ends:
            if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                continue
            score = start_logits[s] + end_logits[e]
            if best is None or score > best[0]:
                best = (score, s, e)
    return best


def pipeline_span(start_logits: torch.Tensor, end_logits: torch.Tensor,
                  offsets: Sequence[tuple[int, int] | None], cls_position: int | None,
                  max_answer_length: int) -> tuple[float, int, int] | None:
    """``pipeline`` selection: (p(start) x p(end), start token, end token) of the best span, or None.

    The softmax runs over the context tokens and the CLS token, whose
    probability is then dropped, as in the question-answering pipeline;
    ties go to the earliest start, then the earliest end.
    """
    context = torch.tensor([o is not None for o in offsets])
    if not context.any():
        return None
    allowed = context.clone()
    if cls_position is not None:
        allowed[cls_position] = True

    def probabilities(logits: torch.Tensor) -> torch.Tensor:
        logits = logits.double().masked_fill(~allowed, float("-inf"))
        return torch.softmax(logits, dim=0).masked_fill(~context, 0.0)

    start, end = probabilities(start_logits), probabilities(end_logits)
    scores = start[:, None] * end[None, :]
    length = len(offsets)
    # start <= end < start + max_answer_length
    band = torch.ones(length, length, dtype=torch.bool).triu().tril(max_answer_length - 1)
    scores = scores.masked_fill(~band, -1.0)
    flat = int(torch.argmax(scores))   # the first maximum in (start, end) order
    s, e = divmod(flat, length)
    if scores[s, e] < 0 or offsets[s] is None or offsets[e] is None:
        return None
    return float(scores[s, e]), s, e


# ---------------------------------------------------------------- task

class QaTask(Task):

    def load_examples(self, source: str, language: str, split: str,
                      limit: int | None = None) -> list[QaExample]:
        if is_hub(source):
            return _hub_examples(source, language, split, limit)
        path = Path(source)
        if not path.exists():
            raise DataError("QA data not found", path)
        files = qa_files(path, language, split) if path.is_dir() else [path]
        examples: list[QaExample] = []
        for file in files:
            examples.extend(read_squad_json(file, None if limit is None else limit - len(examples),
                                            language))
            if limit is not None and len(examples) >= limit:
                break
        if not examples:
            raise DataError("no question in SQuAD data", source)
        return examples

    def setting(self, settings: FinetuneSettings, name: str) -> Any:
        """A QA setting of ``settings.extra``, else the task's default."""
        return settings.extra.get(name, self.definition.defaults[name])

    def build_head(self, hidden_size: int, dropout: float) -> nn.Module:
        # start and end logits per token; no dropout, like BERT's QA head
        return nn.Linear(hidden_size, 2)

    def features(self, examples: Sequence[QaExample], tokenizer: Any,
                 settings: FinetuneSettings) -> list[dict[str, Any]]:
        windows = qa_windows(examples, tokenizer, settings.max_length,
                             int(self.setting(settings, "doc_stride")))
        result = []
        for feature, index, offsets in zip(windows.features, windows.example_index,
                                           windows.context_offsets):
            example = examples[index]
            start_char = example.answer_starts[0]
            cls_index = feature["input_ids"].index(tokenizer.cls_token_id) \
                if tokenizer.cls_token_id in feature["input_ids"] else 0
            start, end = answer_positions(offsets, start_char, start_char + len(example.answers[0]),
                                          cls_index)
            result.append({**feature, "start_positions": start, "end_positions": end})
        return result

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        # padding positions can never be an answer
        padding = batch["attention_mask"] == 0
        logits = logits.masked_fill(padding.unsqueeze(-1), torch.finfo(logits.dtype).min)
        start = nn.functional.cross_entropy(logits[..., 0], batch["start_positions"])
        end = nn.functional.cross_entropy(logits[..., 1], batch["end_positions"])
        return (start + end) / 2

    @torch.no_grad()
    def predict(self, model: TaskModel, tokenizer: Any, examples: Sequence[QaExample],
                settings: FinetuneSettings, device: torch.device) -> list[str]:
        """The predicted answer text of every example ("" when no span qualifies)."""
        selection = self.setting(settings, "span_selection")
        if selection not in SPAN_SELECTIONS:
            raise unknown_name("finetune.span_selection", selection, SPAN_SELECTIONS)
        pipeline = selection == "pipeline"
        windows = qa_windows(examples, tokenizer, settings.eval_max_length,
                             int(self.setting(settings, "eval_doc_stride")),
                             None if pipeline else MAX_QUERY_LENGTH)
        n_best = int(self.setting(settings, "n_best"))
        max_answer = int(self.setting(settings, "max_answer_length"))
        best: list[tuple[float, int, int, int] | None] = [None] * len(examples)
        was_training = model.training
        model.eval()
        spans: list[tuple[float, int, int] | None] = [None] * len(windows.features)
        try:
            # longest windows first, in batches of similar length; each window's span kept at its index
            for indices in length_sorted_batches([len(f["input_ids"]) for f in windows.features],
                                                 settings.eval_batch_size):
                batch = to_device(self.collate([windows.features[i] for i in indices], tokenizer.pad_token_id),
                                  device)
                logits = model(**batch).float().cpu()
                for row, window in enumerate(indices):
                    feature = windows.features[window]
                    length = len(feature["input_ids"])
                    offsets = windows.context_offsets[window]
                    if pipeline:
                        ids = feature["input_ids"]
                        cls = ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else None
                        span = pipeline_span(logits[row, :length, 0], logits[row, :length, 1], offsets,
                                             cls, max_answer)
                    else:
                        span = best_span(logits[row, :length, 0].tolist(), logits[row, :length, 1].tolist(),
                                         offsets, n_best, max_answer)
                    spans[window] = span
        finally:
            model.train(was_training)
        for window, span in enumerate(spans):       # in window order, whatever order they were predicted in
            index = windows.example_index[window]
            # strictly better: on a tie the earlier window keeps its span
            if span is not None and (best[index] is None or span[0] > best[index][0]):
                best[index] = (*span, window)
        answers = []
        for example, choice in zip(examples, best):
            if choice is None:
                answers.append("")
                continue
            _, start, end, window = choice
            offsets = windows.context_offsets[window]
            answers.append(example.context[offsets[start][0]:offsets[end][1]])
        return answers

    def evaluate(self, model: TaskModel, tokenizer: Any, examples: Sequence[QaExample],
                 settings: FinetuneSettings, device: torch.device) -> dict[str, float]:
        predicted = self.predict(model, tokenizer, examples, settings, device)
        # keyed by position: ids are not unique across every SQuAD-shaped file
        gold = {str(i): e.answers for i, e in enumerate(examples)}
        english = bool(examples) and all(e.language == SOURCE_LANGUAGE for e in examples)
        return defined_scores(qa_metrics(gold, {str(i): p for i, p in enumerate(predicted)}, english),
                              "no evaluation question")


def hub_dataset(source: str, language: str, split: str) -> tuple[str, str | None, str]:
    """(dataset id, config, split) of a QA Hub source: SQuAD for English training,
    XQuAD (config ``xquad.<lang>``, whose only split ``validation`` is the test set)
    for testing, MLQA's development data for validation (``google/xtreme``,
    config ``MLQA.<lang>.<lang>``, split ``validation``: the Parquet copy; the
    script-based ``facebook/mlqa``, ``mlqa.<lang>.<lang>``, on request). A
    language MLQA lacks, or a validation read from XQuAD, is a SpecError."""
    hub = parse_hub_source(source)
    if hub.dataset_id is None:
        english_train = language == SOURCE_LANGUAGE and split == TRAIN
        dataset_id = TRAIN_DATASET if english_train else VALIDATION_DATASET if split == VALIDATION \
            else EVAL_DATASET
    else:
        dataset_id = hub.dataset_id
    if dataset_id == EVAL_DATASET and split == VALIDATION:
        raise SpecError(f"qa validation ({language}): XQuAD's only split is the test set; "
                        f"validate on MLQA's development data ('hub' or 'hub:{VALIDATION_DATASET}')")
    mlqa = MLQA_CONFIGS.get(dataset_id)
    if mlqa is not None and not hub.explicit_config and language not in MLQA_LANGUAGES:
        where = "validation" if split == VALIDATION else "eval"
        raise SpecError(f"qa {split}: MLQA has no {language!r} data (it covers "
                        f"{', '.join(MLQA_LANGUAGES)}); give data.qa.{where}.{language} a local file "
                        f"or leave the language out")
    if hub.explicit_config:
        config = hub.config
    elif dataset_id == EVAL_DATASET:
        config = f"xquad.{language}"
    elif mlqa is not None:
        config = mlqa.format(language=language)   # questions and contexts in the same language
    else:
        config = None
    if config is not None and config.lower().startswith("mlqa."):   # MLQA has a test split too
        return dataset_id, config, split
    return dataset_id, config, "validation" if split == TEST else split


def _hub_examples(source: str, language: str, split: str, limit: int | None) -> list[QaExample]:
    from trainables.hub import load_hub_split

    dataset_id, config, hub_split = hub_dataset(source, language, split)
    dataset = load_hub_split(dataset_id, config, hub_split)
    where = f"{dataset_id}" + (f"/{config}" if config else "") + f"/{hub_split}"
    examples = []
    for number, row in enumerate(dataset):
        answers = row["answers"]
        qa = {"id": row.get("id", str(number)), "question": row["question"],
              "answers": [{"text": t, "answer_start": s}
                          for t, s in zip(answers["text"], answers["answer_start"])]}
        examples.append(_squad_example(qa, row["context"], where, f"row {number}", language))
        if limit is not None and len(examples) >= limit:
            break
    return examples
