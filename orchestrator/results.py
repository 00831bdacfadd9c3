"""The results directory of ``alignfreeze run``: what is written where.

    DIR/experiment.json          every planned trial (id + spec)
    DIR/results/<trial_id>.json  one per completed trial
    DIR/errors/<trial_id>.json   one per errored trial (removed when it later completes)
    DIR/retired/<trial_id>.json  results of trials the experiment file no longer plans
    DIR/retired/errors/          (kept, never deleted; a result moves back when its trial returns)
    DIR/ray/                     Ray Tune's own state: checkpoints, logs, restore
    DIR/optuna.db                a depth search's Optuna studies (SQLite, by default)
    DIR/search/<study>.json      a depth search's evaluated settings, best first

Every file is written to a temporary name and renamed (on object storage:
one PUT), so a reader (or a resumed run) never sees half a result. A result
is strict JSON (a NaN or infinite metric is recorded as an error, not as
done); a damaged one (not JSON, not an object, a key missing) does not count
as done: ``completed_ids`` moves it to ``results/<trial_id>.json.damaged``,
with a warning, and its trial runs again. DIR is a
local path or a storage URI (``trainables.storage``). ``analysis.results`` reads this
layout back.
"""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from trainables.artifacts import non_finite, not_finite_text
from trainables.errors import DataError, SpecError, short
from trainables.storage import RemotePath, move, write_json
from trainables.trial_spec import IDENTITY_FORMAT

MANIFEST = "experiment.json"
RESULTS = "results"
ERRORS = "errors"
RETIRED = "retired"
RAY_STORAGE = "ray"


class Reconciled(NamedTuple):
    """What writing a grid's manifest did to the results of trials it no longer plans."""
    retired_now: list[str]        # results just moved to retired/
    restored: list[str]           # results moved back: their trials are planned again
    no_longer_planned: list[str]  # every result kept in retired/


def write_manifest(directory: Path, name: str, trials: list[Any], source: str | None = None,
                   search: dict[str, Any] | None = None) -> Reconciled:
    """Record the planned trials.

    A grid's manifest lists the trials of the experiment file as it is now.
    A file that grew (seeds, languages, strategies, models) keeps every
    result whose trial is still planned, so only the new trials run; the
    results of trials it no longer plans (a trial removed, or a data file
    edited, which changes its ID) move to ``retired/``: kept, out of the
    tables, listed by ``alignfreeze status``, and moved back if the trial
    is planned again. A depth search's manifest lists the fixed trials, then
    grows with ``extend_manifest`` as the search asks for more; its
    ``search`` fingerprint (settings and candidate trials: seeds and data
    included) must match on resumption.
    """
    path = directory / MANIFEST
    planned = [{"trial_id": t.trial_id, "spec": t.to_dict()} for t in trials]
    now = datetime.now(timezone.utc).isoformat()
    existing = read_manifest(directory) if path.exists() else None
    if existing is not None and (search is not None or "search" in existing):
        old_ids = {t["trial_id"] for t in existing.get("trials", [])}
        new_ids = {t["trial_id"] for t in planned}
        if existing.get("search") != search:
            raise SpecError(f"{directory} holds a different experiment (other search settings, or a grid "
                            f"where a search runs): use another --output")
        if not new_ids <= old_ids:
            raise SpecError(f"{directory} holds a different experiment ({len(old_ids)} trials, "
                            f"{len(old_ids ^ new_ids)} differ): use another --output")
        return Reconciled([], [], retired_ids(directory))
    content: dict[str, Any] = {"name": name, "created": existing.get("created", now) if existing else now,
                               "identity": IDENTITY_FORMAT, "source": source, "trials": planned}
    if existing is not None:
        content["updated"] = now
    if search is not None:
        content["search"] = search
    write_json(path, content)
    return _reconcile(directory, {t["trial_id"] for t in planned})


def _reconcile(directory: Path, planned: set[str]) -> Reconciled:
    """Move results (and errors) of unplanned trials to retired/, and planned ones back."""
    retired_now = [p.stem for p in _json_files(directory / RESULTS) if p.stem not in planned]
    for trial_id in retired_now:
        _move(directory / RESULTS / f"{trial_id}.json", directory / RETIRED / f"{trial_id}.json")
    for error in _json_files(directory / ERRORS):
        if error.stem not in planned:   # an old failure, not one of this plan's
            _move(error, directory / RETIRED / ERRORS / error.name)
    restored = [p.stem for p in _json_files(directory / RETIRED)
                if p.stem in planned and not (directory / RESULTS / p.name).exists()]
    for trial_id in restored:
        _move(directory / RETIRED / f"{trial_id}.json", directory / RESULTS / f"{trial_id}.json")
    return Reconciled(sorted(retired_now), sorted(restored), retired_ids(directory))


