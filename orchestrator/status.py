"""``alignfreeze status DIR``: where a run or a depth search stands, read from its files only.

It needs no Ray and no torch, and works while the run goes on (on any
node that mounts the results directory) or after it was interrupted:
every planned trial is done, errored, checkpointed (it will resume from
its latest phase) or not started; a search adds each study's progress
and best setting so far.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator import results as results_dir
from trainables.checkpoint_layout import checkpoint_phase, latest_checkpoint
from trainables.errors import DataError

STATES = ("done", "errored", "checkpointed", "not started")


def run_status(directory: str | Path) -> dict[str, Any]:
    directory = Path(directory)
    if not (directory / results_dir.MANIFEST).is_file():
        raise DataError(f"not a results directory of alignfreeze run or search (no {results_dir.MANIFEST})",
                        directory)
    try:
        manifest = results_dir.read_manifest(directory)
    except ValueError as error:
        raise DataError(f"unreadable manifest ({error})", directory / results_dir.MANIFEST) from None
    done = results_dir.completed_ids(directory)
    trials: list[dict[str, Any]] = []
    for planned in manifest.get("trials", []):
        trial_id = planned["trial_id"]
        row: dict[str, Any] = {"trial_id": trial_id}
        error_file = directory / results_dir.ERRORS / f"{trial_id}.json"
        if trial_id in done:
            row["state"] = "done"
        elif error_file.is_file():
            row["state"] = "errored"
            row["error"] = str(json.loads(error_file.read_text(encoding="utf-8")).get("error", "")).strip()
        else:
            checkpoint = latest_checkpoint(directory / results_dir.RAY_STORAGE, trial_id)
            row["state"] = "checkpointed" if checkpoint else "not started"
            if checkpoint:
                row["checkpoint"] = str(checkpoint)
                row["phase"] = checkpoint_phase(checkpoint)
        trials.append(row)
    studies = []
    for path in sorted((directory / "search").glob("*.json")):
        studies.append(json.loads(path.read_text(encoding="utf-8")))
    counts = {state: sum(row["state"] == state for row in trials) for state in STATES}
    return {"name": manifest.get("name"), "directory": str(directory), "kind": "search" if "search" in manifest
            else "grid", "planned": len(trials), "counts": counts, "trials": trials, "studies": studies}


def _phase_text(phase: dict[str, Any] | None) -> str:
    if not phase:
        return "a checkpoint"
    if phase.get("phase") == "finetune":
        return f"after fine-tuning epoch {phase['epoch'] + 1}/{phase.get('epochs', '?')} ({phase.get('saved', '')})"
    return f"after {phase.get('phase')} ({phase.get('saved', '')})"


def format_status(status: dict[str, Any]) -> str:
    counts = status["counts"]
    lines = [f"{status['name']} ({status['kind']}) in {status['directory']}: {status['planned']} trials planned"
             + (" so far" if status["kind"] == "search" else ""),
             "  " + ", ".join(f"{counts[state]} {state}" for state in STATES)]
    for row in status["trials"]:
        if row["state"] == "errored":
            message = row["error"].splitlines()[-1] if row["error"] else ""
            lines.append(f"  errored       {row['trial_id']}: {message[:160]}")
        elif row["state"] == "checkpointed":
            lines.append(f"  checkpointed  {row['trial_id']}: resumes {_phase_text(row.get('phase'))}")
    for study in status["studies"]:
        best = study.get("best")
        line = (f"  study {study['study']}: {len(study['evaluated'])} of {min(study['budget'], len(study['space']))}"
                f" settings evaluated")
        if best:
            line += f", best {best['strategy']} {100 * best['mean']:.1f} ({study['metric']} x100)"
        if study.get("baseline"):
            line += f", baseline {100 * study['baseline']['mean']:.1f}"
        if study.get("failed"):
            line += f", failed: {', '.join(study['failed'])}"
        lines.append(line)
    unfinished = counts["errored"] + counts["checkpointed"] + counts["not started"]
    if unfinished:
        lines.append("  run the same alignfreeze run / search command again to finish "
                     "(checkpointed trials resume, errored ones are retried)")
    return "\n".join(lines)
