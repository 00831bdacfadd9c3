"""Shared machinery of word-level tagging tasks (PoS, NER).

A sentence is a list of words with one label each. The label sits on a
word's first sub-word; the other sub-words are ignored by loss and metric.
Sentences longer than the window are split into consecutive word windows,
each scored on its own, so every word is predicted exactly once and
nothing is truncated.

SentencePiece tokenizers (XLM-R) often split a word into a bare "▁" piece
and the rest (always so for a Chinese, Japanese or Thai word tokenized on
its own). That piece is the same for every word, so it is deleted from a
word's pieces, as the reference implementation does; a word made of
nothing but "▁" has no sub-word left and so no label and no prediction.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from trainables.device_settings import to_device
from trainables.length_grouping import length_sorted_batches
from trainables.tasks.base import IGNORE_INDEX, FinetuneSettings, Task, TaskModel, defined_scores


@dataclass(frozen=True)
class TaggedSentence:
    words: tuple[str, ...]
    labels: tuple[str, ...]   # same length as words; "" where unannotated


@dataclass(frozen=True)
class Window:
    """One model input: sub-word ids, and the label id at each first sub-word."""
    input_ids: list[int]
    labels: list[int]          # IGNORE_INDEX except at first sub-words of annotated words
    sentence: int              # index of the sentence it comes from
    first_subwords: dict[int, int]   # word index -> position of its first sub-word, for
                                     # every word of the window, annotated or not


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


METASPACE = "\u2581"   # SentencePiece's word-start mark, "▁"

_bare_metaspace_ids: "weakref.WeakKeyDictionary[Any, int | None]" = weakref.WeakKeyDictionary()


def bare_metaspace_id(tokenizer: Any) -> int | None:
    """Id of the standalone "▁" piece of a SentencePiece-style tokenizer, None for any other.

    SentencePiece-style: the vocabulary has "▁" and words are encoded with it
    as their start mark. A WordPiece vocabulary (mBERT) may hold the
    character as an ordinary token; it is left alone. Cached per tokenizer:
    this runs for every sentence.
    """
    try:
        return _bare_metaspace_ids[tokenizer]
    except (KeyError, TypeError):
        pass
    found = tokenizer.convert_tokens_to_ids(METASPACE)
    if found is None or found == tokenizer.unk_token_id:
        found = None
    else:
        plain = tokenizer.convert_ids_to_tokens(tokenizer("a", add_special_tokens=False)["input_ids"])
        if not plain or not plain[0].startswith(METASPACE):
            found = None
    try:
        _bare_metaspace_ids[tokenizer] = found
    except TypeError:   # not weakly referenceable: recomputed next time
        pass
    return found


def raw_word_pieces(tokenizer: Any, words: Sequence[str]) -> list[list[int]]:
    """The tokenizer's sub-word ids of each word, bare "▁" included.

    Each word is tokenized on its own (as ``is_split_into_words`` does); a
    word the tokenizer gives nothing for becomes the unknown token, so that
    it still has a position.
    """
    if not words:
        return []
    pieces = tokenizer(list(words), add_special_tokens=False)["input_ids"]
    unk = tokenizer.unk_token_id
    return [ids if ids else [unk] for ids in pieces]


def without_bare_metaspace(pieces: list[int], bare: int | None) -> list[int]:
    return pieces if bare is None else [piece for piece in pieces if piece != bare]


def word_pieces(tokenizer: Any, words: Sequence[str]) -> list[list[int]]:
    """Sub-word ids of each word, bare "▁" pieces deleted.

    A word of nothing but "▁" gets an empty list: it has no sub-word to
    carry its label or its representation (the reference drops it too).
    """
    bare = bare_metaspace_id(tokenizer)
    return [without_bare_metaspace(pieces, bare) for pieces in raw_word_pieces(tokenizer, words)]


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
        first: dict[int, int] = {}

        def flush() -> None:
            if ids:
                full = with_special_tokens(ids, specials)
                windows.append(Window(full, [IGNORE_INDEX] * before + labels + [IGNORE_INDEX] * after,
                                      index, first))

        for word, (word_ids, label) in enumerate(zip(pieces, sentence.labels)):
            if not word_ids:
                continue   # nothing but "▁": no sub-word to carry the label
            word_ids = word_ids[:budget]   # one word longer than a window: keep its first pieces
            if len(ids) + len(word_ids) > budget:
                flush()
                ids, labels, first = [], [], {}
            first[word] = before + len(ids)
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
        """Predicted label of every word of every sentence (windows stitched back).

        Unannotated words are predicted too. A word with no sub-word left
        (nothing but "▁") gets "": no prediction.
        """
        windows = sentence_windows(tokenizer, sentences, self.label_to_id, settings.eval_max_length)
        predictions = [[""] * len(s.words) for s in sentences]
        was_training = model.training
        model.eval()
        try:
            # longest windows first, in batches of similar length: each prediction goes to its own word
            for indices in length_sorted_batches([len(w.input_ids) for w in windows], settings.eval_batch_size):
                chunk = [windows[i] for i in indices]
                batch = to_device(self.collate([{"input_ids": w.input_ids,
                                                 "attention_mask": [1] * len(w.input_ids)} for w in chunk],
                                               tokenizer.pad_token_id), device)
                logits = model(batch["input_ids"], batch["attention_mask"])
                best = logits.argmax(-1).cpu()
                for row, window in enumerate(chunk):
                    for word, position in window.first_subwords.items():
                        predictions[window.sentence][word] = self.labels[int(best[row, position])]
        finally:
            model.train(was_training)
        return predictions

    def evaluate(self, model: TaskModel, tokenizer: Any, examples: Sequence[TaggedSentence],
                 settings: FinetuneSettings, device: torch.device) -> dict[str, float]:
        predicted = self.predict(model, tokenizer, examples, settings, device)
        return defined_scores(self.metrics(scored_gold(examples, predicted), predicted),
                              f"no annotated word in {len(examples)} evaluation sentence(s)")

    def metrics(self, gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
        """Word accuracy over annotated words (subclasses add their own metrics)."""
        return {"accuracy": word_accuracy(gold, predicted)}


def scored_gold(sentences: Sequence[TaggedSentence], predicted: Sequence[Sequence[str]]) -> list[list[str]]:
    """Gold labels with "" (unannotated) where a word has no prediction.

    Such a word has no sub-word to be predicted from; the reference gives it
    no label, so it is scored neither as right nor as wrong.
    """
    return [[gold if guess else "" for gold, guess in zip(sentence.labels, row, strict=True)]
            for sentence, row in zip(sentences, predicted, strict=True)]


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
