"""Training curves: the trial writes TensorBoard event files on the optimizer-step axis, continued
across resumes (no overlap, no restart at 0); read back as TensorBoard shows them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from trainables.training_curves import (
    NO_CURVES,
    TrainingCurves,
    curves_directories,
    read_curves,
)


def test_points_every_n_steps_and_the_last_with_mean_losses(tmp_path):
    curves = TrainingCurves(tmp_path, every=2)
    phase = curves.phase("finetune", total_steps=5)
    for step in range(1, 6):
        phase.add(10, task=torch.tensor(float(step)))
        if phase.due(step):
            phase.log(step, 0.5, torch.tensor(3.0))
    curves.close()
    read = read_curves(tmp_path / "finetune")
    assert read["loss/task"] == [(2, 1.5), (4, 3.5), (5, 5.0)]     # means since the previous point
    assert read["optimizer/learning_rate"] == [(2, 0.5), (4, 0.5), (5, 0.5)]
    assert read["optimizer/grad_norm"] == [(2, 3.0), (4, 3.0), (5, 3.0)]
    assert [s for s, v in read["throughput/tokens_per_s"]] == [2, 4, 5]
    assert all(v > 0 for s, v in read["throughput/tokens_per_s"])
    assert curves_directories(tmp_path) == [tmp_path / "finetune"]


def test_a_resumed_phase_replaces_the_points_after_its_checkpoint(tmp_path):
    first = TrainingCurves(tmp_path, every=1).phase("realignment", total_steps=6)
    for step in range(1, 6):           # a killed attempt got to step 5; its checkpoint says step 3
        first.add(1, realignment=torch.tensor(100.0 + step))
        first.log(step)
    first.close()
    second = TrainingCurves(tmp_path, every=1).phase("realignment", total_steps=6, first_step=3)
    for step in range(4, 7):
        second.add(1, realignment=torch.tensor(200.0 + step))
        second.log(step)
    second.close()
    assert read_curves(tmp_path / "realignment")["loss/realignment"] == [
        (1, 101.0), (2, 102.0), (3, 103.0), (4, 204.0), (5, 205.0), (6, 206.0)]


def test_no_curves_write_nothing(tmp_path):
    phase = NO_CURVES.phase("finetune", total_steps=3)
    assert not phase.due(3)
    phase.add(5, task=torch.tensor(1.0))
    phase.log(3, 0.1)
    assert not list(tmp_path.iterdir())


def quiet(_: str) -> None:
    pass


class Interrupt(Exception):
    pass


def spec_of(tmp_path: Path, name: str, strategy: str, schedule: str):
    from trial_fixtures import small_pos_experiment

    from orchestrator.experiment import experiment_from_dict

    raw = small_pos_experiment(strategies=[strategy], schedules=[schedule], cache=str(tmp_path / f"cache-{name}"))
    [spec] = experiment_from_dict(raw).trials
    return spec


@pytest.mark.slow
@pytest.mark.parametrize("schedule, resumed_phase", [("before", "realigning"), ("during", "finetuning")])
def test_a_resumed_trial_continues_its_curves_from_the_checkpointed_step(tmp_path, schedule, resumed_phase):
    """A tiny trial (6 realignment steps, 2 epochs x 3 fine-tuning steps) killed two checkpoints in,
    resumed from the first: every step once, equal to an uninterrupted run's."""
    from trainables.checkpoint_policy import CheckpointPolicy
    from trainables.trial import run_trial

    whole = run_trial(spec_of(tmp_path, "whole", "front", schedule), log=quiet,
                      curves=TrainingCurves(tmp_path / "whole", every=1))
    spec = spec_of(tmp_path, "cut", "front", schedule)
    seen = []

    def on_checkpoint(metrics, directory):
        if metrics["phase"] == resumed_phase:
            seen.append(metrics["step"])
            if len(seen) == 1:
                shutil.copytree(directory, tmp_path / "first")
            else:
                raise Interrupt()

    policy = CheckpointPolicy(every_steps=2, every_minutes=None)
    with pytest.raises(Interrupt):
        run_trial(spec, checkpoint_root=tmp_path / "work", on_checkpoint=on_checkpoint, policy=policy,
                  log=quiet, curves=TrainingCurves(tmp_path / "cut", every=1))
    resumed = run_trial(spec, resume_from=tmp_path / "first", log=quiet,
                        curves=TrainingCurves(tmp_path / "cut", every=1))
    assert resumed["metrics"] == whole["metrics"]
    phases = ["finetune"] + (["realignment"] if schedule == "before" else [])
    assert [p.name for p in curves_directories(tmp_path / "cut")] == sorted(phases)
    for phase in phases:
        cut, uncut = read_curves(tmp_path / "cut" / phase), read_curves(tmp_path / "whole" / phase)
        losses = "loss/realignment" if phase == "realignment" else "loss/task"
        assert [s for s, _ in cut[losses]] == [1, 2, 3, 4, 5, 6]
        assert [v for _, v in cut[losses]] == pytest.approx([v for _, v in uncut[losses]])
        assert [s for s, _ in cut["optimizer/grad_norm"]] == [1, 2, 3, 4, 5, 6]
        assert cut["optimizer/learning_rate"] == uncut["optimizer/learning_rate"]
    finetune = read_curves(tmp_path / "cut" / "finetune")
    if schedule == "during":
        assert [s for s, _ in finetune["loss/realignment"]] == [1, 2, 3, 4, 5, 6]
    for language in ("en", "fr", "ru"):
        assert finetune[f"test/{language}/accuracy"] == [(6, pytest.approx(
            (resumed["english"] if language == "en" else resumed["metrics"][language])["accuracy"]))]
    assert finetune["test/average/accuracy"] == [(6, pytest.approx(resumed["average"]["accuracy"]))]
