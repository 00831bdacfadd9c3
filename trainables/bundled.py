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
    """The bundled file ``relative``; only inside ``bundled_data`` (no absolute path, no escape by '..')."""
    path = BUNDLED_ROOT / relative
    shown = relative if len(relative) <= 80 else relative[:77] + "..."     # never echo a huge value
    if not relative or Path(relative).is_absolute() or not path.resolve().is_relative_to(BUNDLED_ROOT):
        raise DataError("not a bundled file: a bundled: path names a file inside trainables/bundled_data, "
                        "relative to it", f"{BUNDLED_PREFIX}{shown}")
    if not path.exists():
        raise DataError("no such bundled file", f"{BUNDLED_PREFIX}{shown}")
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
        raise DataError("file or directory not found", location if len(location) <= 200 else location[:197] + "...")
    return str(path.resolve())
