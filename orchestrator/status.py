"""``alignfreeze status DIR``: where a run or a depth search stands, read from its files only.

It needs no Ray and no torch, and works while the run goes on (on any
node that mounts the results directory, or with its storage URI) or after it was interrupted:
every planned trial is done, running (listed by a live driver in
``running.json``: ``orchestrator.running``), errored, checkpointed (it will
resume from its latest phase) or not started; a search adds each study's progress
and best setting so far. Results of trials the experiment file no longer
plans (kept in retired/, or left in results/ by a run of an older
version) are listed apart: they are kept, and count in no table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator import results as results_dir
from orchestrator.progress import position_words
from orchestrator.running import RUNNING, read_running
from trainables.checkpoint_layout import checkpoint_phase, latest_checkpoint
from trainables.errors import DataError
from trainables.storage import location
from trainables.trial_spec import IDENTITY_FORMAT

STATES = ("done", "running", "errored", "checkpointed", "not started")


def run_status(directory: str | Path) -> dict[str, Any]:
    directory = location(directory, "results directory")
    if not directory.exists():
        raise DataError("no such results directory", directory)
    if not directory.is_dir():
        raise DataError("is a file, not a results directory", directory)
    if not (directory / results_dir.MANIFEST).is_file():
        raise DataError(f"not a results directory of alignfreeze run or search (no {results_dir.MANIFEST})",
                        directory)
    manifest = results_dir.read_manifest(directory)   # a damaged one: one line naming it
    done, damaged = results_dir.scan_results(directory)   # reading only: a run moves damaged ones aside
    # what a live driver runs now; a record left by a driver that is gone is ignored
    run = read_running(directory)
    live = {trial_id: info for trial_id, info in run["trials"].items()
            if isinstance(info, dict)} if run and not run["stale"] else {}
    trials: list[dict[str, Any]] = []
    for planned in manifest.get("trials", []):
        trial_id = planned["trial_id"]
        row: dict[str, Any] = {"trial_id": trial_id}
        error_file = directory / results_dir.ERRORS / f"{trial_id}.json"
        if trial_id in done:
            row.update(state="done", **_done_facts(directory / results_dir.RESULTS / f"{trial_id}.json"))
        elif trial_id in live:
            row.update(state="running", running=live[trial_id])
            checkpoint = latest_checkpoint(directory / results_dir.RAY_STORAGE, trial_id)
            if checkpoint:
                row.update(checkpoint=str(checkpoint), phase=checkpoint_phase(checkpoint))
        elif error_file.is_file():
            row["state"] = "errored"
            row["error"] = _error_text(error_file)
            row["finished"] = _modified(error_file)
        else:
            checkpoint = latest_checkpoint(directory / results_dir.RAY_STORAGE, trial_id)
            row["state"] = "checkpointed" if checkpoint else "not started"
            if checkpoint:
                row["checkpoint"] = str(checkpoint)
                row["phase"] = checkpoint_phase(checkpoint)
        trials.append(row)
    studies = []
    damaged_files = [results_dir.damaged_line(path, problem) + ": the next run moves it aside and reruns its trial"
                     for path, problem in sorted(damaged.items())]
    for path in sorted((directory / "search").glob("*.json")):
        try:
            study = json.loads(path.read_text(encoding="utf-8"))
            problem = _study_problem(study)
            if problem:
                raise ValueError(problem)
        except (OSError, ValueError) as error:   # a search rewrites its summary after each trial
            text = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            damaged_files.append(f"{path} is damaged (not a study summary: {text[:160]})")
            continue
        studies.append(study)
    counts = {state: sum(row["state"] == state for row in trials) for state in STATES}
    planned_ids = {row["trial_id"] for row in trials}
    no_longer_planned = sorted(set(results_dir.retired_ids(directory)) | (done - planned_ids))
    return {"name": manifest.get("name"), "directory": str(directory), "kind": "search" if "search" in manifest
            else "grid", "planned": len(trials), "counts": counts, "trials": trials, "studies": studies,
            "no_longer_planned": no_longer_planned, "damaged": damaged_files,
            "run": {k: v for k, v in run.items() if k != "trials"} if run else None,
            "identity": manifest.get("identity", 1)}    # 1: trial IDs of a version before content-based ones


def _modified(path: Path) -> str | None:
    """When ``path`` was last written, ISO 8601 in UTC (a result is written once, at its trial's end)."""
    from datetime import datetime, timezone

    try:
        return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")
    except OSError:
        return None


def _done_facts(path: Path) -> dict[str, Any]:
    """What ``status --json`` tells of a finished trial: its scores (targets' average and English,
    each metric), its duration and when it ended; nothing a damaged file cannot give."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    timings = (result.get("provenance") or {}).get("timings") or {}
    return {"average": result.get("average"), "english": result.get("english"),
            "duration_s": timings.get("total_s"), "finished": _modified(path)}


def _study_problem(study: Any) -> str | None:
    """Why a search/*.json is not a study summary ``format_status`` can show (None: it is one)."""
    if not isinstance(study, dict):
        return "not a JSON object"
    kinds = {"study": (str, "text"), "metric": (str, "text"), "evaluated": (list, "list"),
             "space": (list, "list"), "budget": (int, "number")}
    for key, (kind, name) in kinds.items():
        if not isinstance(study.get(key), kind) or isinstance(study.get(key), bool):
            return f"no {key!r} ({name})"
    for key in ("best", "baseline"):
        part = study.get(key)
        if part is not None and not (isinstance(part, dict) and _is_number(part.get("mean"))):
            return f"{key!r} has no mean"
    if study.get("best") is not None and not isinstance(study["best"].get("strategy"), str):
        return "'best' has no strategy"
    if not isinstance(study.get("failed", []), list):
        return "'failed' is not a list"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _error_text(path: Path) -> str:
    """The message of an error file (a damaged one says so: the trial is retried all the same)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return str(record.get("error", "") if isinstance(record, dict) else "").strip()
    except (OSError, ValueError) as error:
        text = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        return f"(damaged error file {path}: {text[:160]})"


def _phase_text(phase: dict[str, Any] | None) -> str:
    if not phase:
        return "a checkpoint"
    if phase.get("phase") == "finetune":
        return f"after fine-tuning epoch {phase['epoch'] + 1}/{phase.get('epochs', '?')} ({phase.get('saved', '')})"
    if phase.get("position"):    # inside a phase: "realignment step 300/1000", "fine-tuning epoch 2, step 40/98"
        return f"after {phase['position']} ({phase.get('saved', '')})"
    return f"after {phase.get('phase')} ({phase.get('saved', '')})"


def _running_text(row: dict[str, Any]) -> str:
    info = row["running"]
    attempt = f"attempt {info.get('attempt', 1)}"
    if info.get("state") == "retrying":
        error = (info.get("failures") or [{}])[-1].get("error", "")
        text = f"retrying      {row['trial_id']}: {attempt} failed ({error[:120]}), Ray Tune restarts it"
    else:
        where = f" on {info.get('host')} (pid {info['pid']})" if info.get("pid") else ", no report yet"
        text = f"running       {row['trial_id']}: {attempt} since {info.get('since')}{where}"
        position = info.get("position")
        if isinstance(position, dict) and position.get("phase"):
            text += f", {position_words(position)} at {position.get('at')}"
    if row.get("checkpoint"):
        text += f"; latest checkpoint {_phase_text(row.get('phase'))}"
    return text


def format_status(status: dict[str, Any]) -> str:
    counts = status["counts"]
    run = status.get("run")
    live = bool(run) and not run.get("stale")
    lines = [f"{status['name']} ({status['kind']}) in {status['directory']}: {status['planned']} trials planned"
             + (" so far" if status["kind"] == "search" else ""),
             "  " + ", ".join(f"{counts[state]} {state}" for state in STATES if state != "running" or live)]
    if live:
        driver = run.get("driver", {})
        lines.append(f"  a run is going on: driver pid {driver.get('pid')} on {driver.get('host')} since "
                     f"{driver.get('started')}, last heartbeat {run.get('heartbeat')}")
    elif run:
        lines.append(f"  the run that wrote {RUNNING} is not going on any more ({run['stale']})")
    for row in status["trials"]:
        if row["state"] == "running":
            lines.append("  " + _running_text(row))
        elif row["state"] == "errored":
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
            line += f", failed: {', '.join(map(str, study['failed']))}"
        lines.append(line)
    for line in status.get("damaged") or []:
        lines.append(f"  WARNING: {line}")
    retired = status.get("no_longer_planned") or []
    if retired:
        lines.append(f"  {len(retired)} result(s) of trials no longer in the experiment file, kept "
                     f"(in {results_dir.RETIRED}/; counted again if the file plans them again):")
        lines += [f"    {trial_id}" for trial_id in retired]
    if status.get("identity", 1) < IDENTITY_FORMAT:
        lines.append("  written by a version with path-based trial IDs: running this experiment again "
                     f"plans new IDs, moves these results to {results_dir.RETIRED}/ and reruns every trial")
    unfinished = counts["errored"] + counts["checkpointed"] + counts["not started"]
    if unfinished and not live:
        lines.append("  run the same alignfreeze run / search command again to finish "
                     "(checkpointed trials resume, errored ones are retried)")
    return "\n".join(lines)
