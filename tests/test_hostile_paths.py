"""Hostile paths and damaged results directories: refused in one line before anything is written.

The catalogue (tests/hostile_catalogue: paths, results_dirs, commands) runs
each refusal through the command line; these tests pin what it cannot
show: the checks write nothing, run checks before Ray starts, what root may
write anyway (``os.access`` says yes to root: a read-only directory is found
when written, and the write then leaves nothing behind), and what ``status``
survives instead of refusing (a damaged error file or study summary).
"""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from orchestrator import results as results_dir
from orchestrator import runner
from orchestrator.align_command import _settings
from orchestrator.cli import main
from orchestrator.model_costs import load_throughput_file
from orchestrator.results import check_output_file, check_output_location
from orchestrator.status import run_status
from trainables.errors import DataError, SpecError

PREFIX = "alignfreeze: error: "
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")}


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(PREFIX), lines[0]
    return lines[0][len(PREFIX):]


def planned(trial_id: str) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, to_dict=lambda: {"model": "m", "task": "pos"})


# ------------------------------------------------------------ --output of run and search

@pytest.mark.parametrize("layout", ["nothing yet", "an empty directory", "a grid's results"])
def test_a_usable_output_passes_and_nothing_is_written(tmp_path, layout):
    output = tmp_path / "runs" / "grid"
    if layout != "nothing yet":
        output.mkdir(parents=True)
    if layout == "a grid's results":
        results_dir.write_manifest(output, "grid", [planned("t1")])
    before = snapshot(tmp_path)
    check_output_location(output)
    check_output_location(output, search=False)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("manifest, message", [
    ("[1, 2]", "damaged manifest: a JSON list, not an object"),
    ('{"trials": [{"spec": {}}]}', "damaged manifest: trial 1 has no trial_id"),
    ('{"trials": [{"trial_id": "a/../../b"}]}', "not a plain file name"),
    ('{"trials": [', "damaged manifest: not valid JSON (Expecting value)"),
])
def test_a_damaged_manifest_is_named_and_left_as_it_is(tmp_path, manifest, message):
    (tmp_path / "experiment.json").write_text(manifest, encoding="utf-8")
    before = snapshot(tmp_path)
    with pytest.raises(DataError, match=re.escape(message)) as caught:
        check_output_location(tmp_path)
    assert str(caught.value).startswith(str(tmp_path / "experiment.json"))
    # the run's own manifest writer refuses it too, rather than overwriting what it cannot read
    with pytest.raises(DataError, match=re.escape(message)):
        results_dir.write_manifest(tmp_path, "grid", [planned("t1")])
    assert snapshot(tmp_path) == before


def test_a_grid_and_a_search_never_share_a_directory(tmp_path):
    results_dir.write_manifest(tmp_path / "grid", "grid", [planned("t1")])
    results_dir.write_manifest(tmp_path / "search", "s", [planned("t1")], search={"trials": 2})
    with pytest.raises(SpecError, match="holds a grid \\(alignfreeze run\\): use another --output"):
        check_output_location(tmp_path / "grid", search=True)
    with pytest.raises(SpecError, match="holds a depth search \\(alignfreeze search\\)"):
        check_output_location(tmp_path / "search", search=False)
    check_output_location(tmp_path / "grid")     # search=None: either kind (a dry run of either command)


def test_an_output_this_user_may_not_write_is_refused(tmp_path, monkeypatch):
    """What ``os.access`` says decides: a read-only directory for anyone but root."""
    monkeypatch.setattr(results_dir.os, "access", lambda path, mode: Path(path) != tmp_path)
    with pytest.raises(SpecError, match=f"--output {tmp_path / 'run'}: {tmp_path} is not writable"):
        check_output_location(tmp_path / "run")
    with pytest.raises(SpecError, match=f"--out {tmp_path / 'a' / 'b.csv'}: {tmp_path} is not writable"):
        check_output_file(tmp_path / "a" / "b.csv")


@pytest.mark.skipif(IS_ROOT, reason="root writes into a read-only directory: os.access says so")
def test_a_read_only_directory_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(SpecError, match="is not writable"):
            check_output_location(locked / "run")
        with pytest.raises(SpecError, match="is not writable"):
            check_output_file(locked / "tidy.csv")
    finally:
        locked.chmod(0o755)


def test_a_storage_uri_is_left_to_its_file_system():
    from trainables.storage import RemotePath

    check_output_location(RemotePath(None, "bucket/run", "s3"))     # no call to the store: nothing to refuse


def grid(trials: list) -> SimpleNamespace:
    return SimpleNamespace(name="grid", trials=trials, source=None, ray={}, resources={}, checkpoint=None)


def test_run_refuses_a_damaged_directory_before_ray_starts(tmp_path, monkeypatch):
    def no_session(*args, **kwargs):
        raise AssertionError("the session (the driver lock, then Ray) started")

    monkeypatch.setattr(runner, "TrialSession", no_session)
    output = tmp_path / "out"
    output.mkdir()
    (output / "experiment.json").write_text('{"trials": 5}', encoding="utf-8")
    (output / "results").mkdir()
    (output / "results" / "t1.json").write_text("{", encoding="utf-8")    # damaged: left, not moved aside
    before = snapshot(tmp_path)
    with pytest.raises(DataError, match="damaged manifest: 'trials' is not a list"):
        runner.run_experiment(grid([planned("t1")]), output)
    with pytest.raises(SpecError, match="is a file, not a directory"):
        runner.run_experiment(grid([planned("t1")]), output / "experiment.json" / "deeper")
    assert snapshot(tmp_path) == before