def _json_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def _move(source: Path, destination: Path) -> None:
    move(source, destination)    # local: one rename, a reader sees the file in one place or the other


def retired_ids(directory: Path) -> list[str]:
    """Trials whose results are kept in retired/: the experiment file no longer plans them."""
    return [p.stem for p in _json_files(directory / RETIRED)]


def read_manifest(directory: Path) -> dict[str, Any]:
    """``DIR/experiment.json``, checked: an object whose ``trials`` are objects with a plain ``trial_id``.

    Anything else (not JSON, truncated, a list, a trial without an id or
    with an id that is a path) is a one-line DataError naming the file:
    no reader ever walks a damaged manifest.
    """
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except OSError as error:
        raise DataError(f"cannot read the manifest ({error.strerror or type(error).__name__})", path) from None
    except json.JSONDecodeError as error:
        raise DataError(f"damaged manifest: not valid JSON ({error.msg})", path, error.lineno) from None
    except (UnicodeDecodeError, ValueError) as error:
        raise DataError(f"damaged manifest: not valid JSON ({str(error)[:80]})", path) from None
    problem = _manifest_problem(manifest)
    if problem:
        raise DataError(f"damaged manifest: {problem}; move it away or use another results directory", path)
    return manifest


def _manifest_problem(manifest: Any) -> str | None:
    """What is wrong with the shape of a manifest (None: nothing)."""
    if not isinstance(manifest, dict):
        return f"a JSON {type(manifest).__name__}, not an object"
    trials = manifest.get("trials", [])
    if not isinstance(trials, list):
        return "'trials' is not a list"
    for number, trial in enumerate(trials, 1):
        if not isinstance(trial, dict):
            return f"trial {number} is not an object"
        trial_id = trial.get("trial_id")
        if not isinstance(trial_id, str) or not trial_id:
            return f"trial {number} has no trial_id"
        if not _PLAIN_ID.fullmatch(trial_id):
            return f"trial {number} has trial_id {short(trial_id)}, not a plain file name"
        if not isinstance(trial.get("spec", {}), dict):
            return f"trial {number} ({trial_id}): 'spec' is not an object"
    if "search" in manifest and not isinstance(manifest["search"], dict):
        return "'search' is not an object"
    return None


# what a trial ID is made of (``TrialSpec.trial_id``): it names files under results/ and errors/
_PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=-]{0,254}")


# ---------------------------------------------------------- where output may go
def check_output_location(output: "Path | RemotePath", search: bool | None = None) -> None:
    """Refuse a results directory that ``run`` / ``search`` could not use, writing nothing.

    Called before Ray starts (and by ``--dry-run``): ``output`` must be a
    directory, or creatable under a directory, that this process may write;
    its subfolders must be folders; an ``experiment.json`` already there
    must be a readable manifest (``read_manifest``), of a depth search when
    ``search`` is True, of a grid when False (None: either). One-line
    SpecError or DataError naming the culprit. A storage URI is left to its
    file system.
    """
    if isinstance(output, RemotePath):
        return
    output = Path(output)
    try:
        if output.exists() and not output.is_dir():
            raise SpecError(f"--output {output}: is a file, not a results directory")
        _check_creatable(output, "--output")
        if not output.is_dir():
            return
        for folder in (RESULTS, ERRORS, RETIRED, RAY_STORAGE):
            if (output / folder).exists() and not (output / folder).is_dir():
                raise DataError(f"is a file where the results directory keeps its {folder}/ folder", output / folder)
        if (output / MANIFEST).exists() or (output / MANIFEST).is_symlink():
            holds_search = "search" in read_manifest(output)
            if search is not None and holds_search != search:
                held, command = ("a depth search", "search") if holds_search else ("a grid", "run")
                raise SpecError(f"--output {output}: holds {held} (alignfreeze {command}): use another --output")
    except OSError as error:     # a loop of links, a name too long, a path the system refuses
        raise SpecError(f"--output {output}: cannot be used ({error.strerror or type(error).__name__})") from None


def check_output_file(path: str | Path, option: str = "--out") -> Path:
    """Refuse a file a command could not write (a directory, under a file, not writable), writing nothing."""
    path = Path(path)
    try:
        if path.is_dir():
            raise SpecError(f"{option} {path}: is a directory, not a file")
        _check_creatable(path, option)
    except OSError as error:
        raise SpecError(f"{option} {path}: cannot be written ({error.strerror or type(error).__name__})") from None
    return path


