"""Natural-language inference: MultiNLI training, XNLI zero-shot evaluation (accuracy).

Sources:

* ``hub`` -- English ``train``: ``nyu-mll/multi_nli`` split ``train``;
  anything else: ``facebook/xnli``, config = the language, split as given.
  ``hub:<id>[:<config>]`` for another copy with premise/hypothesis/label
  columns. Rows with label -1 (no gold label) are dropped.
* a ``.tsv`` file, ``premise<TAB>hypothesis<TAB>label`` (an optional header
  row with those three names), or a ``.jsonl`` file with those fields;
* a directory: ``<dir>/<split>-<lang>*.tsv`` or ``.jsonl``; for ``test``,
  when no test file exists, ``<dir>/dev-<lang>*`` (the bundled XNLI
  slices are dev data, drawn like the test set); ``validation`` reads
  ``<dir>/dev-<lang>*`` (or ``validation-``, ``val-``).

``validation`` from the Hub is XNLI's ``validation`` split (its dev set),
English included.

Labels are names (``entailment``, ``neutral``, ``contradiction``; XTREME's
``contradictory`` too) or ids in the order of ``labels.NLI_LABELS``, which
is also the Hub datasets' order; ``-`` (MultiNLI's no-consensus mark) rows
are skipped. Any other label is an error with file and line.

The head is the encoder's own ``*ForSequenceClassification`` head, as the
reference fine-tunes it: BERT classifies from its pretrained pooler,
XLM-R with dense + tanh on <s>, DistilBERT with its pre-classifier.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from trainables.device_settings import to_device
from trainables.errors import DataError
from trainables.length_grouping import length_sorted_batches
from trainables.tasks.base import FinetuneSettings, Task, TaskModel, defined_scores
from trainables.tasks.hub_source import class_names, is_hub, parse_hub_source
from trainables.tasks.labels import NLI_LABELS, label_ids
from trainables.tasks.splits import TEST, split_file_names

TRAIN_DATASET = "nyu-mll/multi_nli"
EVAL_DATASET = "facebook/xnli"

_LABEL_IDS = label_ids(NLI_LABELS)
_ALIASES = {"contradictory": "contradiction"}   # XTREME's processed XNLI
_NO_LABEL = "-"


@dataclass(frozen=True)
class NliExample:
    premise: str
    hypothesis: str
    label: int   # index into NLI_LABELS


def nli_label(value: Any, path: object, line: int | None) -> int | None:
    """The label id of a name or an id; None for the no-gold mark; else a DataError."""
    if isinstance(value, bool):
        value = None  # a JSON true/false is no label
    if isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        number = int(value)
        if number == -1:
            return None
        if 0 <= number < len(NLI_LABELS):
            return number
    elif isinstance(value, str):
        name = value.strip().lower()
        if name == _NO_LABEL:
            return None
        name = _ALIASES.get(name, name)
        if name in _LABEL_IDS:
            return _LABEL_IDS[name]
    raise DataError(f"unknown NLI label {value!r} (expected one of {', '.join(NLI_LABELS)} "
                    f"or an id 0-{len(NLI_LABELS) - 1})", path, line)


def read_nli_tsv(path: Path, limit: int | None = None) -> list[NliExample]:
    examples: list[NliExample] = []
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            columns = line.split("\t")
            if number == 1 and [c.strip().lower() for c in columns] == ["premise", "hypothesis", "label"]:
                continue
            if len(columns) != 3:
                raise DataError(f"expected premise<TAB>hypothesis<TAB>label, found "
                                f"{len(columns)} columns", path, number)
            example = _example(columns[0], columns[1], columns[2], path, number)
            if example is not None:
                examples.append(example)
                if limit is not None and len(examples) >= limit:
                    break
    return examples


def read_nli_jsonl(path: Path, limit: int | None = None) -> list[NliExample]:
    examples: list[NliExample] = []
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as error:
                raise DataError(f"not JSON: {error.msg}", path, number) from None
            if not isinstance(row, dict) or not {"premise", "hypothesis", "label"} <= row.keys():
                raise DataError("expected an object with premise, hypothesis and label", path, number)
            example = _example(row["premise"], row["hypothesis"], row["label"], path, number)
            if example is not None:
                examples.append(example)
                if limit is not None and len(examples) >= limit:
                    break
    return examples


def _example(premise: Any, hypothesis: Any, label: Any, path: object, line: int) -> NliExample | None:
    if not isinstance(premise, str) or not premise.strip():
        raise DataError("empty premise", path, line)
    if not isinstance(hypothesis, str) or not hypothesis.strip():
        raise DataError("empty hypothesis", path, line)
    label_id = nli_label(label, path, line)
    return None if label_id is None else NliExample(premise, hypothesis, label_id)


def nli_files(directory: Path, language: str, split: str) -> list[Path]:
    # ``test`` falls back to dev files (the bundled slices); ``validation`` reads dev files
    splits = (split, "dev") if split == TEST else split_file_names(split)
    for name in splits:
        files = sorted(f for f in directory.glob(f"{name}-{language}*")
                       if f.is_file() and f.suffix in (".tsv", ".jsonl"))
        if files:
            return files
    raise DataError(f"no NLI file for language {language!r}, split {split!r} "
                    f"(looked for {' or '.join(f'{s}-{language}*.tsv/.jsonl' for s in splits)})",
                    directory)


# Sentence-pair heads: each architecture's own ``*ForSequenceClassification``
# head, as the reference fine-tunes them (parameter names as in transformers).

class PooledOutputClassifier(nn.Module):
    """BERT's: dropout and a linear layer on the encoder's pretrained pooler output."""

    reads_pooled_output = True   # TaskModel passes the pooler output, not the hidden states

    def __init__(self, hidden_size: int, num_labels: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(pooled))


class FirstTokenClassifier(nn.Module):
    """XLM-R's (``RobertaClassificationHead``): dropout, dense + tanh, dropout, linear on <s>.

    Also the head of any encoder with neither BERT's pooler nor DistilBERT's layout.
    """

    def __init__(self, hidden_size: int, num_labels: int, dropout: float):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out_proj = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.dense(self.dropout(hidden[:, 0])))
        return self.out_proj(self.dropout(x))


class PreClassifierHead(nn.Module):
    """DistilBERT's: pre-classifier (linear d -> d), ReLU, dropout, linear on [CLS]."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float):
        super().__init__()
        self.pre_classifier = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(torch.relu(self.pre_classifier(hidden[:, 0]))))


