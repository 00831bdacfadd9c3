"""Checkpoints: complete or ignored, inside long phases, removed once the result is written.

Fast tests cover the layout (markers, listing, removal, stale working
copies) and the ``checkpoint:`` settings; slow ones interrupt tiny trials
in-process mid-realignment and mid-epoch, damage checkpoints, and kill a
Ray run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from trainables.checkpoint_layout import (CHECKPOINT_FILE, COMPLETE_FILE, FINAL_WEIGHTS_FILE, PHASE_FILE,
                                          WORK_PREFIX, checkpoint_phase, damage, latest_checkpoint,
                                          mark_complete, release_checkpoints, remove_stale_working_directories,
                                          trial_checkpoints, working_directory)
from trainables.checkpoint_policy import CheckpointClock, CheckpointPolicy, parse_checkpoint_policy
from trainables.errors import SpecError

from trial_fixtures import small_pos_experiment


def stored_checkpoint(storage: Path, tune_run: str, trial_id: str, number: int, content: bytes = b"state" * 100,
                      complete: bool = True, extra: dict[str, bytes] | None = None) -> Path:
    path = storage / tune_run / trial_id / f"checkpoint_{number:06d}"
    path.mkdir(parents=True)
    (path / CHECKPOINT_FILE).write_bytes(content)
    (path / PHASE_FILE).write_text(json.dumps({"phase": "finetune", "epoch": number}))
    for name, data in (extra or {}).items():
        (path / name).write_bytes(data)
    if complete:
        mark_complete(path)
    time.sleep(0.01)    # distinct modification times: the listing orders by the newest write
    return path


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# --------------------------------------------------------------------- layout
def test_a_checkpoint_counts_only_when_its_state_matches_its_marker(tmp_path):
    directory = stored_checkpoint(tmp_path, "tune-1", "t", 0)
    assert damage(directory) is None
    (directory / CHECKPOINT_FILE).write_bytes(b"x" * 500)      # same size, other bytes
    assert damage(directory, thorough=False) is None
    assert "sha256" in damage(directory)
    truncate(directory / CHECKPOINT_FILE)
    assert "truncated" in damage(directory, thorough=False)
    (directory / COMPLETE_FILE).unlink()
    assert "complete.json" in damage(directory, thorough=False)


def test_listing_skips_a_checkpoint_cut_short_for_the_one_before(tmp_path):
    older = stored_checkpoint(tmp_path, "tune-1", "t", 2)
    newer = stored_checkpoint(tmp_path, "tune-2", "t", 0)
    stored_checkpoint(tmp_path, "tune-2", "other", 0)
    assert trial_checkpoints(tmp_path, "t") == [newer, older]
    assert latest_checkpoint(tmp_path, "t") == newer
    # a copy cut short: the state truncated (its marker copied first), or no marker yet
    cut = stored_checkpoint(tmp_path, "tune-2", "t", 1)
    truncate(cut / CHECKPOINT_FILE)
    stored_checkpoint(tmp_path, "tune-3", "t", 0, complete=False)
    assert trial_checkpoints(tmp_path, "t")[2:] == [newer, older]
    assert latest_checkpoint(tmp_path, "t") == newer
    assert latest_checkpoint(tmp_path, "missing") is None


@pytest.mark.parametrize("keep", ["none", "final", "all"])
def test_a_finished_trial_keeps_what_keep_says(tmp_path, keep):
    storage, weights = tmp_path / "ray", tmp_path / "results" / "t.safetensors"
    first = stored_checkpoint(storage, "tune-1", "t", 0)
    last = stored_checkpoint(storage, "tune-2", "t", 1, extra={FINAL_WEIGHTS_FILE: b"weights"})
    other = stored_checkpoint(storage, "tune-2", "other", 0)
    assert release_checkpoints(storage, "t", keep, weights) == []
    kept = {p for p in (first, last) if p.exists()}
    assert kept == ({first, last} if keep == "all" else set())
    assert weights.exists() == (keep == "final")
    if keep == "final":
        assert weights.read_bytes() == b"weights"
        assert not list(weights.parent.glob(".*tmp"))
    assert other.exists()


def test_keep_final_without_weights_warns_and_removes(tmp_path):
    stored_checkpoint(tmp_path, "tune-1", "t", 0)
    [warning] = release_checkpoints(tmp_path, "t", "final", tmp_path / "t.safetensors")
    assert "no fine-tuned weights" in warning
    assert trial_checkpoints(tmp_path, "t") == []


def test_working_copies_of_dead_processes_are_removed(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    mine = working_directory()
    assert mine.parent == tmp_path and mine.name.startswith(WORK_PREFIX)
    stale = Path(str(mine).replace(f"-{os.getpid()}-", f"-{gone.pid}-"))
    stale.mkdir()
    (stale / "finetune").mkdir()
    other_host = tmp_path / f"{WORK_PREFIX}elsewhere-{gone.pid}-abc"
    other_host.mkdir()
    assert remove_stale_working_directories() == [stale]
    assert mine.exists() and other_host.exists() and not stale.exists()


# ------------------------------------------------------------------- settings
def test_checkpoint_settings_and_their_errors():
    assert parse_checkpoint_policy(None) == CheckpointPolicy(None, 30.0, "none")
    assert parse_checkpoint_policy({"every_steps": 500, "every_minutes": None, "keep": "final"}) == \
        CheckpointPolicy(500, None, "final")
    for raw, message in [({"every_steps": 0}, "checkpoint.every_steps must be an integer >= 1, or null"),
                         ({"every_steps": True}, "checkpoint.every_steps must be an integer >= 1, or null"),
                         ({"every_minutes": "30"}, "checkpoint.every_minutes must be a number > 0, or null"),
                         ({"keep": "last"}, "checkpoint.keep"),
                         ({"keep": False}, "checkpoint.keep"),       # YAML's `keep: no`
                         ({"every": 3}, "key in checkpoint"),
                         ([1], "must be a mapping")]:
        with pytest.raises(SpecError, match=message):
            parse_checkpoint_policy(raw)


def test_checkpoints_are_due_every_n_steps_or_m_minutes():
    now = [0.0]
    clock = CheckpointClock(CheckpointPolicy(every_steps=3, every_minutes=1), clock=lambda: now[0])
    assert [s for s in range(1, 10) if clock.due(s)] == [3, 6, 9]
    now[0] = 61
    assert clock.due(1)
    clock.saved()
    assert not clock.due(1)
    assert not CheckpointClock(CheckpointPolicy(None, None)).due(1000)


def test_checkpoint_settings_do_not_change_trial_identity():
    from orchestrator.experiment import experiment_from_dict

    plain = experiment_from_dict(small_pos_experiment(strategies=["baseline"]))
    tuned = experiment_from_dict(small_pos_experiment(strategies=["baseline"],
                                                      checkpoint={"every_steps": 10, "keep": "all"}))
    assert [t.trial_id for t in plain.trials] == [t.trial_id for t in tuned.trials]
    assert (plain.checkpoint.keep, tuned.checkpoint) == ("none", CheckpointPolicy(10, 30.0, "all"))


# ------------------------------------------------------- interrupted trials
class Interrupt(Exception):
    pass


def quiet(_: str) -> None:
    pass


def spec_of(tmp_path: Path, name: str, strategy: str, schedule: str = "before"):
    """A tiny PoS trial (3 optimizer steps an epoch, 2 epochs, 6 realignment steps) with its own
    realigned cache, so that no run reuses another's realignment."""
    from orchestrator.experiment import experiment_from_dict

    raw = small_pos_experiment(strategies=[strategy], schedules=[schedule], cache=str(tmp_path / f"cache-{name}"))
    [spec] = experiment_from_dict(raw).trials
    return spec


