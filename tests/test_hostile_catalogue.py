"""Every hostile input of the catalogue (tests/hostile_catalogue): refused with the
right exit status, one line naming the culprit, no traceback, nothing written."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from orchestrator.cli import main

FAMILIES = ("experiment_values", "experiment_structure", "data_files", "paths", "results_dirs",
            "commands", "lifecycle")
PREFIX = "alignfreeze: error: "
MAX_LINE = 500


def _cases():
    cases = []
    for family in FAMILIES:
        try:
            module = importlib.import_module(f"hostile_catalogue.{family}")
        except ModuleNotFoundError as error:
            if error.name != f"hostile_catalogue.{family}":
                raise
            continue
        cases += [pytest.param(case, id=f"{family}:{case.id}") for case in module.CASES]
    return cases


CASES = _cases()


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in root.rglob("*") if p.is_file()}


def test_the_catalogue_holds_at_least_80_cases():
    assert len(CASES) >= 80, len(CASES)


@pytest.mark.parametrize("case", CASES)
def test_hostile_input_is_refused(case, tmp_path, capsys, monkeypatch):
    work = tmp_path / "case"
    work.mkdir()
    monkeypatch.chdir(work)
    argv = case.argv(work)
    if case.patch is not None:
        case.patch(monkeypatch, work)
    before = _snapshot(work)
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    assert code == case.code, captured.err[-3000:]
    assert "Traceback" not in captured.err, captured.err[-3000:]
    lines = captured.err.splitlines()
    assert lines, "nothing on stderr"
    if case.one_line:
        assert len(lines) == 1, captured.err[-3000:]
    line = lines[-1]
    if case.code == 2:
        assert line.startswith(PREFIX), line
    assert len(line) <= MAX_LINE, line[:1000]
    assert case.expected in line, line
    after = _snapshot(work)
    changed = sorted(p for p in after if before.get(p) != after[p])
    allowed = [p for p in changed if any(p == w or p.startswith(w.rstrip("/") + "/") for w in case.may_write)]
    assert changed == allowed, f"written: {changed}"
    assert not [p for p in changed if "/results/" in f"/{p}" and p.endswith(".json")], changed
