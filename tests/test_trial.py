"""One trial end to end without Ray: determinism, phases, resume after a crash."""

from __future__ import annotations

import pytest
import torch

from orchestrator.experiment import experiment_from_dict
from trainables.checkpoint_layout import checkpoint_phase
from trainables.trial import CHECKPOINT_FILE, run_trial

from trial_fixtures import small_nli_experiment, small_pos_experiment

pytestmark = pytest.mark.slow


def trial(strategy: str, schedule: str = "before"):
    experiment = experiment_from_dict(small_pos_experiment(strategies=[strategy], schedules=[schedule]))
    [spec] = experiment.trials
    return spec


def quiet(_: str) -> None:
    pass


def test_same_seed_same_metrics_and_a_complete_report():
    spec = trial("front")
    first = run_trial(spec, log=quiet)
    second = run_trial(spec, log=quiet)
    assert first["metrics"] == second["metrics"]
    assert first["english"] == second["english"]
    assert set(first["metrics"]) == {"fr", "ru"}
    assert first["average"]["accuracy"] == pytest.approx(
        (first["metrics"]["fr"]["accuracy"] + first["metrics"]["ru"]["accuracy"]) / 2)
    provenance = first["provenance"]
    # "auto": as many realignment steps as fine-tuning optimizer steps (48 sentences / 16 x 2 epochs)
    assert provenance["finetune_steps"] == 6 and provenance["realign_steps"] == 6
    assert provenance["seed"] == 3 and provenance["num_blocks"] == 4
    assert {"torch", "transformers"} <= set(provenance["versions"])
    assert {"realign_s", "finetune_s", "evaluate_s", "total_s"} <= set(provenance["timings"])
    assert provenance["realignment_corpus"]["ru"]["pairs"] > 0
    # the paper's settings, recorded: hidden state L-1 of the 4 blocks, one mean over the queries
    assert (provenance["realign_layer"], provenance["realign_hidden_state"]) == ("penultimate", 3)
    assert provenance["realign_loss_reduction"] == "queries"
    assert provenance["realignment_corpus"]["ru"]["pretokenizer"] == "reference"


def test_baseline_skips_realignment():
    result = run_trial(trial("baseline"), log=quiet)
    assert result["provenance"]["realign_steps"] == 0
    assert "realign_s" not in result["provenance"]["timings"]


def test_phases_are_checkpointed_and_a_crashed_trial_resumes_to_the_same_metrics(tmp_path):
    spec = trial("back")
    uninterrupted = run_trial(spec, log=quiet)

    seen = []

    class Crash(Exception):
        pass

    def crash_after_first_epoch(metrics, directory):
        seen.append((metrics["phase"], metrics["epoch"], directory))
        if metrics["phase"] == "finetune":
            raise Crash()

    with pytest.raises(Crash):
        run_trial(spec, checkpoint_root=tmp_path, on_checkpoint=crash_after_first_epoch, log=quiet)
    assert [(phase, epoch) for phase, epoch, _ in seen] == [("realigned", -1), ("finetune", 0)]
    checkpoint = seen[-1][2]
    assert (checkpoint / CHECKPOINT_FILE).exists()
    # the phase is readable without torch, for `alignfreeze status`
    phase = checkpoint_phase(checkpoint)
    assert (phase["phase"], phase["epoch"], phase["epochs"]) == ("finetune", 0, spec.finetune.get("epochs", 2))
    assert phase["trial_id"] == spec.trial_id
    assert not list(tmp_path.glob(".*.tmp")), "a half-written checkpoint was left behind"

    messages = []
    resumed = run_trial(spec, resume_from=checkpoint, checkpoint_root=tmp_path / "again", log=messages.append)
    assert any("resuming" in m and "epoch 2" in m for m in messages)
    assert resumed["metrics"] == uninterrupted["metrics"]
    assert resumed["english"] == uninterrupted["english"]
    assert resumed["provenance"]["realign_steps"] == uninterrupted["provenance"]["realign_steps"]


def crash_after_first_epoch(spec, root):
    """Run ``spec`` until its first fine-tuning checkpoint; return that checkpoint's directory."""
    class Crash(Exception):
        pass

    def crash(metrics, directory):
        if metrics["phase"] == "finetune":
            raise Crash()

    with pytest.raises(Crash):
        run_trial(spec, checkpoint_root=root, on_checkpoint=crash, log=quiet)
    return root / "finetune"


