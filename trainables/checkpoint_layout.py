"""Where a trial's checkpoints lie, what each holds, and when one counts; readable without torch or Ray.

Ray Tune stores a trial's checkpoints as ``STORAGE/<tune run>/<trial_id>/
checkpoint_NNNNNN/``; every rerun of an experiment is a new ``<tune run>``.
Each checkpoint directory holds the state (``trial_state.pt``), a small
``phase.json`` saying where the trial stands, for ``alignfreeze status``,
and ``complete.json``, written last, with the state file's size and
sha256. Ray copies a checkpoint into storage file by file and in chunks,
in no set order: a checkpoint counts only once the state file matches its
marker (the size for a listing, the sha256 before it is loaded), so a
copy cut short by a killed driver is never taken for a checkpoint.

A trial's last report may carry the fine-tuned weights alone
(``model.safetensors``): what ``keep: final`` keeps beside the result.
STORAGE is a local path or a ``trainables.storage.RemotePath`` (Tune's
storage on s3:// and the like): listing, reading and removing work on both.
The trial's local working copies live in private temporary directories
named after their host and process, removed by the next trial on that
host once the process is gone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

from trainables.processes import process_alive
from trainables.storage import RemotePath, location, move, remove_tree

CHECKPOINT_FILE = "trial_state.pt"
PHASE_FILE = "phase.json"
COMPLETE_FILE = "complete.json"
FINAL_WEIGHTS_FILE = "model.safetensors"
WORK_PREFIX = "alignfreeze-trial-"

logger = logging.getLogger(__name__)


# ------------------------------------------------------------ completeness
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def mark_complete(directory: Path, name: str = CHECKPOINT_FILE) -> None:
    """Write the marker of ``directory`` (after every other file of it)."""
    path = Path(directory) / name
    marker = {"file": name, "bytes": path.stat().st_size, "sha256": _sha256(path)}
    (Path(directory) / COMPLETE_FILE).write_text(json.dumps(marker), encoding="utf-8")


def _marker(directory: Path) -> dict[str, Any] | None:
    try:
        marker = json.loads((location(directory) / COMPLETE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and {"file", "bytes", "sha256"} <= set(marker) else None


def damage(directory: Path, thorough: bool = True) -> str | None:
    """Why ``directory`` is not a complete checkpoint (None when it is).

    ``thorough`` compares the sha256 (reads the whole state); otherwise
    only the size, as a listing does.
    """
    marker = _marker(directory)
    if marker is None:
        return f"no readable {COMPLETE_FILE} (the checkpoint was never completely written or copied)"
    path = location(directory) / marker["file"]
    try:
        size = path.stat().st_size
    except OSError:
        return f"{marker['file']} is missing"
    if size != marker["bytes"]:
        return f"{marker['file']} holds {size} bytes, {marker['bytes']} expected (truncated)"
    if thorough and _sha256(path) != marker["sha256"]:
        return f"{marker['file']} does not match its sha256"
    return None


# ----------------------------------------------------------------- listing
def _newest_write(directory: Path) -> float:
    times = [p.stat().st_mtime for p in directory.iterdir() if p.is_file()]
    return max(times, default=directory.stat().st_mtime)


def trial_checkpoints(storage: Path, trial_id: str) -> list[Path]:
    """Every checkpoint directory any run under ``storage`` left for ``trial_id``, complete
    or not, the most recently written first."""
    found = [p for p in location(storage).glob(f"*/{trial_id}/checkpoint_*") if p.is_dir()]
    found = [p for p in found if any(p.iterdir())]
    return sorted(found, key=_newest_write, reverse=True)


def latest_checkpoint(storage: Path, trial_id: str) -> Path | None:
    """The newest checkpoint of ``trial_id`` whose state has its recorded size (no hashing)."""
    for directory in trial_checkpoints(storage, trial_id):
        if (directory / CHECKPOINT_FILE).is_file() and damage(directory, thorough=False) is None:
            return directory
    return None


def checkpoint_phase(directory: Path) -> dict[str, Any] | None:
    """What ``phase.json`` of a checkpoint says (None for checkpoints without one)."""
    path = location(directory) / PHASE_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ------------------------------------------------------ a finished trial
def release_checkpoints(storage: Path, trial_id: str, keep: str, weights: Path) -> list[str]:
    """Once ``trial_id``'s result is written: keep what ``keep`` says, remove the rest.

    ``none``: every checkpoint of every run is removed; ``final``: the
    fine-tuned weights of the trial's last report are moved to ``weights``
    first; ``all``: nothing is removed. Returns warnings (a removal that
    fails costs disk, never the run).
    """
    if keep == "all":
        return []
    warnings = []
    checkpoints = trial_checkpoints(storage, trial_id)
    if keep == "final":
        final = next((c for c in checkpoints if damage(c, thorough=False) is None
                      and (c / FINAL_WEIGHTS_FILE).is_file()), None)
        if final is None:
            warnings.append(f"{trial_id}: no fine-tuned weights in its checkpoints; nothing kept")
        else:
            try:
                if isinstance(weights, RemotePath):    # object storage: copied, then deleted
                    move(final / FINAL_WEIGHTS_FILE, weights)
                else:
                    temporary = weights.with_name(f".{weights.name}.tmp")
                    weights.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(final / FINAL_WEIGHTS_FILE), temporary)
                    os.replace(temporary, weights)
            except OSError as error:
                warnings.append(f"{trial_id}: cannot keep its fine-tuned weights in {weights}: {error}")
                return warnings    # the checkpoints still hold them
    for directory in checkpoints:
        remove_tree(directory)
        if directory.exists():
            warnings.append(f"{trial_id}: cannot remove {directory}")
    return warnings


# --------------------------------------------------- local working copies
def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())


def working_directory() -> Path:
    """A private temporary directory for this process's checkpoint working copies.

    Stale ones of processes of this host that are gone (a killed trial)
    are removed first.
    """
    remove_stale_working_directories()
    return Path(tempfile.mkdtemp(prefix=f"{WORK_PREFIX}{_host()}-{os.getpid()}-"))


def remove_stale_working_directories(root: Path | None = None) -> list[Path]:
    """Remove the working directories of this host's processes that no longer run; return them."""
    root = Path(root or tempfile.gettempdir())
    pattern = re.compile(re.escape(f"{WORK_PREFIX}{_host()}-") + r"(\d+)-")
    removed = []
    for directory in root.glob(f"{WORK_PREFIX}*"):
        match = pattern.match(directory.name)
        if match and directory.is_dir() and not process_alive(int(match.group(1))):
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    if removed:
        logger.info("removed %d stale trial working director%s in %s", len(removed),
                    "y" if len(removed) == 1 else "ies", root)
    return removed
