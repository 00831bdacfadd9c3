"""The names the analysis speaks: strategies, models and tasks as shown.

Strategy strings follow the project's contract: ``baseline``, ``full``,
``front``, ``back``, ``front:K``, ``back:K`` and ``range:A-B``. This module
orders them for tables and reads the frozen depth (and a window's first
block) out of them; it does not validate specs (the orchestrator does).
"""

from __future__ import annotations

import math
import re

from trainables.languages import SOURCE_LANGUAGE
from trainables.tasks.registry import TASKS

BASELINE = "baseline"
PAPER_STRATEGIES: tuple[str, ...] = ("baseline", "full", "front", "back")
NO_ALIGNER = "none"
DEFAULT_SCHEDULE = "before"

STRATEGY_LABELS: dict[str, str] = {
    "baseline": "fine-tuning only",
    "full": "full realignment",
    "front": "AlignFreeze front",
    "back": "AlignFreeze back",
}

# The paper's three encoders: display name and number of transformer blocks
# (the blocks fix the depth of "front" and "back" = half of them).
PAPER_MODELS: dict[str, tuple[str, int]] = {
    "distilbert-base-multilingual-cased": ("DistilmBERT", 6),
    "bert-base-multilingual-cased": ("mBERT", 12),
    "xlm-roberta-base": ("XLM-R", 12),
}

TASK_LABELS: dict[str, str] = {"pos": "PoS", "ner": "NER", "nli": "NLI", "qa": "QA"}

_DEPTH = re.compile(r"^(front|back):(\d+)$")
_RANGE = re.compile(r"^range:(\d+)-(\d+)$")


def model_label(model: str) -> str:
    return PAPER_MODELS.get(model, (model, 0))[0]


def model_order(model: str) -> tuple[int, str]:
    """Sort key: the paper's models first, in the paper's order, then by name."""
    names = list(PAPER_MODELS)
    return (names.index(model), "") if model in names else (len(names), model)


def task_label(task: str) -> str:
    return TASK_LABELS.get(task, task)


def task_order(task: str) -> tuple[int, str]:
    names = list(TASKS)
    return (names.index(task), "") if task in names else (len(names), task)


def strategy_label(strategy: str) -> str:
    if strategy in STRATEGY_LABELS:
        return STRATEGY_LABELS[strategy]
    match = _DEPTH.match(strategy)
    if match:
        return f"{match.group(1)} {match.group(2)} frozen"
    match = _RANGE.match(strategy)
    if match:
        return f"blocks {match.group(1)}-{match.group(2)} frozen"
    return strategy


def strategy_order(strategy: str) -> tuple[int, int, int, str]:
    """Sort key: the paper's rows first, then front:K, back:K by K, then ranges."""
    if strategy in PAPER_STRATEGIES:
        return (PAPER_STRATEGIES.index(strategy), 0, 0, "")
    match = _DEPTH.match(strategy)
    if match:
        return (len(PAPER_STRATEGIES) + (0 if match.group(1) == "front" else 1),
                int(match.group(2)), 0, "")
    match = _RANGE.match(strategy)
    if match:
        return (len(PAPER_STRATEGIES) + 2, int(match.group(1)), int(match.group(2)), "")
    return (len(PAPER_STRATEGIES) + 3, 0, 0, strategy)


def frozen_depth(strategy: str, num_blocks: float | None = None) -> tuple[str, int] | None:
    """(side, number of frozen blocks) for front/back strategies, else None.

    ``front`` and ``back`` freeze half the blocks, so their depth needs the
    number of blocks; ``full`` freezes nothing (depth 0 on either side).
    """
    match = _DEPTH.match(strategy)
    if match:
        return match.group(1), int(match.group(2))
    if strategy in ("front", "back"):
        if num_blocks is None or (isinstance(num_blocks, float) and math.isnan(num_blocks)):
            return None
        return strategy, int(num_blocks) // 2
    return None


def is_depth_strategy(strategy: str) -> bool:
    return bool(_DEPTH.match(strategy))


def frozen_window(strategy: str, num_blocks: int | None = None) -> tuple[int, int] | None:
    """(first frozen block, number of frozen blocks) of a contiguous frozen range of blocks, else None.

    ``range:A-B`` without the embeddings (A >= 1) is blocks A-1 .. B-2; ``front:K``
    starts at block 0; ``back:K`` ends at the last block (needs ``num_blocks``).
    """
    match = _RANGE.match(strategy)
    if match:
        start, end = int(match.group(1)), int(match.group(2))
        return (start - 1, end - start) if start >= 1 and end > start else None
    match = _DEPTH.match(strategy)
    if match:
        depth = int(match.group(2))
        if match.group(1) == "front":
            return 0, depth
        return (num_blocks - depth, depth) if num_blocks else None
    return None


def language_order(task: str, language: str) -> tuple[int, int, str]:
    """Sort key, one order everywhere: the task's target languages in the order
    of trainables/languages.py, then other targets by code, English last."""
    if language == SOURCE_LANGUAGE:
        return (2, 0, "")
    listed = TASKS[task].paper_languages if task in TASKS else ()
    if language in listed:
        return (0, listed.index(language), "")
    return (1, 0, language)


def sorted_languages(task: str, languages) -> list[str]:
    return sorted(set(languages), key=lambda language: language_order(task, language))
