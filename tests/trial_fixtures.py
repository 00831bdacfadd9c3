"""Small experiment dicts on the bundled data, shared by the end-to-end tests."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from search_spaces import preset_path


def small_pos_experiment(**overrides: Any) -> dict[str, Any]:
    """The demo grid cut down to seconds: 2 targets, a few sentences, few steps."""
    raw = yaml.safe_load(preset_path("demo").read_text(encoding="utf-8"))
    raw = copy.deepcopy(raw)
    raw["name"] = "small"
    raw["languages"] = ["fr", "ru"]
    raw["data"]["pos"]["eval"] = {k: v for k, v in raw["data"]["pos"]["eval"].items() if k in ("en", "fr", "ru")}
    raw["realignment"]["languages"] = ["fr", "ru"]
    raw["realignment"]["max_pairs"] = 64
    raw["finetune"].update({"epochs": 2, "max_train_examples": 48, "max_eval_examples": 20})
    raw["seeds"] = [3]
    raw.update(overrides)
    return raw


def small_nli_experiment(**overrides: Any) -> dict[str, Any]:
    """The same grid on NLI (bundled XNLI slices): tiny-mBERT's head reads its pretrained pooler."""
    raw = small_pos_experiment()
    raw["tasks"] = ["nli"]
    raw["data"] = {"nli": {"train": "bundled:xnli/dev-en.first500.tsv", "eval": "bundled:xnli"}}
    raw["finetune"]["max_eval_examples"] = 30
    raw.update(overrides)
    return raw
