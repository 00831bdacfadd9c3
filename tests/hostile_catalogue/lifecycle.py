"""The run's lifecycle: Ctrl-C (exit 130 and how to resume), a second driver on a
results directory another driver holds, a grid far too large without --yes."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from hostile_catalogue import Case
from hostile_catalogue.common import DEPTH_DEMO, demo, write_experiment

RESUME = "alignfreeze: interrupted: run the same command again to resume"


def _interrupt(*_, **__):
    raise KeyboardInterrupt


def _ctrl_c_in(module: str, function: str):
    def patch(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
        monkeypatch.setattr(f"{module}.{function}", _interrupt)
    return patch


def _run(directory: Path) -> list[str]:
    return ["run", str(write_experiment(directory, demo())), "--output", str(directory / "out")]


def _search(directory: Path) -> list[str]:
    import yaml
    experiment = yaml.safe_load(DEPTH_DEMO.read_text(encoding="utf-8"))
    return ["search", str(write_experiment(directory, experiment)), "--output", str(directory / "out")]


def _held_by_a_live_driver(directory: Path) -> list[str]:
    """``out/`` locked by a driver that is alive (this very process: its pid is live)."""
    out = directory / "out"
    out.mkdir()
    (out / "driver.lock").write_text(json.dumps({
        "host": socket.gethostname(), "pid": os.getpid(), "started": "2026-12-03T10:00:00+00:00",
        "command": "alignfreeze run other.yaml", "token": "0" * 32}), encoding="utf-8")
    return _run(directory)


def _search_held_by_a_live_driver(directory: Path) -> list[str]:
    _held_by_a_live_driver(directory)
    return _search(directory)


CASES = [
    Case("Ctrl-C during run", _run, RESUME, code=130, patch=_ctrl_c_in("orchestrator.runner", "run_experiment"),
         one_line=False),
    Case("Ctrl-C during search", _search, RESUME, code=130,
         patch=_ctrl_c_in("orchestrator.depth_search", "run_depth_search"), one_line=False),
    Case("second driver on a run's directory", _held_by_a_live_driver,
         "is in use by another alignfreeze driver", one_line=False),
    Case("second driver on a search's directory", _search_held_by_a_live_driver,
         "is in use by another alignfreeze driver", one_line=False),
]