@pytest.mark.parametrize("experiment, strategy, schedule", [
    (small_pos_experiment, "front", "during"),   # the realignment batches continue where they stopped
    (small_nli_experiment, "full", "before"),    # mBERT's pretrained pooler in the encoder's checkpoint
])
def test_resumed_trial_continues_the_same_random_streams(tmp_path, experiment, strategy, schedule):
    [spec] = experiment_from_dict(experiment(strategies=[strategy], schedules=[schedule])).trials
    uninterrupted = run_trial(spec, log=quiet)
    resumed = run_trial(spec, resume_from=crash_after_first_epoch(spec, tmp_path), log=quiet)
    assert resumed["metrics"] == uninterrupted["metrics"]
    assert resumed["english"] == uninterrupted["english"]


def test_resume_after_realignment_skips_realignment(tmp_path):
    spec = trial("full")
    uninterrupted = run_trial(spec, log=quiet)

    def stop_after_realignment(metrics, directory):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_trial(spec, checkpoint_root=tmp_path, on_checkpoint=stop_after_realignment, log=quiet)
    messages = []
    resumed = run_trial(spec, resume_from=tmp_path / "realigned", log=messages.append)
    assert not any(m.startswith("realigning") for m in messages)
    assert resumed["metrics"] == uninterrupted["metrics"]


def test_checkpoint_of_another_spec_is_refused(tmp_path):
    from trainables.errors import SpecError

    def stop(metrics, directory):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_trial(trial("full"), checkpoint_root=tmp_path, on_checkpoint=stop, log=quiet)
    with pytest.raises(SpecError, match="belongs to another trial spec"):
        run_trial(trial("front"), resume_from=tmp_path / "realigned", log=quiet)


def test_during_schedule_with_partial_freeze(monkeypatch):
    """During: the realignment loss leaves the frozen blocks alone, the task loss still trains them."""
    import trainables.trial as trial_module
    from trainables.freezing import frozen as real_frozen

    calls = []

    def spying_frozen(model, names, prefix=""):
        calls.append(frozenset(names))
        return real_frozen(model, names, prefix)

    monkeypatch.setattr("trainables.freezing.frozen", spying_frozen)
    spec = trial("front", schedule="during")
    result = run_trial(spec, log=quiet)
    assert result["provenance"]["realign_steps"] == result["provenance"]["finetune_steps"] == 6
    assert (result["provenance"]["realign_layer"], result["provenance"]["realign_hidden_state"]) == \
        ("penultimate", 3)
    assert len(calls) == 6, "one realignment batch per fine-tuning optimizer step"
    assert all(c and all(n.startswith("encoder.layer.0.") or n.startswith("encoder.layer.1.") for n in c)
               for c in calls)
    del trial_module


def test_realignment_gradient_does_not_reach_frozen_blocks_during_fine_tuning(mbert_tokenizer):
    """The mechanism of the partial-freeze "during" variants, on one step."""
    from transformers import BertConfig, BertModel

    from trainables.freezing import frozen, frozen_parameter_names
    from trainables.realignment.realigner import RealignmentStream, RealignSettings, realignment_loss
    from trainables.realignment.word_pairs import AlignedPair

    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=len(mbert_tokenizer), hidden_size=8, num_hidden_layers=2,
                                   num_attention_heads=2, intermediate_size=16), add_pooling_layer=False)
    settings = RealignSettings(batch_size=1, projection=False, layer="last")   # block 1 takes part
    stream = RealignmentStream({"fr": [AlignedPair("fr", ("a", "cat"), ("un", "chat"), ((1, 1), (0, 0)))]},
                               mbert_tokenizer, settings, seed=0)
    names = frozen_parameter_names(encoder, "front")
    with frozen(encoder, names):
        realignment_loss(encoder, None, stream.next_batch(), settings).backward()
    grads = {n: p.grad for n, p in encoder.named_parameters()}
    assert all(grads[n] is None for n in names)
    assert grads["encoder.layer.1.output.dense.weight"] is not None
