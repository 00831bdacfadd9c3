"""Which trials a live driver is running now: ``DIR/running.json``, for ``alignfreeze status``.

The driver writes it (never a trial: it holds Tune's view and needs no
shared disk on the workers). A trial is listed when Tune starts it, gets
its host and pid with its first report (the first checkpoint), and leaves
the list when it completes or fails for good; a trial that Tune retries
after a failure (a lost node, a killed worker) stays listed, ``state:
retrying`` until Tune starts it again, and counts its attempts.
``heartbeat`` is refreshed every ``HEARTBEAT_S`` while the driver's loop
turns; the file is removed when the run ends.

A driver killed outright cannot remove it, so a reader trusts it only
while it is live: not live once its driver's pid is gone (a reader on the
driver's host sees that at once) or its heartbeat is older than
``STALE_AFTER_S`` (any host; clocks must agree within seconds). A record
that is not live is ignored: its trials are checkpointed or not started.

The same callbacks feed the live view of the console (``view``:
``orchestrator.progress.ProgressView``), which ``beat`` redraws.
"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from orchestrator.progress import progress_of
from trainables.processes import process_alive
from trainables.storage import location, write_json

RUNNING = "running.json"
HEARTBEAT_S = 10.0
STALE_AFTER_S = 60.0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RunningTrials:
    """The driver's side: Tune's callbacks (``trainables.ray_trainable``) call these."""

    def __init__(self, directory: Path, on_retry: Callable[[str, str, int], None] | None = None,
                 view: Any = None):
        self.on_retry = on_retry     # (trial_id, error line, failures so far): tell the user at once
        self.view = view             # the console's ProgressView, or None
        self.path = location(directory) / RUNNING
        self.record: dict[str, Any] = {"driver": {"host": socket.gethostname(), "pid": os.getpid(),
                                                  "started": _now()},
                                       "heartbeat": _now(), "trials": {}}
        self._written = 0.0
        self._write()

    def _write(self) -> None:
        self.record["heartbeat"] = _now()
        write_json(self.path, self.record)
        self._written = time.monotonic()

    def started(self, trial_id: str) -> None:
        previous = self.record["trials"].get(trial_id, {})
        self.record["trials"][trial_id] = {"state": "running", "since": _now(),
                                           "attempt": previous.get("attempt", 0) + 1,
                                           **({"failures": previous["failures"]} if "failures" in previous
                                              else {})}
        self._write()
        if self.view is not None:
            self.view.started(trial_id)

    def reported(self, trial_id: str, result: dict[str, Any]) -> None:
        entry = self.record["trials"].setdefault(trial_id, {"state": "running", "since": _now(), "attempt": 1})
        new_place = entry.get("pid") != result.get("pid") or entry.get("host") != result.get("hostname")
        entry.update({"host": result.get("hostname"), "node_ip": result.get("node_ip"), "pid": result.get("pid")})
        if "progress_phase" in result:     # where it stands between checkpoints (step k/N), for alignfreeze status
            entry["position"] = {**progress_of(result), "at": _now()}
        else:                              # a checkpoint's report, or the result
            entry["last_report"] = {"phase": result.get("phase"), "epoch": result.get("epoch"), "at": _now()}
        # progress reports come every few seconds: the file is rewritten with the heartbeat, not each time
        if new_place or "progress_phase" not in result or time.monotonic() - self._written >= HEARTBEAT_S:
            self._write()
        if self.view is not None:
            self.view.reported(trial_id, result)

    def failed(self, trial_id: str, message: str) -> None:
        """Tune will retry the trial (from its latest checkpoint): it waits for a new start."""
        entry = self.record["trials"].setdefault(trial_id, {"since": _now(), "attempt": 1})
        entry["state"] = "retrying"
        entry["failures"] = entry.get("failures", []) + [{"at": _now(), "error": message[:300]}]
        for key in ("host", "node_ip", "pid"):
            entry.pop(key, None)
        self._write()
        if self.view is not None:
            self.view.retrying(trial_id)
        if self.on_retry is not None:
            self.on_retry(trial_id, message, len(entry["failures"]))

    def ended(self, trial_id: str) -> None:
        if self.record["trials"].pop(trial_id, None) is not None:
            self._write()
        if self.view is not None:
            self.view.ended(trial_id)

    def beat(self) -> None:
        if time.monotonic() - self._written >= HEARTBEAT_S:
            self._write()
        if self.view is not None:
            self.view.tick()

    def close(self) -> None:
        self.path.unlink(missing_ok=True)
        if self.view is not None:
            self.view.close()


def stale_reason(record: dict[str, Any], now: float | None = None) -> str | None:
    """Why ``record`` no longer describes a live run (None while it does)."""
    driver = record.get("driver", {})
    if driver.get("host") == socket.gethostname() and not process_alive(driver.get("pid")):
        return f"its driver (pid {driver.get('pid')}) is not running on this host"
    try:
        age = (now or time.time()) - datetime.fromisoformat(record["heartbeat"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return "no readable heartbeat"
    if age > STALE_AFTER_S:
        return f"no heartbeat for {age:.0f} s (more than {STALE_AFTER_S:.0f} s)"
    return None


def read_running(directory: Path) -> dict[str, Any] | None:
    """``DIR/running.json`` with ``stale`` (why it is not live, or None), or None without one."""
    try:
        record = json.loads((location(directory) / RUNNING).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"trials": {}, "stale": "unreadable"}
    if (not isinstance(record, dict) or not isinstance(record.get("trials"), dict)
            or not isinstance(record.get("driver", {}), dict)):
        return {"trials": {}, "stale": "unreadable"}
    return {**record, "stale": stale_reason(record)}
