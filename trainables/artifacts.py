"""Artefacts on disk: content keys, data fingerprints, atomic writes and the shared cache.

Everything the project writes (results, checkpoints, caches, tiny models)
goes to a temporary name beside its destination and is renamed into
place, so a crash never leaves a half-written file where a reader looks.
Cached artefacts are addressed by a hash of everything that determines
them, and built under a file lock so that concurrent trials build each
one once.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from filelock import FileLock

CACHE_ENV = "ALIGNFREEZE_CACHE"


def cache_root() -> Path:
    """Root of the shared cache (``$ALIGNFREEZE_CACHE``, else ``~/.cache/alignfreeze``)."""
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "alignfreeze")
    return Path(root).resolve()


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def content_key(value: Any, length: int = 16) -> str:
    """A stable hex key for any JSON-able value (dict order does not matter)."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()[:length]


def file_fingerprint(path: str | Path) -> str:
    """sha256 of a file's bytes (for keys that depend on a data file's content)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


_FINGERPRINTS: dict[tuple[str, int, int], str] = {}


def cached_file_fingerprint(path: str | Path) -> str:
    """``file_fingerprint``, remembered by (path, size, mtime): a multi-GB corpus is hashed once.

    The record lives under ``$ALIGNFREEZE_CACHE/fingerprints``, so the
    processes of a node (and of the nodes sharing that cache) reuse it.
    """
    path = Path(path).resolve()
    status = path.stat()
    stamp = (str(path), status.st_size, status.st_mtime_ns)
    if stamp in _FINGERPRINTS:
        return _FINGERPRINTS[stamp]
    record = cache_root() / "fingerprints" / content_key(list(stamp))
    try:
        value = record.read_text(encoding="utf-8").strip()
    except OSError:
        value = ""
    if not re.fullmatch(r"[0-9a-f]{16}", value):
        value = file_fingerprint(path)
        try:
            atomic_write_text(record, value + "\n")
        except OSError:   # a read-only cache: hash again next time
            pass
    _FINGERPRINTS[stamp] = value
    return value


def directory_fingerprint(path: str | Path) -> str:
    """The content of every file under ``path`` (hidden files, such as build markers, left out)."""
    root = Path(path)
    files = sorted(p for p in root.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    return content_key([[p.relative_to(root).as_posix(), cached_file_fingerprint(p)] for p in files])


def location_fingerprint(path: str | Path) -> str | None:
    """The content of a local file or directory (None if neither exists): where it sits does not count."""
    path = Path(path)
    if path.is_file():
        return cached_file_fingerprint(path)
    if path.is_dir():
        return directory_fingerprint(path)
    return None


def write_atomically(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(temporary_path)``, then rename it over ``path`` in one step.

    A reader never sees half a file; a failed write leaves no temporary
    file behind. The file gets the usual mode (mkstemp would make it 0600,
    unreadable to the other users of a shared cluster disk).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    def write(temporary: str) -> None:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    write_atomically(path, write)


def non_finite(value: Any, where: str = "") -> list[str]:
    """The dotted places of NaN and infinite numbers in ``value`` (JSON has neither)."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [f"{where or 'value'} ({value})"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in non_finite(v, f"{where}.{k}" if where else str(k))]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in non_finite(v, f"{where}[{i}]")]
    return []


def not_finite_text(places: list[str]) -> str:
    """``non_finite``'s places in words (the first three)."""
    verb = "is not a finite number" if len(places) == 1 else "are not finite numbers"
    more = f" (and {len(places) - 3} more)" if len(places) > 3 else ""
    return f"{', '.join(places[:3])}{more} {verb}"


def json_text(value: Any, path: str | Path | None = None) -> str:
    """Strict JSON (no NaN, no Infinity: other readers refuse them), indented, keys sorted.

    A non-finite number is a ValueError naming where it is, not a file a
    reader cannot parse.
    """
    places = non_finite(value)
    if places:
        target = f"{path}: " if path is not None else ""
        raise ValueError(f"{target}not written: {not_finite_text(places)}")
    return json.dumps(value, indent=2, sort_keys=True, default=str, allow_nan=False) + "\n"


def atomic_write_json(path: str | Path, value: Any) -> None:
    atomic_write_text(path, json_text(value, path))


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def cached_directory(kind: str, key: str, build: Callable[[Path], None],
                     root: Path | None = None) -> Path:
    """Return ``<cache>/<kind>/<key>``, building it once with ``build(tmp_dir)``.

    The build runs under a file lock and into a temporary directory that is
    renamed into place only when complete: a crashed build leaves nothing
    that a later reader would take for a finished artefact.
    """
    base = (root or cache_root()) / kind
    base.mkdir(parents=True, exist_ok=True)
    final = base / key
    if (final / ".complete").exists():
        return final
    with FileLock(str(base / f".{key}.lock")):
        if (final / ".complete").exists():
            return final
        with atomic_directory(final) as tmp:
            build(tmp)
            (tmp / ".complete").write_text("ok\n")
    return final