EVERY_2_STEPS = CheckpointPolicy(every_steps=2, every_minutes=None)


def interrupted(spec, root: Path, phase: str, count: int, copies: Path | None = None):
    """Run ``spec`` checkpointing every 2 steps until its ``count``-th ``phase`` checkpoint; then
    raise. Returns the checkpoints seen (and copies each one under ``copies``, oldest first)."""
    from trainables.trial import run_trial

    seen = []

    def on_checkpoint(metrics, directory):
        seen.append((metrics["phase"], metrics["epoch"], metrics["step"]))
        if copies is not None:
            shutil.copytree(directory, copies / f"{len(seen):02d}")
        if sum(p == phase for p, _, _ in seen) == count:
            raise Interrupt()

    with pytest.raises(Interrupt):
        run_trial(spec, checkpoint_root=root, on_checkpoint=on_checkpoint, policy=EVERY_2_STEPS, log=quiet)
    return seen


def same_outcome(resumed, uninterrupted):
    assert resumed["metrics"] == uninterrupted["metrics"]
    assert resumed["english"] == uninterrupted["english"]
    for key in ("train_loss", "realign_steps", "realign_loss_first", "realign_loss_last", "realign_pairs"):
        assert resumed["provenance"].get(key) == uninterrupted["provenance"].get(key), key