def sentence_pair_head(encoder: nn.Module, num_labels: int, dropout: float | None) -> nn.Module:
    """The ``*ForSequenceClassification`` head of ``encoder``'s architecture, before initialisation.

    ``dropout`` None: the rate transformers gives that head (DistilBERT:
    ``seq_classif_dropout``; BERT / XLM-R: ``classifier_dropout``, else
    ``hidden_dropout_prob``).
    """
    from trainables.models import dropout_rate, hidden_size

    config = encoder.config
    size = hidden_size(encoder)
    if config.model_type == "distilbert":
        rate = config.seq_classif_dropout if dropout is None else dropout
        return PreClassifierHead(size, num_labels, float(rate))
    rate = dropout_rate(encoder) if dropout is None else dropout
    if config.model_type == "bert":
        if getattr(encoder, "pooler", None) is None:
            raise ValueError("a BERT encoder needs its pretrained pooler for the sentence-pair head: "
                             "load it with load_encoder(name, pooler=True)")
        return PooledOutputClassifier(size, num_labels, rate)
    return FirstTokenClassifier(size, num_labels, rate)


def pair_features(examples: Sequence[NliExample], tokenizer: Any, max_length: int) -> list[dict[str, Any]]:
    # "longest_first" trims the longer of premise and hypothesis token by
    # token: the standard for sentence pairs, and what the paper did.
    encoded = tokenizer([e.premise for e in examples], [e.hypothesis for e in examples],
                        truncation="longest_first", max_length=max_length)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in encoded]
    return [{**{k: encoded[k][i] for k in keys}, "labels": e.label} for i, e in enumerate(examples)]


