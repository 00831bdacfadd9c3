"""The results directory of ``alignfreeze run``: what is written where.

    DIR/experiment.json          every planned trial (id + spec)
    DIR/results/<trial_id>.json  one per completed trial
    DIR/errors/<trial_id>.json   one per errored trial (removed when it later completes)
    DIR/ray/                     Ray Tune's own state: checkpoints, logs, restore

Every file is written to a temporary name and renamed, so a reader (or a
resumed run) never sees half a result. ``analysis.results`` reads this
layout back.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from trainables.artifacts import atomic_write_json
from trainables.errors import SpecError

MANIFEST = "experiment.json"
RESULTS = "results"
ERRORS = "errors"
RAY_STORAGE = "ray"


def write_manifest(directory: Path, name: str, trials: list[Any], source: str | None = None) -> None:
    """Record the planned trials; an existing manifest must describe the same grid."""
    path = directory / MANIFEST
    planned = [{"trial_id": t.trial_id, "spec": t.to_dict()} for t in trials]
    if path.exists():
        existing = json.loads(path.read_text(encoding="utf-8"))
        old_ids = {t["trial_id"] for t in existing.get("trials", [])}
        new_ids = {t["trial_id"] for t in planned}
        if old_ids != new_ids:
            raise SpecError(f"{directory} holds a different experiment ({len(old_ids)} trials, "
                            f"{len(old_ids ^ new_ids)} differ): use another --output")
        return
    atomic_write_json(path, {"name": name, "created": datetime.now(timezone.utc).isoformat(),
                             "source": source, "trials": planned})


def write_result(directory: Path, result: dict[str, Any]) -> Path:
    path = directory / RESULTS / f"{result['trial_id']}.json"
    atomic_write_json(path, result)
    stale = directory / ERRORS / f"{result['trial_id']}.json"
    if stale.exists():
        stale.unlink()
    return path


def write_error(directory: Path, trial_id: str, spec: dict[str, Any], error: str) -> Path:
    path = directory / ERRORS / f"{trial_id}.json"
    atomic_write_json(path, {"trial_id": trial_id, "status": "error", "spec": spec, "error": error})
    return path


def completed_ids(directory: Path) -> set[str]:
    folder = directory / RESULTS
    return {p.stem for p in folder.glob("*.json")} if folder.is_dir() else set()


def read_results(directory: Path) -> list[dict[str, Any]]:
    folder = directory / RESULTS
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))] \
        if folder.is_dir() else []
