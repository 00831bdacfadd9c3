"""Building blocks of the catalogue's cases: the demo experiment as a dict, written
under a case's directory with one change."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "search_spaces" / "demo.yaml"
DEPTH_DEMO = ROOT / "search_spaces" / "demo_depth_search.yaml"


def demo() -> dict[str, Any]:
    return yaml.safe_load(DEMO.read_text(encoding="utf-8"))


def write_experiment(directory: Path, experiment: dict[str, Any], name: str = "experiment.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(experiment, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def setting(*path_and_value: Any) -> Callable[[dict[str, Any]], None]:
    """A change of the demo: the value at the key path (missing mappings created)."""
    *path, value = path_and_value

    def change(experiment: dict[str, Any]) -> None:
        target = experiment
        for key in path[:-1]:
            target = target.setdefault(key, {})
        target[path[-1]] = copy.deepcopy(value)
    return change


def dry_run(*changes: Callable[[dict[str, Any]], None], command: str = "run",
            base: Callable[[], dict[str, Any]] = demo) -> Callable[[Path], list[str]]:
    """``alignfreeze <command> FILE --dry-run`` on the demo with ``changes`` applied."""
    def argv(directory: Path) -> list[str]:
        experiment = base()
        for change in changes:
            change(experiment)
        return [command, str(write_experiment(directory, experiment)), "--dry-run"]
    return argv
