"""The project's error types.

Every error a user can cause by a bad spec or a bad data file is an
``AlignFreezeError``; the command line prints its message as one line on
stderr and exits with status 2.
"""

from __future__ import annotations

from difflib import get_close_matches
from typing import Iterable


class AlignFreezeError(Exception):
    """A user-facing error: the message is the whole story, on one line."""


class SpecError(AlignFreezeError, ValueError):
    """An experiment or trial spec names something unknown or out of range."""


class DataError(AlignFreezeError, ValueError):
    """A data file is missing or malformed; the message names file and line."""

    def __init__(self, message: str, path: object = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")
        self.path = path
        self.line = line


MAX_ECHO = 80        # characters of a value an error message quotes


def short(value: object, limit: int = MAX_ECHO) -> str:
    """``repr(value)`` cut to ``limit`` characters: an error message never echoes a huge value."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def unknown_name(kind: str, name: object, known: Iterable[str]) -> SpecError:
    """A SpecError for an unknown name, suggesting the close known ones."""
    known = sorted(known)
    close = get_close_matches(str(name)[:200], known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known)}"
    # a huge value (a YAML alias expanded, a pasted file) is named, never echoed whole
    return SpecError(f"unknown {kind} {short(name)}{hint}")
