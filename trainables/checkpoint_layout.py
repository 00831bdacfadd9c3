"""Where a trial's checkpoints lie and what each holds, readable without torch or Ray.

Ray Tune stores a trial's checkpoints as ``STORAGE/<tune run>/<trial_id>/
checkpoint_NNNNNN/``; every rerun of an experiment is a new ``<tune run>``.
Each checkpoint directory holds the state (``trial_state.pt``) and a small
``phase.json`` saying which phase it closes, for ``alignfreeze status``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CHECKPOINT_FILE = "trial_state.pt"
PHASE_FILE = "phase.json"


def latest_checkpoint(storage: Path, trial_id: str) -> Path | None:
    """The newest checkpoint any run under ``storage`` left for ``trial_id``."""
    found = [p.parent for p in Path(storage).glob(f"*/{trial_id}/checkpoint_*/{CHECKPOINT_FILE}")]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def checkpoint_phase(directory: Path) -> dict[str, Any] | None:
    """What ``phase.json`` of a checkpoint says (None for checkpoints without one)."""
    path = Path(directory) / PHASE_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