@pytest.mark.slow
def test_a_trial_interrupted_mid_realignment_resumes_there_to_the_same_metrics(tmp_path):
    from trainables.trial import run_trial

    uninterrupted = run_trial(spec_of(tmp_path, "whole", "front"), log=quiet)
    spec = spec_of(tmp_path, "cut", "front")
    seen = interrupted(spec, tmp_path / "work", "realigning", 2)
    assert seen == [("realigning", -1, 2), ("realigning", -1, 4)]    # 6 steps: the 6th ends the phase
    assert checkpoint_phase(tmp_path / "work" / "realigning")["position"] == "realignment step 4/6"
    messages = []
    resumed = run_trial(spec, resume_from=tmp_path / "work" / "realigning", log=messages.append)
    assert any("realignment step 4/6 done" in m for m in messages)
    assert any(m.startswith("realigning") and "from step 4" in m for m in messages)
    assert resumed["provenance"]["resumed_from"] == "realigning step 4"
    same_outcome(resumed, uninterrupted)


@pytest.mark.slow
@pytest.mark.parametrize("strategy, schedule, count, fine_tuning_checkpoints", [
    # 2 of epoch 1's 3 steps done
    ("back", "before", 1, [("finetuning", -1, 2)]),
    # 1 of epoch 2's steps done: the realignment stream and the head continue too; the epoch
    # end checkpoints anyway (global step 3), so no mid-epoch checkpoint is taken there
    ("front", "during", 2, [("finetuning", -1, 2), ("finetune", 0, 0), ("finetuning", 0, 1)]),
])
def test_a_trial_interrupted_mid_epoch_resumes_there_to_the_same_metrics(tmp_path, strategy, schedule, count,
                                                                         fine_tuning_checkpoints):
    from trainables.trial import run_trial

    uninterrupted = run_trial(spec_of(tmp_path, "whole", strategy, schedule), log=quiet)
    spec = spec_of(tmp_path, "cut", strategy, schedule)
    seen = interrupted(spec, tmp_path / "work", "finetuning", count)
    assert [c for c in seen if c[0].startswith("finetun")] == fine_tuning_checkpoints
    _, last_epoch, step = fine_tuning_checkpoints[-1]
    epoch = last_epoch + 1     # the epoch in progress, 0-based
    phase = checkpoint_phase(tmp_path / "work" / "finetuning")
    assert (phase["epoch"], phase["step"]) == (epoch - 1, step)
    messages = []
    resumed = run_trial(spec, resume_from=tmp_path / "work" / "finetuning", log=messages.append)
    assert any(f"fine-tuning epoch {epoch + 1}, step {step}/3 done" in m for m in messages)
    same_outcome(resumed, uninterrupted)


@pytest.mark.slow
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path):
    from trainables.trial import run_trial

    uninterrupted = run_trial(spec_of(tmp_path, "whole", "back"), log=quiet)
    spec = spec_of(tmp_path, "cut", "back")
    interrupted(spec, tmp_path / "work", "finetuning", 2, copies=tmp_path / "copies")
    newest_first = sorted((tmp_path / "copies").iterdir(), reverse=True)
    assert [checkpoint_phase(c)["phase"] for c in newest_first] == \
        ["finetuning", "finetune", "finetuning", "realigned", "realigning", "realigning"]
    truncate(newest_first[0] / CHECKPOINT_FILE)
    messages = []
    resumed = run_trial(spec, resume_from=newest_first, log=messages.append)
    [warning] = [m for m in messages if m.startswith("WARNING")]
    assert str(newest_first[0]) in warning and "truncated" in warning and "previous one" in warning
    assert any("resuming" in m and "1 fine-tuning epoch(s) done" in m for m in messages)
    [damaged] = resumed["provenance"]["damaged_checkpoints"]
    assert damaged["checkpoint"] == str(newest_first[0])
    same_outcome(resumed, uninterrupted)

    # every checkpoint damaged: the trial starts over, with a warning for each
    for copy in newest_first[1:]:
        (copy / COMPLETE_FILE).unlink()
    messages = []
    restarted = run_trial(spec, resume_from=newest_first, log=messages.append)
    assert sum(m.startswith("WARNING") for m in messages) == len(newest_first)
    assert "starts from the beginning" in [m for m in messages if m.startswith("WARNING")][-1]
    assert "resumed_from" not in restarted["provenance"]
    same_outcome(restarted, uninterrupted)


