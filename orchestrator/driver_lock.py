"""One driver per results directory: a lock file saying who runs it.

``DriverLock(directory)`` writes ``directory/driver.lock`` (host, pid,
start time, command) whole to a temporary file and links it into place,
so the lock appears complete or not at all and two drivers cannot both
create it. While the driver runs, a thread refreshes the file's mtime
every ``HEARTBEAT_S``; the lock is removed when the driver ends (normal
end, exception, Ctrl-C).

A second driver finds the file and is refused with who holds it. A lock
is stale, and taken over with a warning, when

- its pid is dead on this host (a driver killed with SIGKILL, or a crash), or
- nobody refreshed it for ``STALE_AFTER_S`` (10 minutes): a driver on
  another host that died, or a reused pid.

Readers (``alignfreeze status``) never touch the lock.

On object storage (``--output s3://...``) there is no create-if-absent
nor rename: the lock is best effort. A driver that finds no lock writes
its own (one PUT), waits ``SETTLE_S`` and reads it back; it runs only if
the lock still names it, so of two drivers starting together the later
writer wins and the other is refused, unless they start within the same
few hundred milliseconds of each other. The heartbeat rewrites the object
(its mtime is the store's clock: hosts must agree with it within minutes).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from trainables.errors import SpecError
from trainables.processes import process_alive
from trainables.storage import RemotePath, location

LOCK_NAME = "driver.lock"
HEARTBEAT_S = 60.0
STALE_AFTER_S = 600.0
SETTLE_S = 1.0       # object storage: how long a written lock must survive before it counts


def read_holder(directory: Path) -> dict[str, Any] | None:
    """Who holds ``directory``'s lock (with ``age_s`` since its last refresh), or None."""
    path = location(directory) / LOCK_NAME
    age = 0.0
    try:
        age = time.time() - path.stat().st_mtime
        holder = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        holder = {}                     # unreadable (being written, or damaged): judged by its age
    if not isinstance(holder, dict):
        holder = {}
    return {**holder, "age_s": max(0.0, age)}


def stale_reason(holder: dict[str, Any], stale_after_s: float = STALE_AFTER_S) -> str | None:
    """Why ``holder``'s lock no longer protects a running driver, or None while it does."""
    if holder.get("host") == socket.gethostname() and not process_alive(holder.get("pid")):
        return f"pid {holder.get('pid')} is not running on this host"
    if holder["age_s"] > stale_after_s:
        return f"not refreshed for {holder['age_s']:.0f} s (more than {stale_after_s:.0f} s)"
    return None


def _describe(holder: dict[str, Any]) -> str:
    return (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
            f"started {holder.get('started', '?')}")


class DriverLock:
    """Held while a driver writes ``directory``; use as a context manager or acquire/release."""

    def __init__(self, directory: Path, stale_after_s: float = STALE_AFTER_S, heartbeat_s: float = HEARTBEAT_S):
        self.directory = location(directory)
        self.path = self.directory / LOCK_NAME
        self.stale_after_s = stale_after_s
        self.heartbeat_s = heartbeat_s
        self.holder: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def __enter__(self) -> "DriverLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, taking over a stale one; a live holder is a one-line SpecError."""
        if self.holder is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        mine = {"host": socket.gethostname(), "pid": os.getpid(),
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": " ".join(sys.argv)[:300], "token": uuid.uuid4().hex}
        for _ in range(5):     # each round: create, or judge the holder (a takeover may race another driver's)
            if self._create(mine):
                self.holder = mine
                self._start_heartbeat()
                return
            holder = read_holder(self.directory)
            if holder is None:
                continue        # released meanwhile
            reason = stale_reason(holder, self.stale_after_s)
            if reason is None:
                raise SpecError(f"{self.directory} is in use by another alignfreeze driver ({_describe(holder)}; "
                                f"lock {self.path}): wait for it to end, or use another --output")
            print(f"alignfreeze: warning: taking over the stale lock of {self.directory} "
                  f"({_describe(holder)}: {reason})", file=sys.stderr, flush=True)
            self._remove_if(holder)
        raise SpecError(f"{self.directory}: could not take the driver lock {self.path} (other drivers keep "
                        f"taking it): make sure one driver runs per output directory")

    def release(self) -> None:
        """Remove the lock if it is still ours."""
        if self.holder is None:
            return
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        self._remove_if(self.holder)
        self.holder = None

    # ---- internals

    def _create(self, holder: dict[str, Any]) -> bool:
        """Write the whole lock to a temporary file, then link it into place: fails if a lock exists."""
        if isinstance(self.path, RemotePath):
            return self._create_remote(holder)
        temporary = self.path.with_name(f".{LOCK_NAME}.{holder['token']}")
        temporary.write_text(json.dumps(holder), encoding="utf-8")
        try:
            os.link(temporary, self.path)
            return True
        except FileExistsError:
            return False
        except OSError:
            # no hard links on this file system: exclusive creation (a reader may briefly see it empty)
            try:
                descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(json.dumps(holder))
            return True
        finally:
            temporary.unlink(missing_ok=True)

    def _remove_if(self, holder: dict[str, Any]) -> None:
        """Remove the lock if it still is ``holder``'s: a lock renamed aside and found to be another's
        (a driver that took it over meanwhile) goes back."""
        if isinstance(self.path, RemotePath):
            found = read_holder(self.directory)
            if found is not None and found.get("token") == holder.get("token"):
                self.path.unlink(missing_ok=True)
            return
        aside = self.path.with_name(f".{LOCK_NAME}.removed-{uuid.uuid4().hex}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            found = json.loads(aside.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            found = {}
        same = all(found.get(k) == holder.get(k) for k in ("host", "pid", "started", "token"))
        if not same and found:
            try:
                os.link(aside, self.path)
            except FileExistsError:
                pass
        aside.unlink(missing_ok=True)

    def _create_remote(self, holder: dict[str, Any]) -> bool:
        """Object storage: write the lock if there is none, and keep it only if it still names us."""
        if self.path.exists():
            return False
        self.path.write_text(json.dumps(holder))
        time.sleep(SETTLE_S)
        found = read_holder(self.directory)
        return found is not None and found.get("token") == holder["token"]

    def _start_heartbeat(self) -> None:
        self._stop.clear()

        def beat() -> None:
            while not self._stop.wait(self.heartbeat_s):
                holder = read_holder(self.directory)
                if holder is None or holder.get("token") != self.holder["token"]:
                    print(f"alignfreeze: warning: the driver lock of {self.directory} was removed or taken "
                          f"over by another driver", file=sys.stderr, flush=True)
                    return
                try:
                    if isinstance(self.path, RemotePath):   # an object's mtime changes only when rewritten
                        self.path.write_text(json.dumps(self.holder))
                    else:
                        os.utime(self.path)
                except OSError:
                    pass

        self._heartbeat = threading.Thread(target=beat, name="alignfreeze-driver-lock", daemon=True)
        self._heartbeat.start()