def _check_creatable(path: Path, option: str) -> None:
    """``path`` exists writable, or its nearest existing ancestor is a writable directory.

    ``os.access`` answers for this process's user: root may write almost
    anywhere, so for root only a write finds a read-only file system.
    """
    if path.is_symlink() and not path.exists():
        raise SpecError(f"{option} {path}: is a link to nothing")
    target = path
    if not path.exists():
        target = path.parent
        while not target.exists() and target != target.parent:
            target = target.parent
        if not target.is_dir():
            raise SpecError(f"{option} {path}: {target} is a file, not a directory")
    if not os.access(target, os.W_OK) or (target.is_dir() and not os.access(target, os.X_OK)):
        raise SpecError(f"{option} {path}: {target} is not writable")


def extend_manifest(directory: Path, trials: list[Any]) -> None:
    """Add trials a search has just planned (those already listed are kept once)."""
    manifest = read_manifest(directory)
    known = {t["trial_id"] for t in manifest["trials"]}
    added = [{"trial_id": t.trial_id, "spec": t.to_dict()} for t in trials if t.trial_id not in known]
    if added:
        manifest["trials"] = manifest["trials"] + added
        write_json(directory / MANIFEST, manifest)


def write_result(directory: Path, result: dict[str, Any]) -> Path:
    """Write a trial's result; one holding a NaN or infinite number is recorded as an error instead.

    JSON has no NaN (a reader refuses the file, or shows an empty cell):
    such a result is wrong, not done. Returns the file written.
    """
    places = non_finite(result)
    if places:
        message = f"result not recorded: {not_finite_text(places)} (nothing to score, or a diverged trial)"
        print(f"[alignfreeze] WARNING: {result['trial_id']}: {message}", file=sys.stderr, flush=True)
        return write_error(directory, result["trial_id"], result.get("spec", {}), message)
    path = directory / RESULTS / f"{result['trial_id']}.json"
    write_json(path, result)
    stale = directory / ERRORS / f"{result['trial_id']}.json"
    if stale.exists():
        stale.unlink()
    return path


def write_error(directory: Path, trial_id: str, spec: dict[str, Any], error: str) -> Path:
    path = directory / ERRORS / f"{trial_id}.json"
    write_json(path, {"trial_id": trial_id, "status": "error", "spec": spec, "error": error})
    return path


REQUIRED_KEYS = ("trial_id", "metrics", "average")
DAMAGED = ".damaged"


def result_problem(path: Path) -> str | None:
    """Why a results/<trial_id>.json is not a complete result (None: it is one)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as error:   # JSONDecodeError is a ValueError
        return f"not valid JSON ({error})"
    if not isinstance(data, dict):
        return "not a JSON object"
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        return f"no {', '.join(repr(k) for k in missing)}"
    if data["trial_id"] != path.stem:
        return f"holds trial {str(data['trial_id'])[:40]!r}, not {path.stem!r}"
    if not isinstance(data["metrics"], dict) or not isinstance(data["average"], dict):
        return "'metrics' or 'average' is not an object"
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def scan_results(directory: Path) -> tuple[set[str], dict[Path, str]]:
    """(trials with a complete result, damaged result files -> why), reading only."""
    done: set[str] = set()
    damaged: dict[Path, str] = {}
    for path in _json_files(directory / RESULTS):
        try:
            problem = result_problem(path)
        except OSError as error:   # unreadable: permissions, a directory named *.json
            problem = f"cannot read ({error.strerror or error})"
        if problem is None:
            done.add(path.stem)
        else:
            damaged[path] = problem
    return done, damaged


def damaged_line(path: Path, problem: str) -> str:
    return f"{path} is damaged ({problem})"


def completed_ids(directory: Path) -> set[str]:
    """Trials with a complete result; a damaged result is moved aside, with a warning: its trial runs again."""
    done, damaged = scan_results(directory)
    for path, problem in damaged.items():
        aside = _free_name(path.parent / f"{path.name}{DAMAGED}")
        try:
            _move(path, aside)
        except OSError as error:
            raise DataError(f"damaged result ({problem}) cannot be moved aside "
                            f"({error.strerror or error})", path) from None
        print(f"[alignfreeze] WARNING: {damaged_line(path, problem)}: moved to {aside.name}, "
              f"the trial runs again", file=sys.stderr, flush=True)
    return done


def _free_name(path: Path) -> Path:
    """``path``, or ``path.1``, ``path.2``... : an earlier damaged file is never overwritten."""
    candidate, number = path, 0
    while candidate.exists():
        number += 1
        candidate = path.parent / f"{path.name}.{number}"
    return candidate


def read_results(directory: Path) -> list[dict[str, Any]]:
    """Every complete result (a damaged file is left out: ``scan_results`` names it)."""
    done, _ = scan_results(directory)
    return [json.loads((directory / RESULTS / f"{trial_id}.json").read_text(encoding="utf-8"))
            for trial_id in sorted(done)]
