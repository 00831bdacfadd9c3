"""The catalogue of hostile inputs (issue 14), one module per family.

Each family module defines ``CASES``: a list of ``Case``. A case builds its
inputs under a fresh directory (its ``argv`` function) and names the
``alignfreeze`` command line that must refuse them. ``tests/test_hostile_catalogue.py``
runs every case in process and asserts its exit status, one line on stderr
naming the culprit (``expected`` is a piece of it), no traceback, and that
the command wrote nothing: no file created or changed under the case's
directory (so no result, and nothing half-written).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest


@dataclass(frozen=True)
class Case:
    id: str
    argv: Callable[[Path], list[str]]   # builds the inputs under the given directory; returns the arguments
    expected: str                       # a piece of the message, after "alignfreeze: error: "
    code: int = 2
    # prepares the process (monkeypatching), given the case's directory; for lifecycle cases
    patch: Callable[[pytest.MonkeyPatch, Path], None] | None = None
    # lifecycle cases may print progress before their last line; the last line is checked
    one_line: bool = True
    # paths (relative to the case directory) the command may create or change: a lifecycle
    # case's run directory; never results/*.json
    may_write: tuple[str, ...] = ()
