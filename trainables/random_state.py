"""The random-number generators' states, saved in a checkpoint and restored on resume.

A resumed trial must draw the same numbers as an uninterrupted one:
dropout draws from torch's CPU generator on a CPU and from the CUDA
generator of each device on a GPU; Python's ``random`` and numpy are seeded
with the trial too. Every state is kept as plain bytes / Python objects,
not as tensors, so that loading a checkpoint with ``map_location`` on a
GPU cannot move them off the CPU (``torch.set_rng_state`` takes a CPU
ByteTensor only).
"""

from __future__ import annotations

import random
from typing import Any

import torch


def _to_bytes(state: torch.Tensor) -> bytes:
    return bytes(state.cpu().numpy().tobytes())


def _to_tensor(data: bytes | torch.Tensor) -> torch.Tensor:
    if isinstance(data, torch.Tensor):   # a checkpoint from before states were kept as bytes
        return data.detach().to("cpu", torch.uint8)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def capture() -> dict[str, Any]:
    """Every generator state the trial draws from, in plain Python form."""
    state: dict[str, Any] = {"torch": _to_bytes(torch.get_rng_state()), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = [_to_bytes(s) for s in torch.cuda.get_rng_state_all()]
    try:
        import numpy

        state["numpy"] = numpy.random.get_state()
    except ImportError:
        pass
    return state


def restore(state: dict[str, Any] | torch.Tensor) -> None:
    """Set the generators back to ``state`` (from ``capture``, or an older CPU-only tensor)."""
    if not isinstance(state, dict):
        torch.set_rng_state(_to_tensor(state))
        return
    torch.set_rng_state(_to_tensor(state["torch"]))
    random.setstate(state["python"])
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available():
        # a checkpoint from a machine with more GPUs restores the devices this one has
        devices = torch.cuda.device_count()
        torch.cuda.set_rng_state_all([_to_tensor(s) for s in cuda[:devices]])
    if "numpy" in state:
        import numpy

        numpy.random.set_state(state["numpy"])
