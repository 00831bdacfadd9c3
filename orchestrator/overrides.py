"""``KEY=VALUE`` overrides of an experiment file on the command line.

    alignfreeze run paper.yaml seeds=[31] tasks=[pos] finetune.epochs=1

``KEY`` is a dotted path into the file (``finetune.pos.epochs``); ``VALUE``
is read as YAML by the same safe loader as the file (``[31]`` a list,
``1`` an integer, ``2e-5`` a number, ``'no'`` a string), and replaces what
the file says there (a list replaces the whole list). The result is then
validated like the file itself, so a misspelt key or a value out of range
is the same one-line error.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Iterable

from orchestrator.safe_yaml import parse_yaml_value, short
from trainables.errors import SpecError

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_<>:+-]+)*")


def parse_override(text: str) -> tuple[list[str], Any]:
    """(key path, value) of ``KEY=VALUE``, or a one-line SpecError."""
    key, separator, value = text.partition("=")
    if not separator or not _KEY.fullmatch(key):
        raise SpecError(f"override {short(text)}: expected KEY=VALUE, KEY a dotted key of the experiment "
                        f"file (finetune.epochs=1)")
    return key.split("."), parse_yaml_value(value, f"override {key}")


def apply_overrides(raw: Any, overrides: Iterable[str]) -> Any:
    """``raw`` (the file's data) with every override applied; ``raw`` itself is left as it is."""
    overrides = list(overrides)
    if not overrides or not isinstance(raw, dict):
        return raw          # a file that is not a mapping is refused by its parser
    result = copy.deepcopy(raw)
    for text in overrides:
        path, value = parse_override(text)
        target = result
        for depth, key in enumerate(path[:-1], start=1):
            if target.get(key) is None:
                target[key] = {}
            target = target[key]
            if not isinstance(target, dict):
                raise SpecError(f"override {short(text)}: {'.'.join(path[:depth])} is not a mapping in the "
                                f"experiment file")
        target[path[-1]] = value
    return result
