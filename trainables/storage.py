"""Where a results directory lives: a local path, or a URI that pyarrow's file systems handle.

``location("runs/demo")`` is a ``pathlib.Path``, used exactly as before;
``location("s3://bucket/run")`` (or ``gs://``, ``hdfs://``, ``abfs://``...)
is a ``RemotePath``: the few ``Path`` operations the results directory,
``alignfreeze status``, ``analyze`` and the checkpoint listing use, over
``pyarrow.fs`` (the file systems Ray Tune stores its checkpoints with).
Endpoint and options go in the URI's query, as pyarrow reads them
(``s3://bucket/run?endpoint_override=http://127.0.0.1:9000&scheme=http``),
or in the usual environment (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``...).

The writes that must never be seen half done go through ``write_text`` /
``write_json``: a local file is written to a temporary name and renamed; an
object is one PUT, which object stores make visible whole or not at all.
``move`` on object storage is a copy then a delete: a reader may briefly
see both, never neither.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator, NamedTuple

from trainables.artifacts import atomic_write_json, atomic_write_text
from trainables.errors import DataError, SpecError


def is_uri(value: str | os.PathLike) -> bool:
    return "://" in str(value) and not str(value).startswith("file://")


def location(value: "str | os.PathLike | RemotePath", what: str = "--output") -> "Path | RemotePath":
    """A local ``Path`` or a ``RemotePath``; an unsupported URI is a one-line SpecError."""
    if isinstance(value, (Path, RemotePath)):
        return value
    text = str(value)
    if text.startswith("file://"):
        return Path(text[len("file://"):])
    if not is_uri(text):
        return Path(text)
    import pyarrow.fs

    try:
        filesystem, path = pyarrow.fs.FileSystem.from_uri(text)
    except (ValueError, OSError, ImportError) as error:   # ArrowInvalid is a ValueError
        raise SpecError(f"{what} {text}: not a storage URI this installation can use "
                        f"({str(error).splitlines()[0]}); use a local path or s3://, gs://, hdfs://, abfs://") from None
    scheme, rest = text.split("://", 1)
    query = rest.split("?", 1)[1] if "?" in rest else ""
    return RemotePath(filesystem, path.rstrip("/"), scheme, query)


class _Stat(NamedTuple):
    st_size: int
    st_mtime: float


class RemotePath:
    """A path on a pyarrow file system, with the ``pathlib.Path`` operations this project uses."""

    def __init__(self, filesystem: Any, path: str, scheme: str, query: str = ""):
        self.fs, self.path, self.scheme, self.query = filesystem, path, scheme, query

    # ---- naming
    def __str__(self) -> str:
        """The URI (with the query that configures the file system): what Ray Tune and a reader reopen."""
        return f"{self.scheme}://{self.path}" + (f"?{self.query}" if self.query else "")

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __lt__(self, other: "RemotePath") -> bool:   # sorted() listings, as with Path
        return self.path < other.path

    def __truediv__(self, part: str | os.PathLike) -> "RemotePath":
        return RemotePath(self.fs, f"{self.path}/{str(part).strip('/')}", self.scheme, self.query)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def stem(self) -> str:
        name = self.name
        return name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name

    @property
    def suffix(self) -> str:
        name = self.name
        return "." + name.rsplit(".", 1)[1] if "." in name.lstrip(".") else ""

    @property
    def parent(self) -> "RemotePath":
        return RemotePath(self.fs, self.path.rsplit("/", 1)[0], self.scheme, self.query)

    def with_name(self, name: str) -> "RemotePath":
        return self.parent / name

    def resolve(self) -> "RemotePath":
        return self

    def expanduser(self) -> "RemotePath":
        return self

    # ---- asking
    def _info(self) -> Any:
        return self.fs.get_file_info(self.path)

    def exists(self) -> bool:
        import pyarrow.fs

        return self._info().type != pyarrow.fs.FileType.NotFound

    def is_file(self) -> bool:
        import pyarrow.fs

        return self._info().type == pyarrow.fs.FileType.File

    def is_dir(self) -> bool:
        import pyarrow.fs

        return self._info().type == pyarrow.fs.FileType.Directory

    def stat(self) -> _Stat:
        import pyarrow.fs

        info = self._info()
        if info.type == pyarrow.fs.FileType.NotFound:
            raise FileNotFoundError(str(self))
        return _Stat(info.size or 0, (info.mtime_ns or 0) / 1e9)

    def iterdir(self) -> Iterator["RemotePath"]:
        import pyarrow.fs

        selector = pyarrow.fs.FileSelector(self.path, allow_not_found=True, recursive=False)
        for info in self.fs.get_file_info(selector):
            yield RemotePath(self.fs, info.path.rstrip("/"), self.scheme, self.query)

    def glob(self, pattern: str) -> Iterator["RemotePath"]:
        """``*``-style patterns, one directory level per ``/`` (no ``**``)."""
        level = [self]
        for part in pattern.split("/"):
            level = [child for parent in level if parent.is_dir() for child in parent.iterdir()
                     if fnmatch.fnmatchcase(child.name, part)]
        return iter(level)

    # ---- reading and writing
    def read_bytes(self) -> bytes:
        try:
            with self.fs.open_input_stream(self.path) as handle:
                return handle.read()
        except FileNotFoundError:
            raise
        except OSError as error:
            if not self.exists():
                raise FileNotFoundError(str(self)) from None
            raise error

    def read_text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self.read_bytes().decode(encoding, errors)

    def write_bytes(self, data: bytes) -> None:
        with self.fs.open_output_stream(self.path) as handle:   # one PUT: seen whole or not at all
            handle.write(data)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(text.encode(encoding))

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        try:
            self.fs.create_dir(self.path, recursive=True)
        except OSError as error:    # a missing bucket, no credentials, no such host: the user's to fix
            raise DataError(f"cannot create it: {str(error).splitlines()[0]}", self) from None

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.delete_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise


# ------------------------------------------- writes that are never half seen
def write_text(path: Path | RemotePath, text: str) -> None:
    if isinstance(path, RemotePath):
        path.write_text(text)
    else:
        atomic_write_text(path, text)


def write_json(path: Path | RemotePath, value: Any) -> None:
    if isinstance(path, RemotePath):   # the same bytes as atomic_write_json
        path.write_text(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")
    else:
        atomic_write_json(path, value)


def move(source: Path | RemotePath, destination: Path | RemotePath) -> None:
    """Local: one rename (a reader sees the file in one place or the other); remote: copy, then delete."""
    if isinstance(source, RemotePath):
        source.fs.move(source.path, destination.path)
    else:
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, destination)


def remove_tree(path: Path | RemotePath) -> None:
    """Remove a directory and everything under it; errors are left for ``path.exists()`` to tell."""
    if isinstance(path, RemotePath):
        try:
            path.fs.delete_dir(path.path)
        except OSError:
            pass
    else:
        shutil.rmtree(path, ignore_errors=True)
