"""How a trial uses its device: host-to-device copies (and, to come, backend switches).

``to_device`` moves a batch of tensors to the trial's device; on CUDA the
host tensors are pinned and copied without blocking, so that the copy of
the next batch overlaps the current step.
"""

from __future__ import annotations

from typing import Any

import torch


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """``batch`` (name -> tensor) on ``device``; a CPU device returns the same tensors."""
    if device.type != "cuda":
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    return {k: v.pin_memory().to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}
