"""How a trial uses its device: precision, matmul backends, compilation, host-to-device copies.

``configure`` sets the process-wide switches a trial's precision asks for
and returns what was actually used, for the result's provenance
(``provenance["acceleration"]``):

- ``precision: fp32`` (the default, the reference's): float32 weights and
  IEEE float32 matmuls;
- ``precision: tf32``: float32 weights, matmuls in TensorFloat-32 on a CUDA
  GPU that has it (Ampere or newer; elsewhere exactly fp32): about 10
  mantissa bits per product, so the numerics change;
- ``precision: bf16``: bfloat16 autocast, float32 weights and optimizer
  state (the realignment loss stays in float32, ``contrastive_loss``).

Always on where the device has them, since they do not change what is
computed: the fused Adam(W) kernels (``trainables.optimizers``), PyTorch's
scaled-dot-product attention (``trainables.models.load_encoder``) and, on
CUDA, pinned host memory with non-blocking copies (``to_device``).
``compile: true`` compiles the task model with ``torch.compile``
(``compile_model``): off by default, as compiling takes minutes and
fuses kernels, which changes the float rounding.
"""

from __future__ import annotations

from typing import Any

import torch

from trainables.errors import SpecError
from trainables.trial_spec import PRECISIONS


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of ``precision`` (None: no autocast)."""
    return torch.bfloat16 if precision == "bf16" else None


def tf32_capable(device: torch.device) -> bool:
    """Whether ``device``'s matmuls can run in TF32: a CUDA GPU of compute capability 8.0 (Ampere) or newer."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8


def configure(device: torch.device, precision: str, compile: bool = False,
              encoder: torch.nn.Module | None = None) -> dict[str, Any]:
    """Set the process-wide switches of ``precision`` for ``device``; return what is used.

    The matmul precision is set every time, also back to IEEE float32: a
    worker process that ran a ``tf32`` trial may run an ``fp32`` one next.
    ``set_float32_matmul_precision`` sets the legacy and the new TF32 flags
    together (setting only the new ``fp32_precision`` one makes
    ``torch.compile``'s reading of the legacy one fail).
    """
    if precision not in PRECISIONS:
        raise SpecError(f"unknown precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    # emulated bfloat16 (a GPU older than Ampere) runs slower than float32: refused
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise SpecError(f"precision bf16: the GPU {torch.cuda.get_device_name(device)} has no native "
                        f"bfloat16 support; use fp32")
    tf32 = precision == "tf32" and tf32_capable(device)
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    acceleration: dict[str, Any] = {
        "precision": precision,
        "autocast": "bf16" if autocast_dtype(precision) is not None else None,
        "tf32_matmul": tf32,
        "fused_optimizer": fused_optimizer(device),
        "pinned_memory": device.type == "cuda",    # to_device pins and copies without blocking
        "compile": bool(compile),
    }
    if encoder is not None:
        from trainables.models import attention_implementation

        acceleration["attention"] = attention_implementation(encoder)
    return acceleration


def fused_optimizer(device: torch.device) -> bool:
    """Whether ``trainables.optimizers.adam`` gets the fused kernels for float32 weights on ``device``.

    Asked of ``adam`` itself, on one float32 parameter of the device: the
    trial's weights are float32 on that device (bf16 autocast included), so
    its optimizers take the same branch.
    """
    from trainables.optimizers import adam

    probe = torch.zeros(1, device=device, requires_grad=True)
    return bool(adam([probe], 1e-3, decoupled=True).defaults.get("fused"))


def compile_model(model: torch.nn.Module, enabled: bool) -> torch.nn.Module:
    """``model`` compiled in place with ``torch.compile`` when ``enabled``; ``model`` either way.

    In place (``Module.compile``), so that its ``state_dict`` keeps its
    keys (checkpoints and final weights load into an uncompiled model).
    Batches vary in length: the first recompilation marks the length
    dynamic, so later lengths reuse one graph.
    """
    if enabled:
        model.compile()
    return model


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """``batch`` (name -> tensor) on ``device``; a CPU device returns the same tensors.

    On CUDA the host tensors are pinned and copied without blocking, so that
    the copy of the next batch overlaps the current step.
    """
    if device.type != "cuda":
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    return {k: v.pin_memory().to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}
