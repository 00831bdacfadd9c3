"""Test-wide settings: no network, quiet libraries, small shared fixtures."""

from __future__ import annotations

import os

# Without these a Hub id takes up to 50 s to fail; with them, about 2 s.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def realigned_cache_of_the_session(tmp_path_factory):
    """The test trials' realigned encoders go to a temporary directory, not the user's cache."""
    os.environ.setdefault("ALIGNFREEZE_REALIGNED_CACHE", str(tmp_path_factory.mktemp("realigned")))


@pytest.fixture(scope="session")
def mbert_tokenizer():
    from trainables.tiny_models import mbert_tokenizer

    return mbert_tokenizer()


@pytest.fixture(scope="session")
def train_and_evaluate(mbert_tokenizer):
    """Train a tiny mBERT-vocabulary model on ``train`` for one pass, evaluate on ``test``.

    The plain loop every task must work with: features -> collate -> forward
    (every input key, token_type_ids included: evaluation passes them too)
    -> loss -> backward. Returns the metrics; checks the losses are finite
    and that evaluation restores train mode.
    """
    import torch
    from transformers import BertConfig, BertModel

    from trainables.tasks.base import TaskModel

    def run(task, train, test, settings, max_features=None):
        torch.manual_seed(0)
        encoder = BertModel(BertConfig(vocab_size=len(mbert_tokenizer), hidden_size=32, num_hidden_layers=2,
                                       num_attention_heads=2, intermediate_size=64), add_pooling_layer=False)
        model = TaskModel(encoder, task.build_head(32, 0.1))
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        features = task.features(train, mbert_tokenizer, settings)[:max_features]
        assert all(len(f["input_ids"]) <= settings.max_length for f in features)
        for start in range(0, len(features), settings.batch_size):
            batch = task.collate(features[start:start + settings.batch_size], mbert_tokenizer.pad_token_id)
            loss = task.loss(model(**batch), batch)   # TaskModel ignores the label keys
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            assert torch.isfinite(loss)
        metrics = task.evaluate(model, mbert_tokenizer, test, settings, torch.device("cpu"))
        assert model.training, "evaluation must restore train mode"
        return metrics

    return run
