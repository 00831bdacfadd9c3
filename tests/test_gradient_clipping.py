"""Fine-tuning clips no gradient by default, as the reference; ``finetune.clip_grad_norm`` clips at a norm."""

from __future__ import annotations

import pytest
import torch

from orchestrator.experiment import experiment_from_dict
from trainables.errors import SpecError
from trainables.tasks.base import FinetuneSettings
from trainables.trial import finetune_settings, run_trial
from trainables.trial_spec import validate

from trial_fixtures import small_pos_experiment


def baseline_spec(**finetune):
    raw = small_pos_experiment(strategies=["baseline"])
    raw["finetune"].update(finetune)
    [spec] = experiment_from_dict(raw).trials
    return spec


def test_no_clipping_unless_asked():
    assert FinetuneSettings().clip_grad_norm is None
    assert finetune_settings(baseline_spec(), xlmr=False).clip_grad_norm is None
    assert finetune_settings(baseline_spec(clip_grad_norm=None), xlmr=False).clip_grad_norm is None
    assert finetune_settings(baseline_spec(clip_grad_norm=1.0), xlmr=False).clip_grad_norm == 1.0


@pytest.mark.parametrize("value", [0, -1.0, "1.0", True, [1.0]])
def test_bad_clip_grad_norm_is_a_one_line_error(value):
    spec = baseline_spec()
    bad = type(spec).from_dict({**spec.to_dict(), "finetune": {**spec.finetune, "clip_grad_norm": value}})
    with pytest.raises(SpecError, match="finetune.clip_grad_norm must be a number > 0, or null") as error:
        validate(bad, check_files=False)
    assert "\n" not in str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize("finetune, expected", [({}, []), ({"clip_grad_norm": 0.5}, [0.5] * 6)])
def test_the_loop_clips_only_at_the_given_norm(monkeypatch, finetune, expected):
    clipped = []
    real = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *args, **kwargs):
        clipped.append(max_norm)
        return real(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    result = run_trial(baseline_spec(**finetune), log=lambda _: None)
    assert result["provenance"]["finetune_steps"] == 6
    assert clipped == expected
