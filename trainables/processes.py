"""Whether a process of this host still runs: the one test behind every stale-state rule
(a trial's working copy, the driver lock, the running-trials record)."""

from __future__ import annotations

import os
from typing import Any


def process_alive(pid: Any) -> bool:
    """True while ``pid`` names a process of this host (another user's counts as alive)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
