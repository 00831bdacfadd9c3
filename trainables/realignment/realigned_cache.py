"""The shared cache of realigned encoders: one realignment, many trials.

A "before" realignment does not depend on the task it is followed by, so
the trials of a grid that realign the same model the same way (same
frozen set, aligner, corpus, steps, settings, seed) can share one
computation. Its **key** (``realignment_key``) is a content hash of
everything that determines the realigned weights (``realignment_identity``)
and of nothing else: not the task, the target languages or the
fine-tuning settings. With ``realignment.steps: auto`` the steps are the
task's fine-tuning steps, so each task has its own key; with a fixed
budget the tasks share one.

An **entry** lives under the cache location (``cache:`` in the experiment
file: a path or an fsspec URI such as ``s3://``, ``gs://``; by default
``$ALIGNFREEZE_REALIGNED_CACHE``, else ``$ALIGNFREEZE_CACHE/realigned``)::

    <key>/<attempt>/started               when the write began (for prune)
    <key>/<attempt>/encoder.safetensors   the encoder's state dict (no pooler)
    <key>/<attempt>/meta.json             identity, versions, stats, sha256
    <key>/complete                        written last: names the attempt
    <key>/last_used                       refreshed by every hit

An entry is complete once ``complete`` exists (a rename on a local file
system, a single PUT on object storage), so a reader never sees half an
entry; a complete entry whose weights do not match their sha256 or the
encoder is refused with a warning and recomputed. On a local or shared
POSIX file system a file lock per key makes concurrent trials compute a
realignment once: one computes, the others wait and then load it. Object
storage has no locks: two trials may both compute, each writes its own
attempt, the last ``complete`` wins; the entries are the same realignment,
so either is right, and the loser's attempt is left for ``prune``.

The pooler is not stored: the realignment loss reads hidden states and
never trains it, and whether an encoder has one depends on the task
(mBERT's NLI head reads it), so a trial keeps its own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from trainables.artifacts import cache_root, cached_file_fingerprint, content_key, directory_fingerprint
from trainables.errors import SpecError

if TYPE_CHECKING:
    from torch import nn

    from trainables.trial_spec import TrialSpec

logger = logging.getLogger(__name__)

# Bump when what is stored, or how a trial realigns around ``realign`` (its
# seeding, the stream it builds), changes: old entries are then never hit.
REALIGNED_FORMAT = 1
LOCATION_ENV = "ALIGNFREEZE_REALIGNED_CACHE"
WEIGHTS_FILE = "encoder.safetensors"
META_FILE = "meta.json"
STARTED_FILE = "started"
COMPLETE_FILE = "complete"
LAST_USED_FILE = "last_used"
NOT_STORED = ("pooler.",)      # never trained by realignment; each trial keeps its own
ORPHAN_GRACE_S = 3600.0        # an unfinished attempt younger than this may still be being written

# realignment keys that are not settings of the "before" realignment's numerics
_STRUCTURE_KEYS = {"languages", "parallel", "dictionaries", "alignments", "aligner_settings"}
_NOT_BEFORE_KEYS = {"steps", "during_weight", "xlmr_learning_rate"}


def default_location() -> str:
    location = os.environ.get(LOCATION_ENV)
    if not location:
        return str(cache_root() / "realigned")
    return location if "://" in location else str(Path(location).expanduser().resolve())


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------- the key
def realignment_identity(spec: "TrialSpec", steps: int) -> dict[str, Any]:
    """Everything that determines the weights of ``spec``'s "before" realignment of ``steps`` steps.

    No network: a Hub model is its id and the revision of its local
    snapshot (None before it is downloaded); local files are their content
    fingerprints.
    """
    from trainables.freezing import frozen_positions, parse_freeze_spec
    from trainables.models import model_num_blocks

    num_blocks = model_num_blocks(spec.model)
    embeddings, blocks = frozen_positions(parse_freeze_spec(spec.freeze_spec, spec.freeze_embeddings), num_blocks)
    realignment = spec.realignment
    languages = list(realignment.get("languages") or ())
    return {
        "format": REALIGNED_FORMAT,
        "code": realignment_code_fingerprint(),
        "model": model_identity(spec.model),
        "frozen": {"num_blocks": num_blocks, "blocks": list(blocks), "embeddings": bool(embeddings)},
        "aligner": spec.aligner,
        "aligner_settings": realignment.get("aligner_settings") or {},
        "languages": languages,    # their order is the interleaving's
        "corpus": {language: _corpus_identity(spec, language) for language in languages},
        "settings": _settings_identity(spec),
        "steps": int(steps),
        "seed": spec.seed,
        "precision": spec.precision,
        "versions": numeric_versions(),
    }


def realignment_key(spec: "TrialSpec", steps: int) -> str:
    """The cache key of ``spec``'s "before" realignment of ``steps`` steps."""
    return content_key(realignment_identity(spec, steps))


