"""Test-wide settings: no network, quiet libraries, small shared fixtures."""

from __future__ import annotations

import os

# Without these a Hub id takes up to 50 s to fail; with them, about 2 s.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def mbert_tokenizer():
    from trainables.tiny_models import mbert_tokenizer

    return mbert_tokenizer()
