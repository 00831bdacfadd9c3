"""Shared machinery of word-level tagging tasks (PoS, NER).

A sentence is a list of words with one label each. The label sits on a
word's first sub-word; the other sub-words are ignored by loss and metric.
Sentences longer than the window are split into consecutive word windows,
each scored on its own, so every word is predicted exactly once and
nothing is truncated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from trainables.tasks.base import IGNORE_INDEX, FinetuneSettings, Task, TaskModel


@dataclass(frozen=True)
class TaggedSentence:
    words: tuple[str, ...]
    labels: tuple[str, ...]   # same length as words; "" where unannotated


@dataclass(frozen=True)
class Window:
    """One model input: sub-word ids, and the label id at each first sub-word."""
    input_ids: list[int]
    labels: list[int]          # IGNORE_INDEX except at first sub-words
    sentence: int              # index of the sentence it comes from


def special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special-token ids the tokenizer puts before and after a single sequence.

    Read off an encoding of a plain word rather than from
    ``build_inputs_with_special_tokens``, which transformers 5 dropped.
    """
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return full[:start], full[start + len(plain):]
    raise ValueError(f"cannot locate the special tokens of {type(tokenizer).__name__}")


def special_token_layout(tokenizer: Any) -> tuple[int, int]:
    """How many special tokens the tokenizer puts before and after a sequence."""
    before, after = special_tokens(tokenizer)
    return len(before), len(after)


def with_special_tokens(ids: list[int], specials: tuple[list[int], list[int]]) -> list[int]:
    return specials[0] + list(ids) + specials[1]


def word_pieces(tokenizer: Any, words: Sequence[str]) -> list[list[int]]:
    """Sub-word ids of each word (a word with none becomes the unknown token)."""
    if not words:
        return []
    pieces = tokenizer(list(words), add_special_tokens=False)["input_ids"]
    unk = tokenizer.unk_token_id
    return [ids if ids else [unk] for ids in pieces]


def sentence_windows(tokenizer: Any, sentences: Sequence[TaggedSentence],
                     label_to_id: dict[str, int], max_length: int) -> list[Window]:
    """Split every sentence into windows of at most ``max_length`` sub-words."""
    specials = special_tokens(tokenizer)
    before, after = len(specials[0]), len(specials[1])
    budget = max_length - before - after
    if budget < 1:
        raise ValueError(f"max_length {max_length} leaves no room for text")
    windows = []
    for index, sentence in enumerate(sentences):
        pieces = word_pieces(tokenizer, sentence.words)
        ids: list[int] = []
        labels: list[int] = []

        def flush() -> None:
            if ids:
                full = with_special_tokens(ids, specials)
                windows.append(Window(full, [IGNORE_INDEX] * before + labels + [IGNORE_INDEX] * after,
                                      index))

        for word_ids, label in zip(pieces, sentence.labels):
            word_ids = word_ids[:budget]   # one word longer than a window: keep its first pieces
            if len(ids) + len(word_ids) > budget:
                flush()
                ids, labels = [], []
            ids.extend(word_ids)
            labels.append(label_to_id.get(label, IGNORE_INDEX))
            labels.extend([IGNORE_INDEX] * (len(word_ids) - 1))
        flush()
    return windows


class TokenClassificationTask(Task):
    """A tagging task; subclasses give the label set and the data loading."""

    labels: tuple[str, ...] = ()

    @property
    def label_to_id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    def build_head(self, hidden_size: int, dropout: float) -> nn.Module:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, len(self.labels)))

    def features(self, examples: Sequence[TaggedSentence], tokenizer: Any,
                 settings: FinetuneSettings) -> list[dict[str, Any]]:
        windows = sentence_windows(tokenizer, examples, self.label_to_id, settings.max_length)
        return [{"input_ids": w.input_ids, "attention_mask": [1] * len(w.input_ids),
                 "labels": w.labels} for w in windows if any(l != IGNORE_INDEX for l in w.labels)]

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                           batch["labels"].reshape(-1), ignore_index=IGNORE_INDEX)

    @torch.no_grad()
    def predict(self, model: TaskModel, tokenizer: Any, sentences: Sequence[TaggedSentence],
                settings: FinetuneSettings, device: torch.device) -> list[list[str]]:
        """Predicted label of every word of every sentence (windows stitched back)."""
        # Label positions of a window, recomputed with every position marked, so
        # that unannotated words are predicted too.
        marked = [TaggedSentence(s.words, (self.labels[0],) * len(s.words)) for s in sentences]
        positions = sentence_windows(tokenizer, marked, self.label_to_id, settings.eval_max_length)
        predictions: list[list[str]] = [[] for _ in sentences]
        was_training = model.training
        model.eval()
        try:
            for start in range(0, len(positions), settings.eval_batch_size):
                chunk = positions[start:start + settings.eval_batch_size]
                batch = self.collate([{"input_ids": w.input_ids,
                                       "attention_mask": [1] * len(w.input_ids)} for w in chunk],
                                     tokenizer.pad_token_id)
                logits = model(batch["input_ids"].to(device), batch["attention_mask"].to(device))
                best = logits.argmax(-1).cpu()
                for row, window in enumerate(chunk):
                    for column, label in enumerate(window.labels):
                        if label != IGNORE_INDEX:
                            predictions[window.sentence].append(self.labels[int(best[row, column])])
        finally:
            model.train(was_training)
        return predictions

    def evaluate(self, model: TaskModel, tokenizer: Any, examples: Sequence[TaggedSentence],
                 settings: FinetuneSettings, device: torch.device) -> dict[str, float]:
        predicted = self.predict(model, tokenizer, examples, settings, device)
        return self.metrics([list(s.labels) for s in examples], predicted)

    def metrics(self, gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
        """Word accuracy over annotated words (subclasses add their own metrics)."""
        return {"accuracy": word_accuracy(gold, predicted)}


def word_accuracy(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    """Share of annotated words ("" = unannotated) whose predicted label is right."""
    correct = total = 0
    for gold_row, predicted_row in zip(gold, predicted, strict=True):
        if len(gold_row) != len(predicted_row):
            raise ValueError("a sentence has a different number of gold and predicted labels")
        for g, p in zip(gold_row, predicted_row):
            if g:
                total += 1
                correct += g == p
    return correct / total if total else float("nan")
