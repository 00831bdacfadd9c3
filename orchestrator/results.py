"""The results directory of ``alignfreeze run``: what is written where.

    DIR/experiment.json          every planned trial (id + spec)
    DIR/results/<trial_id>.json  one per completed trial
    DIR/errors/<trial_id>.json   one per errored trial (removed when it later completes)
    DIR/ray/                     Ray Tune's own state: checkpoints, logs, restore
    DIR/optuna.db                a depth search's Optuna studies (SQLite, by default)
    DIR/search/<study>.json      a depth search's evaluated settings, best first

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


def write_manifest(directory: Path, name: str, trials: list[Any], source: str | None = None,
                   search: dict[str, Any] | None = None) -> None:
    """Record the planned trials; an existing manifest must describe the same experiment.

    A grid's manifest lists every trial up front. A depth search's lists the
    fixed trials, then grows with ``extend_manifest`` as the search asks for
    more; its ``search`` fingerprint (settings and candidate trials) must
    match on resumption.
    """
    path = directory / MANIFEST
    planned = [{"trial_id": t.trial_id, "spec": t.to_dict()} for t in trials]
    if path.exists():
        existing = read_manifest(directory)
        old_ids = {t["trial_id"] for t in existing.get("trials", [])}
        new_ids = {t["trial_id"] for t in planned}
        if existing.get("search") != search:
            raise SpecError(f"{directory} holds a different experiment (other search settings, or a grid "
                            f"where a search runs): use another --output")
        if (old_ids != new_ids) if search is None else not new_ids <= old_ids:
            raise SpecError(f"{directory} holds a different experiment ({len(old_ids)} trials, "
                            f"{len(old_ids ^ new_ids)} differ): use another --output")
        return
    content: dict[str, Any] = {"name": name, "created": datetime.now(timezone.utc).isoformat(),
                               "source": source, "trials": planned}
    if search is not None:
        content["search"] = search
    atomic_write_json(path, content)


def read_manifest(directory: Path) -> dict[str, Any]:
    return json.loads((directory / MANIFEST).read_text(encoding="utf-8"))


def extend_manifest(directory: Path, trials: list[Any]) -> None:
    """Add trials a search has just planned (those already listed are kept once)."""
    manifest = read_manifest(directory)
    known = {t["trial_id"] for t in manifest["trials"]}
    added = [{"trial_id": t.trial_id, "spec": t.to_dict()} for t in trials if t.trial_id not in known]
    if added:
        manifest["trials"] = manifest["trials"] + added
        atomic_write_json(directory / MANIFEST, manifest)


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