def numeric_versions() -> dict[str, str]:
    """Versions of the libraries whose changes change a realignment's numbers."""
    from importlib import metadata

    return {name: metadata.version(name) for name in ("torch", "transformers", "tokenizers")}


@lru_cache(maxsize=1)
def realignment_code_fingerprint() -> str:
    """A hash of the code a realignment runs: a code change never reuses an older realignment."""
    trainables = Path(__file__).resolve().parent.parent
    files = sorted(p for p in (trainables / "realignment").glob("*.py") if p.name != Path(__file__).name)
    # and what it calls outside realignment/: freezing, the optimizer, batch grouping, precision
    files += [trainables / name for name in ("freezing.py", "optimizers.py", "length_grouping.py",
                                             "device_settings.py")]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _settings_identity(spec: "TrialSpec") -> dict[str, Any]:
    """The realignment settings with their defaults, the learning rate as the model gets it."""
    from trainables.realignment.pretokenization import DEFAULT_PRETOKENIZER
    from trainables.trial import realign_settings

    settings = dataclasses.asdict(realign_settings(spec, xlmr=model_type(spec.model) == "xlm-roberta"))
    # keys a later version adds (stream settings...) count too, unless known to be irrelevant
    extra = {k: v for k, v in spec.realignment.items() if k not in settings and k not in _STRUCTURE_KEYS}
    identity = {**settings, "pretokenizer": DEFAULT_PRETOKENIZER, **extra}
    return {k: v for k, v in identity.items() if k not in _NOT_BEFORE_KEYS}


def model_type(name: str) -> str | None:
    """``config.model_type`` from local files only (the Hub's cache for a Hub id); None if absent."""
    from trainables.models import resolve_model_location

    location = Path(resolve_model_location(name))
    config = location / "config.json" if location.is_dir() else _hub_file(name, "config.json")
    if config is not None and config.is_file():
        return json.loads(config.read_text(encoding="utf-8")).get("model_type")
    return "xlm-roberta" if "xlm-roberta" in name.lower() else None   # an offline plan of the paper's models


def _hub_file(repo_id: str, filename: str) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, filename)
    except Exception:   # a name that is not a valid repo id
        return None
    return Path(found) if isinstance(found, str) else None


def model_identity(name: str) -> dict[str, Any]:
    """A local model (a built-in tiny model included) is its files' content; a Hub model its id and revision."""
    from trainables.models import resolve_model_location

    location = Path(resolve_model_location(name))
    if location.is_dir():
        return {"weights": directory_fingerprint(location)}
    config = _hub_file(name, "config.json")
    parts = config.parts if config is not None else ()
    revision = parts[parts.index("snapshots") + 1] if "snapshots" in parts else None
    return {"hub": name, "revision": revision}


def _corpus_identity(spec: "TrialSpec", language: str) -> dict[str, Any]:
    realignment = spec.realignment
    identity = {"parallel": _source_identity(realignment["parallel"][language], language)}
    if spec.aligner == "dico":
        identity["dictionary"] = _dictionary_identity(language, (realignment.get("dictionaries") or {}).get(language))
    if spec.aligner == "pharaoh":
        identity["alignments"] = _source_identity((realignment.get("alignments") or {}).get(language), language)
    return identity


def _source_identity(source: Any, language: str) -> Any:
    """A parallel source as content: local files by fingerprint, Hub datasets by id, config and split."""
    if isinstance(source, dict):
        return {name: _source_identity(value, language) for name, value in sorted(source.items())}
    if isinstance(source, str) and (source == "hub" or source.startswith("hub:")):
        from trainables.realignment.parallel_data import opus100_dataset

        dataset_id, config, split = opus100_dataset(source, language)
        return {"hub": dataset_id, "config": config, "split": split}
    if isinstance(source, str):
        path = Path(source)
        if path.is_file():
            return {"file": cached_file_fingerprint(path)}
        if path.is_dir():
            return {"directory": directory_fingerprint(path)}
    return {"value": source}


