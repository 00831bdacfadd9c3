"""The training loops' bookkeeping: tokens fed per phase (real and padded), exact across a resume,
length-grouped trials resumed mid-epoch and mid-realignment, evaluation under the training precision."""

from __future__ import annotations

import time

import pytest
import torch

from trainables.checkpoint_policy import CheckpointPolicy

from trial_fixtures import small_pos_experiment


def quiet(_: str) -> None:
    pass


def spec_of(tmp_path, name: str, strategy: str, schedule: str = "before", batching: str | None = None,
            **overrides):
    from orchestrator.experiment import experiment_from_dict

    raw = small_pos_experiment(strategies=[strategy], schedules=[schedule], cache=str(tmp_path / f"cache-{name}"),
                               **overrides)
    if batching is not None:
        raw["finetune"]["batching"] = batching
        raw["realignment"]["batching"] = batching
    [spec] = experiment_from_dict(raw).trials
    return spec


class Interrupt(Exception):
    pass


def interrupted_then_resumed(spec, root, phase: str, count: int):
    """Run ``spec`` checkpointing every 2 steps, stop at its ``count``-th ``phase`` checkpoint, resume."""
    from trainables.trial import run_trial

    seen = []

    def on_checkpoint(metrics, directory):
        seen.append(metrics["phase"])
        if seen.count(phase) == count:
            raise Interrupt()

    with pytest.raises(Interrupt):
        run_trial(spec, checkpoint_root=root, on_checkpoint=on_checkpoint,
                  policy=CheckpointPolicy(every_steps=2, every_minutes=None), log=quiet)
    return run_trial(spec, resume_from=root / phase, log=quiet)


@pytest.mark.slow
def test_evaluation_runs_under_the_training_precision(tmp_path):
    """bf16 on CPU: the task model's head sees bfloat16 states at evaluation too."""
    from trainables.trial import TrialRunner

    spec = spec_of(tmp_path, "bf16", "baseline", precision="bf16")
    runner = TrialRunner(spec, log=quiet)
    runner.started = time.perf_counter()
    runner._setup()
    model = runner.task.build_model(runner.encoder).to(runner.device)
    seen = []
    model.head.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    results = runner._evaluate(model)
    assert seen and set(seen) == {torch.bfloat16}
    assert set(results) == {"en", "fr", "ru"} and all(0 <= r["accuracy"] <= 1 for r in results.values())


@pytest.mark.slow
@pytest.mark.parametrize("strategy, schedule, phase, count", [
    ("front", "before", "realigning", 2),     # stopped at realignment step 4 of 6
    ("front", "during", "finetuning", 2),     # stopped inside epoch 2, the stream skipped to its batch
])
def test_length_grouped_trials_resume_to_the_same_metrics_and_token_counts(tmp_path, strategy, schedule, phase,
                                                                           count):
    from trainables.trial import run_trial

    uninterrupted = run_trial(spec_of(tmp_path, "whole", strategy, schedule, "length_grouped"), log=quiet)
    resumed = interrupted_then_resumed(spec_of(tmp_path, "cut", strategy, schedule, "length_grouped"),
                                       tmp_path / "work", phase, count)
    assert resumed["provenance"]["resumed_from"].startswith(phase)
    assert resumed["metrics"] == uninterrupted["metrics"] and resumed["english"] == uninterrupted["english"]
    assert resumed["provenance"]["train_loss"] == uninterrupted["provenance"]["train_loss"]
    assert resumed["provenance"]["tokens"] == uninterrupted["provenance"]["tokens"]
    assert uninterrupted["provenance"]["tokens"]["realign"]["real"] > 0


@pytest.mark.slow
def test_token_counts_of_a_trial_and_of_its_resumed_copy(tmp_path):
    """Fine-tuning feeds every feature once an epoch; grouping pads less; a resume adds up the same."""
    from trainables.trial import TrialRunner, run_trial

    results = {batching: run_trial(spec_of(tmp_path, batching, "back", batching=batching), log=quiet)
               for batching in ("random", "length_grouped")}
    runner = TrialRunner(spec_of(tmp_path, "count", "back"), log=quiet)
    runner.started = time.perf_counter()
    runner._setup()
    epochs = runner.settings.epochs
    real = epochs * sum(len(f["input_ids"]) for f in runner.features)
    tokens = {batching: result["provenance"]["tokens"] for batching, result in results.items()}
    assert tokens["random"]["finetune"]["real"] == tokens["length_grouped"]["finetune"]["real"] == real
    assert real < tokens["length_grouped"]["finetune"]["padded"] < tokens["random"]["finetune"]["padded"]
    assert 0 < tokens["length_grouped"]["realign"]["real"] < tokens["length_grouped"]["realign"]["padded"]
    assert (tokens["length_grouped"]["realign"]["padded"] / tokens["length_grouped"]["realign"]["real"]
            < tokens["random"]["realign"]["padded"] / tokens["random"]["realign"]["real"])
    resumed = interrupted_then_resumed(spec_of(tmp_path, "cut", "back"), tmp_path / "work", "finetuning", 1)
    assert resumed["provenance"]["tokens"] == tokens["random"]
    assert resumed["metrics"] == results["random"]["metrics"]
