"""What every task provides to the fine-tuning loop and the evaluation.

A task turns its data sources into examples, examples into model
features, and owns its head, its loss and its metric. The encoder, the
optimizer, the schedule and the loop are shared (``trainables.trial``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from trainables.errors import DataError
from trainables.tasks.registry import TaskDefinition

IGNORE_INDEX = -100  # label of positions that take no part in the loss or metric


def defined_scores(scores: dict[str, float], nothing: str) -> dict[str, float]:
    """``scores``, or a DataError when one is undefined (NaN: ``nothing`` was there to score).

    A NaN would be recorded as a result (not even valid JSON): the trial
    fails instead, naming what was missing.
    """
    undefined = [name for name, value in scores.items() if not math.isfinite(value)]
    if undefined:
        raise DataError(f"nothing to score: {nothing}, so {', '.join(undefined)} is undefined")
    return scores


@dataclass(frozen=True)
class FinetuneSettings:
    """Fine-tuning and evaluation hyper-parameters of one trial."""
    batch_size: int = 32
    learning_rate: float = 2e-5
    epochs: int = 5
    max_length: int = 96            # training windows (sub-word tokens incl. specials)
    eval_max_length: int = 96       # evaluation windows
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    clip_grad_norm: float | None = None     # None: no clipping (the reference clips nothing)
    eval_batch_size: int = 64
    max_train_examples: int | None = None   # None: all
    max_eval_examples: int | None = None    # None: all, per language
    batching: str = "random"    # random (the reference's) | length_grouped (trainables.length_grouping)
    extra: dict[str, Any] = field(default_factory=dict)  # task-specific (doc_stride, n_best, ...)


class TaskModel(nn.Module):
    """An encoder with a task head on its last hidden states.

    A head whose ``reads_pooled_output`` is true is given the encoder's
    pooler output instead (BERT's sentence-pair classifier).
    """

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None, **_: Any) -> torch.Tensor:
        # segment ids of BERT sentence pairs (NLI, QA); XLM-R and DistilBERT take none
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra)
        if getattr(self.head, "reads_pooled_output", False):
            return self.head(outputs.pooler_output)
        return self.head(outputs.last_hidden_state)


class Task(ABC):
    """One task: data, features, head, loss, metric."""

    def __init__(self, definition: TaskDefinition):
        self.definition = definition

    @property
    def name(self) -> str:
        return self.definition.name

    # ---- data
    @abstractmethod
    def load_examples(self, source: str, language: str, split: str,
                      limit: int | None = None) -> list[Any]:
        """Examples of ``language`` from ``source``.

        ``source`` is a resolved local path (file or directory) or ``hub`` /
        ``hub:<dataset id>``. ``split`` is ``train``, ``test`` or ``validation``
        (``splits``). A missing or malformed file raises ``DataError`` with file and line.
        """

    def evaluation_examples(self, source: str, language: str, settings: FinetuneSettings,
                            split: str = "test") -> list[Any]:
        """The ``split`` examples of ``language`` as the trial scores them (NER re-segments Chinese)."""
        return self.load_examples(source, language, split, settings.max_eval_examples)

    # ---- model
    # Whether the head classifies from a BERT encoder's pretrained pooler:
    # the trial then loads the encoder with it (``models.load_encoder``).
    pretrained_pooler: bool = False

    @abstractmethod
    def build_head(self, hidden_size: int, dropout: float) -> nn.Module:
        """A freshly initialised head for encoder states of ``hidden_size``."""

    def build_model(self, encoder: nn.Module, dropout: float | None = None) -> TaskModel:
        """``encoder`` with a new head, initialised as Hugging Face initialises a new head.

        ``dropout``: None for the architecture's own rate (``models.dropout_rate``).
        """
        from trainables.models import dropout_rate, hidden_size, initialise_new_head, initializer_range

        head = self.build_head(hidden_size(encoder), dropout_rate(encoder) if dropout is None else dropout)
        return TaskModel(encoder, initialise_new_head(head, initializer_range(encoder)))

    @abstractmethod
    def features(self, examples: Sequence[Any], tokenizer: Any,
                 settings: FinetuneSettings) -> list[dict[str, Any]]:
        """Training features: dicts of equal-length lists (input_ids, attention_mask, labels...)."""

    def collate(self, features: Sequence[dict[str, Any]], pad_token_id: int) -> dict[str, torch.Tensor]:
        """Pad a batch of features into tensors (input_ids with the pad id, labels with -100)."""
        length = max(len(f["input_ids"]) for f in features)
        batch: dict[str, torch.Tensor] = {}
        for key in features[0]:
            values = [f[key] for f in features]
            if isinstance(values[0], (list, tuple)):
                pad = pad_token_id if key == "input_ids" else (IGNORE_INDEX if key == "labels" else 0)
                batch[key] = torch.tensor([list(v) + [pad] * (length - len(v)) for v in values])
            else:
                batch[key] = torch.tensor(values)
        return batch

    @abstractmethod
    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The training loss of a batch given the head's output."""

    # ---- evaluation
    @abstractmethod
    def evaluate(self, model: TaskModel, tokenizer: Any, examples: Sequence[Any],
                 settings: FinetuneSettings, device: torch.device) -> dict[str, float]:
        """The task's metrics (``definition.metrics``) on ``examples``, as fractions."""
