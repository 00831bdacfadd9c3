"""The task registry: one declared entry per task.

An entry is metadata (name, metrics, paper languages, default
hyper-parameters, the reference-results name) plus the dotted path of its
implementation class, imported only when a trial needs it, so that the
analysis and the spec validation can read task facts without importing
torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from trainables import languages
from trainables.errors import unknown_name


@dataclass(frozen=True)
class TaskDefinition:
    name: str
    description: str
    metrics: tuple[str, ...]          # every metric a trial reports, per language
    primary_metric: str               # the metric of the paper's table
    paper_languages: tuple[str, ...]  # the paper's target languages
    reference_name: str               # task name in the authors' result files
    implementation: str               # "module:Class"
    defaults: dict[str, Any] = field(default_factory=dict)  # fine-tuning hyper-parameters

    def load(self):
        module_name, _, class_name = self.implementation.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        return cls(self)


# Fine-tuning defaults of the paper (batch 32, lr 2e-5, 7.5e-6 for XLM-R,
# linear schedule with 10% warm-up, no weight decay; no gradient clipping:
# FinetuneSettings.clip_grad_norm None).
_COMMON = {"batch_size": 32, "learning_rate": 2e-5, "xlmr_learning_rate": 7.5e-6,
           "warmup_ratio": 0.1, "weight_decay": 0.0}

TASKS: dict[str, TaskDefinition] = {
    "pos": TaskDefinition(
        name="pos",
        description="Part-of-speech tagging on Universal Dependencies (UPOS)",
        metrics=("accuracy",),
        primary_metric="accuracy",
        paper_languages=languages.PAPER_POS_LANGUAGES,
        reference_name="udpos",
        implementation="trainables.tasks.pos:PosTask",
        defaults={**_COMMON, "epochs": 5, "max_length": 96, "eval_max_length": 128},
    ),
    "ner": TaskDefinition(
        name="ner",
        description="Named-entity recognition on WikiANN (BIO, PER/ORG/LOC)",
        # the paper's figures (after the reference's post-processing of predictions),
        # then the same figures on the raw predictions
        metrics=("accuracy", "f1", "precision", "recall",
                 "accuracy_raw", "f1_raw", "precision_raw", "recall_raw"),
        primary_metric="accuracy",
        paper_languages=languages.PAPER_NER_LANGUAGES,
        reference_name="wikiann",
        implementation="trainables.tasks.ner:NerTask",
        defaults={**_COMMON, "epochs": 5, "max_length": 96, "eval_max_length": 128},
    ),
    "nli": TaskDefinition(
        name="nli",
        description="Natural-language inference: MultiNLI training, XNLI evaluation",
        metrics=("accuracy",),
        primary_metric="accuracy",
        paper_languages=languages.PAPER_NLI_LANGUAGES,
        reference_name="xnli",
        implementation="trainables.tasks.nli:NliTask",
        defaults={**_COMMON, "epochs": 2, "max_length": 96, "eval_max_length": 256},
    ),
    "qa": TaskDefinition(
        name="qa",
        description="Extractive QA: SQuAD v1.1 training, XQuAD evaluation",
        # the paper's F1 / exact match (the reference's definitions), then the
        # official SQuAD v1.1 figures
        metrics=("f1_paper", "exact_match_paper", "f1", "exact_match"),
        primary_metric="f1_paper",
        paper_languages=languages.PAPER_QA_LANGUAGES,
        reference_name="xquad",
        implementation="trainables.tasks.qa:QaTask",
        # training windows of 96 with an overlap of 32 (the reference); prediction
        # as the Hugging Face question-answering pipeline's defaults
        defaults={**_COMMON, "epochs": 5, "max_length": 96, "doc_stride": 32,
                  "eval_max_length": 384, "eval_doc_stride": 128, "max_answer_length": 15,
                  "n_best": 20, "span_selection": "pipeline"},
    ),
}


def get_task(name: str) -> TaskDefinition:
    try:
        return TASKS[name]
    except KeyError:
        raise unknown_name("task", name, TASKS) from None