def test_an_output_the_system_refuses_to_create_is_one_line():
    """/proc takes no new directory, not even from root, whom os.access lets through."""
    with pytest.raises(SpecError, match="/proc/alignfreeze-hostile-paths"):
        runner.prepare_output(Path("/proc/alignfreeze-hostile-paths"), search=False)


# ------------------------------------------------------------ --out of analyze, import-reference, align

def read_only_disk(monkeypatch):
    """Every rename into place fails as on a read-only file system (which root cannot write either)."""
    def replace(source, destination):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr("trainables.artifacts.os.replace", replace)


@pytest.mark.parametrize("command", [["import-reference", "reference"], ["analyze", "reference"]])
def test_a_failed_write_is_one_line_and_leaves_no_file(tmp_path, monkeypatch, capsys, command):
    read_only_disk(monkeypatch)
    out = tmp_path / ("tidy.csv" if command[0] == "import-reference" else "report.md")
    assert main([*command, "--out", str(out)]) == 2
    *warnings, last = capsys.readouterr().err.splitlines()      # analyze: what the tables left out
    assert all(w.startswith("warning: ") for w in warnings)
    line = one_error_line(last)
    assert line == f"{out}: cannot be written (Read-only file system)"
    assert list(tmp_path.iterdir()) == []       # no partial file, no temporary file


def test_align_out_is_checked_before_aligning(tmp_path, monkeypatch, capsys):
    import trainables.realignment.aligners as aligners

    monkeypatch.setattr(aligners, "alignment_links", lambda *a, **k: pytest.fail("aligned before --out was checked"))
    (tmp_path / "taken").write_text("x", encoding="utf-8")
    code = main(["align", "--aligner", "dico", "--language", "fr", "--parallel", "x.tsv", "--dictionary", "d.txt",
                 "--out", str(tmp_path / "taken" / "fr.jsonl")])
    assert code == 2
    assert one_error_line(capsys.readouterr().err).endswith(f"{tmp_path / 'taken'} is a file, not a directory")


# ------------------------------------------------------------ status: refuses a damaged manifest, survives the rest

def test_status_lists_a_study_summary_of_the_wrong_shape_and_goes_on(tmp_path, capsys):
    results_dir.write_manifest(tmp_path, "s", [planned("t1")], search={"trials": 2})
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "a.json").write_text("{}", encoding="utf-8")
    (tmp_path / "search" / "b.json").write_text('{"study": "b", "metric": "accuracy", "evaluated": [], '
                                                '"space": [], "budget": 2, "best": {"strategy": "x"}}')
    status = run_status(tmp_path)
    assert status["studies"] == []
    assert status["damaged"] == [f"{tmp_path / 'search' / 'a.json'} is damaged (not a study summary: no 'study' (text))",
                                 f"{tmp_path / 'search' / 'b.json'} is damaged (not a study summary: 'best' has no mean)"]
    assert main(["status", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.count("WARNING") == 2


def test_status_ignores_running_trials_of_the_wrong_shape(tmp_path, capsys):
    results_dir.write_manifest(tmp_path, "grid", [planned("t1")])
    (tmp_path / "running.json").write_text(json.dumps({"driver": {"host": "elsewhere", "pid": 1},
                                                       "heartbeat": "2999-01-01T00:00:00+00:00",
                                                       "trials": {"t1": "not a record"}}), encoding="utf-8")
    status = run_status(tmp_path)
    assert status["counts"]["not started"] == 1
    assert main(["status", str(tmp_path)]) == 1
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------ YAML through the limited loader only

def test_align_settings_are_single_values():
    assert _settings(["symmetric=true", "samplers=3", "null_prior=0.2", "symmetrisation=intersection", "layer="]) == {
        "symmetric": True, "samplers": 3, "null_prior": 0.2, "symmetrisation": "intersection", "layer": None}
    for value, message in [("[1, 2]", "expects one value"), ("{a: 1}", "expects one value"),
                           ("&a [*a, *a]", "expects one value"), ('"open', "not a value")]:
        with pytest.raises(SpecError, match=f"--setting 'x': {message}"):
            _settings([f"x={value}"])


def test_a_throughput_file_goes_through_the_limited_yaml_loader(tmp_path):
    path = tmp_path / "throughput.yaml"
    path.write_text("m: {finetune_seq_per_s: 10, realign_pairs_per_s: 5}\n", encoding="utf-8")
    assert load_throughput_file(path)["m"].finetune_seq_per_s == 10.0
    path.write_bytes(b"x" * (2 << 20))
    with pytest.raises(DataError, match="throughput file is 2,097,152 bytes; the limit is 1,048,576"):
        load_throughput_file(path)
    huge = tmp_path / "throughput.json"
    huge.write_bytes(b" " * (2 << 20))
    with pytest.raises(DataError, match="throughput file is 2,097,152 bytes"):
        load_throughput_file(huge)


def test_no_module_loads_yaml_without_the_limits():
    """``orchestrator.safe_yaml`` is the one place a user's YAML is loaded (size, alias and key caps)."""
    root = Path(__file__).resolve().parents[1]
    offenders = [f"{path.relative_to(root)}:{number}"
                 for folder in ("orchestrator", "trainables", "analysis")
                 for path in sorted((root / folder).rglob("*.py")) if path.name != "safe_yaml.py"
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if "yaml.load(" in line or "yaml.safe_load(" in line or "yaml.full_load(" in line]
    assert offenders == []
