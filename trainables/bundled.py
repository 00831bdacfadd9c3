"""The data shipped with the package (``trainables/bundled_data``).

A spec refers to a bundled file as ``bundled:<relative path>``; it is
resolved to an absolute path at validation time, before any trial starts
(Ray Tune changes a trial's working directory).
"""

from __future__ import annotations

from pathlib import Path

from trainables.errors import DataError

BUNDLED_ROOT = Path(__file__).resolve().parent / "bundled_data"
BUNDLED_PREFIX = "bundled:"


def bundled_path(relative: str) -> Path:
    path = BUNDLED_ROOT / relative
    if not path.exists():
        raise DataError("no such bundled file", f"{BUNDLED_PREFIX}{relative}")
    return path


def resolve_location(location: str, base: Path | None = None) -> str:
    """Absolute local path for ``bundled:`` and relative paths; ``hub`` sources unchanged.

    A local path that does not exist is a DataError naming it.
    """
    if location == "hub" or location.startswith("hub:"):
        return location
    if location.startswith(BUNDLED_PREFIX):
        return str(bundled_path(location[len(BUNDLED_PREFIX):]))
    path = Path(location).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    if not path.exists():
        raise DataError("file or directory not found", location)
    return str(path.resolve())