class NliTask(Task):
    labels = NLI_LABELS

    def load_examples(self, source: str, language: str, split: str,
                      limit: int | None = None) -> list[NliExample]:
        if is_hub(source):
            return _hub_examples(source, language, split, limit)
        path = Path(source)
        if not path.exists():
            raise DataError("NLI data not found", path)
        files = nli_files(path, language, split) if path.is_dir() else [path]
        examples: list[NliExample] = []
        for file in files:
            rest = None if limit is None else limit - len(examples)
            reader = read_nli_jsonl if file.suffix == ".jsonl" else read_nli_tsv
            examples.extend(reader(file, rest))
            if limit is not None and len(examples) >= limit:
                break
        if not examples:
            raise DataError("no labelled example in NLI data", source)
        return examples

    pretrained_pooler = True   # BERT's head classifies from its pretrained pooler

    def build_head(self, hidden_size: int, dropout: float) -> nn.Module:
        """The architecture-free head (XLM-R's shape); ``build_model`` picks the encoder's own."""
        return FirstTokenClassifier(hidden_size, len(self.labels), dropout)

    def build_model(self, encoder: nn.Module, dropout: float | None = None) -> TaskModel:
        from trainables.models import initialise_new_head, initializer_range

        head = sentence_pair_head(encoder, len(self.labels), dropout)
        # new layers only: BERT's pooler lies in the encoder, loaded from its checkpoint
        return TaskModel(encoder, initialise_new_head(head, initializer_range(encoder)))

    def features(self, examples: Sequence[NliExample], tokenizer: Any,
                 settings: FinetuneSettings) -> list[dict[str, Any]]:
        return pair_features(examples, tokenizer, settings.max_length)

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, batch["labels"])

    @torch.no_grad()
    def predict(self, model: TaskModel, tokenizer: Any, examples: Sequence[NliExample],
                settings: FinetuneSettings, device: torch.device) -> list[int]:
        """The predicted label id of every example (windows of ``eval_max_length``)."""
        features = pair_features(examples, tokenizer, settings.eval_max_length)
        predictions: list[int] = [0] * len(features)
        was_training = model.training
        model.eval()
        try:
            # longest pairs first, in batches of similar length; each prediction back at its index
            for indices in length_sorted_batches([len(f["input_ids"]) for f in features],
                                                 settings.eval_batch_size):
                batch = self.collate([features[i] for i in indices], tokenizer.pad_token_id)
                inputs = to_device({k: v for k, v in batch.items() if k != "labels"}, device)
                for index, label in zip(indices, model(**inputs).argmax(-1).tolist()):
                    predictions[index] = label
        finally:
            model.train(was_training)
        return predictions

    def evaluate(self, model: TaskModel, tokenizer: Any, examples: Sequence[NliExample],
                 settings: FinetuneSettings, device: torch.device) -> dict[str, float]:
        predicted = self.predict(model, tokenizer, examples, settings, device)
        return defined_scores({"accuracy": accuracy([e.label for e in examples], predicted)},
                              "no evaluation example")


def accuracy(gold: Sequence[int], predicted: Sequence[int]) -> float:
    if len(gold) != len(predicted):
        raise ValueError("different numbers of gold and predicted labels")
    return sum(g == p for g, p in zip(gold, predicted)) / len(gold) if gold else float("nan")


def hub_dataset(source: str, language: str, split: str) -> tuple[str, str | None, str]:
    """(dataset id, config, split) of an NLI Hub source: MultiNLI for English
    training, XNLI (config = the language) otherwise."""
    hub = parse_hub_source(source)
    if hub.dataset_id is None:
        english_train = language == "en" and split == "train"
        dataset_id = TRAIN_DATASET if english_train else EVAL_DATASET
        config = None if english_train else language
    else:
        dataset_id = hub.dataset_id
        config = hub.config if hub.explicit_config else language
    return dataset_id, config, split


def _hub_examples(source: str, language: str, split: str, limit: int | None) -> list[NliExample]:
    from trainables.hub import load_hub_split

    dataset_id, config, split = hub_dataset(source, language, split)
    dataset = load_hub_split(dataset_id, config, split)
    names = class_names(dataset, "label")
    where = f"{dataset_id}" + (f"/{config}" if config else "") + f"/{split}"
    examples = []
    for number, row in enumerate(dataset):
        if not (row["premise"] or "").strip() or not (row["hypothesis"] or "").strip():
            continue   # a handful of Hub rows have an empty side: nothing to classify
        label = row["label"]
        if names is not None and isinstance(label, int) and 0 <= label < len(names):
            label = names[label]   # by name, so a differently ordered copy keeps our ids
        example = _example(row["premise"], row["hypothesis"], label, where, number)
        if example is not None:
            examples.append(example)
            if limit is not None and len(examples) >= limit:
                break
    return examples