def _dictionary_identity(language: str, source: Any) -> Any:
    from trainables.realignment.muse import MUSE_SOURCE, muse_url

    if source == MUSE_SOURCE:   # MUSE's published files do not change: the address names the content
        return {"muse": muse_url(language)}
    return _source_identity(source, language)


# -------------------------------------------------------------------------- the store
class DamagedEntry(Exception):
    """A complete entry that cannot be used (unreadable, wrong checksum, other tensors)."""


@dataclasses.dataclass
class CacheEntry:
    """One entry as ``alignfreeze cache list`` shows it."""
    key: str
    meta: dict[str, Any]
    bytes: int
    created: str | None
    last_used: str | None


class RealignedCache:
    """Realigned encoders under a path or an fsspec URI; see the module's docstring."""

    def __init__(self, location: str | None = None):
        import fsspec
        from fsspec.implementations.local import LocalFileSystem

        self.location = str(location) if location else default_location()
        try:
            self.fs, root = fsspec.core.url_to_fs(self.location)
        except (ImportError, ValueError) as error:   # unknown protocol, its package not installed
            raise SpecError(f"cache location {self.location}: {str(error).splitlines()[0]}") from None
        self.root = root.rstrip("/") or "/"
        self.local = isinstance(self.fs, LocalFileSystem)

    def _path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    # ---- reading
    def _read_json(self, path: str) -> dict[str, Any] | None:
        try:
            with self.fs.open(path, "rb") as handle:
                return json.loads(handle.read().decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise DamagedEntry(f"{path}: {error}") from None

    def _read_text(self, path: str) -> str | None:
        try:
            with self.fs.open(path, "rb") as handle:
                return handle.read().decode("utf-8").strip()
        except (OSError, ValueError):
            return None

    def complete_attempt(self, key: str) -> str | None:
        """The attempt a complete entry names, None if there is no complete entry."""
        marker = self._read_json(self._path(key, COMPLETE_FILE))
        if marker is None:
            return None
        if not isinstance(marker.get("attempt"), str):
            raise DamagedEntry(f"{self._path(key, COMPLETE_FILE)}: names no attempt")
        return marker["attempt"]

    def load(self, key: str, encoder: "nn.Module") -> dict[str, Any] | None:
        """Load entry ``key`` into ``encoder``; its meta, or None without a complete entry.

        Nothing is loaded unless the whole entry checks out (``DamagedEntry`` otherwise).
        """
        from safetensors.torch import load as load_safetensors, load_file

        attempt = self.complete_attempt(key)
        if attempt is None:
            return None
        meta = self._read_json(self._path(key, attempt, META_FILE))
        if meta is None:
            raise DamagedEntry(f"{self._path(key, attempt)}: no {META_FILE}")
        weights = self._path(key, attempt, WEIGHTS_FILE)
        try:
            if self.local:   # hashed as a stream, then mapped: no second copy of the weights in memory
                digest, size = _sha256_of(weights)
                data = None
            else:
                with self.fs.open(weights, "rb") as handle:
                    data = handle.read()
                digest, size = hashlib.sha256(data).hexdigest(), len(data)
        except OSError as error:
            raise DamagedEntry(f"{weights}: {error}") from None
        if digest != meta.get("sha256"):
            raise DamagedEntry(f"{weights}: checksum mismatch ({size} bytes, {meta.get('bytes')} expected)")
        try:
            tensors = load_file(weights) if data is None else load_safetensors(data)
        except Exception as error:   # safetensors raises its own error types
            raise DamagedEntry(f"{weights}: {error}") from None
        expected = {name: tuple(t.shape) for name, t in _stored_state(encoder).items()}
        if {name: tuple(t.shape) for name, t in tensors.items()} != expected:
            raise DamagedEntry(f"{self._path(key, attempt, WEIGHTS_FILE)}: its tensors are not this encoder's")
        encoder.load_state_dict(tensors, strict=False)
        return meta

    def touch(self, key: str) -> None:
        """Record a use (best effort: a read-only cache still serves hits)."""
        try:
            self._write_bytes(self._path(key, LAST_USED_FILE), (now_iso() + "\n").encode())
        except OSError as error:
            logger.warning("realigned cache: cannot record the use of %s: %s", key, error)

    # ---- writing
    def _write_bytes(self, path: str, data: bytes) -> None:
        if self.local:
            def write(temporary: str) -> None:
                with open(temporary, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            from trainables.artifacts import write_atomically
            write_atomically(path, write)
        else:
            self.fs.pipe(path, data)     # one PUT: all or nothing

    def current_attempt(self, key: str) -> str | None:
        """The attempt the marker names, damaged or not (None without a marker)."""
        try:
            return self.complete_attempt(key)
        except DamagedEntry:
            return "?"

    def save(self, key: str, encoder: "nn.Module", meta: dict[str, Any], replacing: str | None = None) -> None:
        """Store ``encoder``'s realigned weights as entry ``key``; ``complete`` is written last.

        ``replacing``: the (damaged) attempt the marker named when the caller
        decided to compute, None if there was none. A marker that names
        another one by now was written by a trial that computed the same
        realignment meanwhile (object storage has no lock): theirs is kept.
        """
        from safetensors.torch import save_file

        attempt = uuid.uuid4().hex[:12]
        directory = self._path(key, attempt)
        try:
            self._write_bytes(self._path(key, attempt, STARTED_FILE), (now_iso() + "\n").encode())
            handle, temporary = tempfile.mkstemp(suffix=".safetensors", dir=directory if self.local else None)
            os.close(handle)
            try:
                save_file(_stored_state(encoder), temporary, metadata={"key": key})
                digest, size = _sha256_of(temporary)
                if self.local:
                    umask = os.umask(0)
                    os.umask(umask)
                    os.chmod(temporary, 0o666 & ~umask)   # mkstemp's 0600 would hide it from the other users
                    os.replace(temporary, self._path(key, attempt, WEIGHTS_FILE))
                else:
                    self.fs.put_file(temporary, self._path(key, attempt, WEIGHTS_FILE))
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
            meta = {**meta, "key": key, "sha256": digest, "bytes": size, "created": now_iso(),
                    "format": REALIGNED_FORMAT}
            self._write_bytes(self._path(key, attempt, META_FILE),
                              json.dumps(meta, indent=2, sort_keys=True, default=str).encode())
            if self.current_attempt(key) != replacing:
                self._remove(directory)   # another trial finished first: the same realignment, keep theirs
                return
            self._write_bytes(self._path(key, COMPLETE_FILE), json.dumps({"attempt": attempt}).encode())
        except BaseException:
            self._remove(directory)     # nothing half-written stays behind
            raise
        self.touch(key)
        if replacing not in (None, "?"):   # the damaged entry this one replaces
            self._remove(self._path(key, replacing))

    def _remove(self, path: str) -> None:
        try:
            self.fs.rm(path, recursive=True)
        except FileNotFoundError:
            pass

    @contextmanager
    def lock(self, key: str, log: Callable[[str], None] = logger.info) -> Iterator[None]:
        """Hold ``key`` while computing it: a file lock on a (shared) POSIX file system.

        Object storage has no locks: nothing is held (see the module's docstring).
        """
        if not self.local:
            yield
            return
        from filelock import FileLock, Timeout

        locks = Path(self._path(".locks"))
        lock = FileLock(str(locks / f"{key}.lock"))
        try:
            locks.mkdir(parents=True, exist_ok=True)
            lock.acquire(timeout=0)
        except Timeout:
            log(f"waiting for another trial computing realignment {key} ({self.location})")
            lock.acquire()
        except OSError as error:   # a read-only cache: compute without it, nothing will be stored
            log(f"realigned cache: cannot lock {key} in {self.location} ({error}); computing without the lock")
            yield
            return
        try:
            yield
        finally:
            lock.release()

    # ---- listing and pruning
    def keys(self) -> list[str]:
        """Keys of the directories under the location (complete or not)."""
        try:
            listing = self.fs.ls(self.root, detail=True)
        except FileNotFoundError:
            return []
        return sorted(name for item in listing if item.get("type") == "directory"
                      for name in [item["name"].rstrip("/").rsplit("/", 1)[-1]]
                      if re.fullmatch(r"[0-9a-f]{16}", name))

    def entries(self) -> list[CacheEntry]:
        """Complete entries (a damaged one is listed with what could be read)."""
        entries = []
        for key in self.keys():
            try:
                attempt = self.complete_attempt(key)
                meta = self._read_json(self._path(key, attempt, META_FILE)) if attempt else None
            except DamagedEntry:
                attempt, meta = "?", None
            if attempt is None:
                continue
            meta = meta or {"damaged": True}
            entries.append(CacheEntry(key, meta, self._size(self._path(key)), meta.get("created"),
                                      self._read_text(self._path(key, LAST_USED_FILE))))
        return entries

    def _size(self, path: str) -> int:
        try:
            return int(sum(int(info.get("size") or 0) for info in self.fs.find(path, detail=True).values()))
        except OSError:
            return 0

    def remove(self, key: str) -> int:
        """Remove entry ``key`` (marker first, so no reader takes what remains for an entry); bytes freed."""
        size = self._size(self._path(key))
        try:
            self.fs.rm(self._path(key, COMPLETE_FILE))
        except FileNotFoundError:
            pass
        self._remove(self._path(key))
        return size

    def orphans(self, now: float | None = None) -> list[str]:
        """Attempts no marker names (a crashed write, the loser of a race), older than the grace period."""
        now = time.time() if now is None else now
        found = []
        for key in self.keys():
            try:
                current = self.complete_attempt(key)
            except DamagedEntry:
                current = None
            try:
                listing = self.fs.ls(self._path(key), detail=True)
            except FileNotFoundError:
                continue
            for item in listing:
                name = item["name"].rstrip("/").rsplit("/", 1)[-1]
                if item.get("type") != "directory" or name == current:
                    continue
                started = parse_time(self._read_text(self._path(key, name, STARTED_FILE)))
                if started is not None and now - started >= ORPHAN_GRACE_S:
                    found.append(self._path(key, name))
        return found

    def remove_orphan(self, path: str) -> int:
        """Remove an attempt ``orphans`` found (and its key's directory if nothing else is left); bytes freed."""
        size = self._size(path)
        self._remove(path)
        parent = path.rsplit("/", 1)[0]
        try:
            if not self.fs.ls(parent):
                self._remove(parent)
        except FileNotFoundError:
            pass
        return size

    def check_writable(self) -> None:
        """A one-line SpecError unless a file can be written (and removed) at the location."""
        probe = self._path(f".probe-{uuid.uuid4().hex[:12]}")
        try:
            self.fs.makedirs(self.root, exist_ok=True)
            self._write_bytes(probe, b"probe\n")
            self.fs.rm(probe)
        except Exception as error:   # permissions, read-only file system, credentials, network
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise SpecError(f"cache location {self.location} is not writable: {first[:200]}") from None


def _stored_state(encoder: "nn.Module") -> dict[str, Any]:
    return {name: tensor.detach().to("cpu").contiguous() for name, tensor in encoder.state_dict().items()
            if not name.startswith(NOT_STORED)}


def _sha256_of(path: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def parse_time(text: str | None) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp() if text else None
    except ValueError:
        return None


_CHECKED: set[str] = set()


def check_cache_location(location: str | None) -> None:
    """A one-line SpecError unless the realigned cache at ``location`` is writable (checked once a process)."""
    cache = RealignedCache(location)
    if cache.location not in _CHECKED:
        cache.check_writable()
        _CHECKED.add(cache.location)


# ---------------------------------------------------------------------- in a trial
def load_or_realign(cache: RealignedCache, key: str, encoder: "nn.Module",
                    compute: Callable[[], dict[str, Any]], meta: dict[str, Any],
                    log: Callable[[str], None] = logger.info) -> tuple[dict[str, Any], bool]:
    """(stats, hit): entry ``key`` loaded into ``encoder``, or ``compute()`` run and stored.

    ``compute`` realigns ``encoder`` in place and returns the stats a result
    records; they are stored with the entry and returned on a hit. A cache
    that cannot be written costs the reuse, never the trial.
    """
    warned: set[str] = set()

    def cached() -> dict[str, Any] | None:
        try:
            found = cache.load(key, encoder)
        except DamagedEntry as error:
            if key not in warned:
                warned.add(key)
                message = f"realigned cache: entry {key} is damaged ({error}); recomputing it"
                logger.warning(message)
                log(message)
            return None
        if found is not None:
            cache.touch(key)
        return found

    found = cached()
    if found is None:
        with cache.lock(key, log):
            found = cached()     # computed by the trial this one waited for
            if found is None:
                replacing = cache.current_attempt(key)
                stats = compute()
                try:
                    cache.save(key, encoder, {**meta, "stats": stats}, replacing)
                except Exception as error:   # full disk, permissions, network
                    message = f"realigned cache: cannot store {key} in {cache.location}: {error}"
                    logger.warning(message)
                    log(message)
                return stats, False
    log(f"realignment {key} reused from {cache.location} (computed {found.get('created')})")
    return dict(found.get("stats") or {}), True
