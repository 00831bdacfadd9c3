"""Generator states in a trial checkpoint: restored from the CPU whatever device the checkpoint is loaded to."""

from __future__ import annotations

import random

import numpy
import pytest
import torch

from orchestrator.experiment import experiment_from_dict
from trainables import random_state
from trainables.tasks.base import FinetuneSettings
from trainables.trial import Phase, TrialRunner, seed_everything

from trial_fixtures import small_pos_experiment


def draws() -> tuple[list[float], float, float]:
    return torch.rand(4).tolist(), random.random(), float(numpy.random.rand())


def test_states_survive_a_checkpoint_loaded_onto_another_device(tmp_path):
    """On a GPU, ``_load`` maps every tensor to the GPU; ``meta`` stands in for it here.

    With the CPU state saved as a tensor, it came back off the CPU and
    ``torch.set_rng_state`` refused it ("RNG state must be a torch.ByteTensor").
    """
    [spec] = experiment_from_dict(small_pos_experiment(strategies=["baseline"])).trials
    runner = TrialRunner(spec, log=lambda _: None)
    runner.settings, runner.device = FinetuneSettings(), torch.device("meta")
    seed_everything(7)
    draws()
    runner._save(tmp_path / "checkpoint", Phase("finetune", 0), {"weights": torch.ones(3)})
    expected = draws()
    seed_everything(8)   # another stream, as in a new process
    state = runner._load(tmp_path / "checkpoint")
    assert state["weights"].device.type == "meta", "the map_location did not apply: nothing is tested"
    random_state.restore(state["rng"])
    assert draws() == expected


def test_cuda_states_are_kept_as_bytes_and_restored_per_device(monkeypatch):
    """The CUDA path, with the torch.cuda calls replaced (no GPU here)."""
    devices = [torch.tensor([1, 2, 3], dtype=torch.uint8), torch.tensor([4, 5, 6], dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: devices)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.extend)
    state = random_state.capture()
    assert state["cuda"] == [b"\x01\x02\x03", b"\x04\x05\x06"]
    random_state.restore(state)
    assert [t.device.type for t in restored] == ["cpu", "cpu"]
    assert [t.dtype for t in restored] == [torch.uint8, torch.uint8]
    assert [t.tolist() for t in restored] == [[1, 2, 3], [4, 5, 6]]
    # a checkpoint from a machine with more GPUs than this one: the devices present
    restored.clear()
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    random_state.restore(state)
    assert [t.tolist() for t in restored] == [[1, 2, 3]]


def test_a_checkpoint_without_cuda_states_restores_on_a_gpu(monkeypatch):
    state = random_state.capture()   # CPU machine: no "cuda" entry
    assert "cuda" not in state
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda _: pytest.fail("no CUDA state to restore"))
    random_state.restore(state)


def test_older_checkpoints_hold_the_cpu_state_as_a_tensor():
    torch.manual_seed(3)
    saved = torch.get_rng_state()
    expected = torch.rand(3)
    torch.manual_seed(4)
    random_state.restore(saved)
    assert torch.equal(torch.rand(3), expected)