@pytest.mark.slow
def test_final_weights_are_written_as_safetensors(tmp_path):
    from safetensors.torch import load_file

    from trainables.trial import run_trial

    spec = spec_of(tmp_path, "final", "baseline")
    run_trial(spec, final_weights=tmp_path / "final", log=quiet)
    assert damage(tmp_path / "final") is None
    weights = load_file(str(tmp_path / "final" / FINAL_WEIGHTS_FILE))
    assert any(name.startswith("encoder.") for name in weights) and len(weights) > 10


# ------------------------------------------------------------ through Ray
@pytest.mark.slow
def test_a_run_killed_mid_copy_resumes_from_the_checkpoint_before_and_keeps_only_the_weights(tmp_path, capsys):
    """The measured failure: a driver killed while Ray copies a checkpoint leaves a truncated
    ``trial_state.pt`` beside the complete one before it (simulated by copying the newest
    complete checkpoint to the next number and cutting it in half). The rerun skips it with a
    warning, resumes from the one before, ends with an uninterrupted run's metrics, and keeps
    only the fine-tuned weights (``keep: final``): no checkpoint, no working copy left."""
    from orchestrator.cli import main
    from orchestrator.experiment import load_experiment_file
    from trainables.trial import run_trial

    raw = small_pos_experiment(strategies=["back"], seeds=[3])
    raw["finetune"]["epochs"] = 3
    raw["checkpoint"] = {"every_steps": 2, "keep": "final"}
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    output = tmp_path / "out"
    storage = output / "ray"
    process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "run", str(path), "--output", str(output)],
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:    # a complete checkpoint inside fine-tuning is in storage
            found = [c for c in storage.glob("*/*/checkpoint_*") if damage(c, thorough=False) is None
                     and (checkpoint_phase(c) or {}).get("phase", "").startswith("finetun")]
            if found:
                break
            assert process.poll() is None, "the run ended before it could be interrupted"
            time.sleep(0.2)
        else:
            pytest.fail("no fine-tuning checkpoint appeared")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    [trial_dir] = storage.glob("*/*_s3_*")
    # the killed run's working copy (its checkpoints' local directory) is still there
    deadline = time.time() + 30
    while not (stale := [p for p in Path("/tmp").glob(f"{WORK_PREFIX}*") if p.is_dir() and not _alive(p)]):
        assert time.time() < deadline, "the killed trial left no working copy: nothing to clean up"
        time.sleep(0.5)
    complete = latest_checkpoint(storage, trial_dir.name)
    number = int(complete.name.rsplit("_", 1)[1])
    cut = complete.parent / f"checkpoint_{number + 1:06d}"
    shutil.copytree(complete, cut)
    truncate(cut / CHECKPOINT_FILE)
    os.utime(cut / CHECKPOINT_FILE)
    assert trial_checkpoints(storage, trial_dir.name)[0] == cut

    assert main(["run", str(path), "--output", str(output)]) == 0
    [result] = [json.loads(p.read_text()) for p in (output / "results").glob("*.json")]
    provenance = result["provenance"]
    assert provenance["damaged_checkpoints"][0]["checkpoint"] == str(cut)
    assert "truncated" in provenance["damaged_checkpoints"][0]["problem"]
    assert re.match(r"(realigning step|realigned|finetuning epoch|finetune epoch)", provenance["resumed_from"])
    # only the fine-tuned weights stay; no checkpoint of the trial, no working copy of the killed run
    assert (output / "results" / f"{result['trial_id']}.safetensors").is_file()
    assert not list(storage.glob(f"*/{result['trial_id']}/checkpoint_*"))
    assert not [p for p in stale if p.exists()]

    [spec] = load_experiment_file(path).trials
    uninterrupted = run_trial(spec, log=quiet)
    assert result["metrics"] == uninterrupted["metrics"] and result["english"] == uninterrupted["english"]


def _alive(directory: Path) -> bool:
    """Whether the process that made working directory ``directory`` runs (other names: assumed so)."""
    from trainables.checkpoint_layout import _host

    match = re.match(re.escape(f"{WORK_PREFIX}{_host()}-") + r"(\d+)-", directory.name)
    if match is None:
        return True
    from trainables.processes import process_alive

    return process_alive(int(match.group(1)))
