"""trainables/device_settings.py: what each precision switches on, the compile switch, and what a result records."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from orchestrator.experiment import experiment_from_dict
from trainables import device_settings
from trainables.errors import SpecError
from trainables.trial import run_trial
from trainables.trial_spec import canonical_definition

from trial_fixtures import small_pos_experiment

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def ieee_matmuls_after():
    yield
    torch.set_float32_matmul_precision("highest")


@pytest.mark.parametrize("precision, autocast", [("fp32", None), ("tf32", None), ("bf16", "bf16")])
def test_each_precision_on_the_cpu(precision, autocast):
    used = device_settings.configure(CPU, precision)
    assert used == {"precision": precision, "autocast": autocast, "tf32_matmul": False,   # no TF32 on a CPU
                    "fused_optimizer": True, "pinned_memory": False, "compile": False}
    assert device_settings.autocast_dtype(precision) == (torch.bfloat16 if precision == "bf16" else None)
    assert torch.get_float32_matmul_precision() == "highest"


def test_tf32_on_an_ampere_gpu_sets_the_matmul_flags_and_fp32_resets_them(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    monkeypatch.setattr(device_settings, "fused_optimizer", lambda device: True)
    assert device_settings.configure(cuda, "tf32")["tf32_matmul"] is True
    assert torch.backends.cuda.matmul.fp32_precision == "tf32"
    assert torch.get_float32_matmul_precision() == "high"       # what torch.compile reads
    # a worker process runs an fp32 trial after a tf32 one: IEEE matmuls again
    assert device_settings.configure(cuda, "fp32")["tf32_matmul"] is False
    assert torch.backends.cuda.matmul.fp32_precision == "ieee"
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))   # a V100: no TF32
    assert device_settings.configure(cuda, "tf32")["tf32_matmul"] is False


def test_bf16_on_a_gpu_without_it_and_an_unknown_precision_are_one_line_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100-SXM2-16GB")
    with pytest.raises(SpecError, match="^precision bf16: the GPU Tesla V100-SXM2-16GB has no native bfloat16"):
        device_settings.configure(torch.device("cuda"), "bf16")
    with pytest.raises(SpecError, match="unknown precision 'fp16'"):
        device_settings.configure(CPU, "fp16")


def test_compile_model_compiles_in_place_and_keeps_the_state_dict_keys():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    keys = list(model.state_dict())
    assert device_settings.compile_model(model, False) is model and model._compiled_call_impl is None
    assert device_settings.compile_model(model, True) is model and model._compiled_call_impl is not None
    assert list(model.state_dict()) == keys


def test_the_tiny_models_load_with_sdpa():
    from trainables.models import attention_implementation, load_encoder

    for name in ("tiny-mbert", "tiny-distilmbert", "tiny-xlmr"):
        assert attention_implementation(load_encoder(name)[0]) == "sdpa", name


def test_an_architecture_without_sdpa_loads_with_its_default_and_other_errors_pass():
    from trainables import models

    asked = []

    class Auto:
        @staticmethod
        def from_pretrained(location, **kwargs):
            asked.append(kwargs.get("attn_implementation"))
            if location == "broken":
                raise ValueError("config.json is not valid JSON")
            if "attn_implementation" in kwargs:
                raise ValueError("XModel does not support an attention implementation through "
                                 "torch.nn.functional.scaled_dot_product_attention yet.")
            return "model", {}

    assert models._pretrained_with_sdpa(Auto, "x", {}) == ("model", {}) and asked == ["sdpa", None]
    with pytest.raises(ValueError, match="not valid JSON"):
        models._pretrained_with_sdpa(Auto, "broken", {})


# -------------------------------------------------------------- experiment and spec
def test_precision_and_compile_are_validated_in_the_experiment():
    with pytest.raises(SpecError, match="precision must be one of fp32, tf32, bf16, got 'fp16'"):
        experiment_from_dict(small_pos_experiment(precision="fp16"))
    with pytest.raises(SpecError, match="^compile must be true or false, got 'yes'$"):
        experiment_from_dict(small_pos_experiment(compile="yes"))


def test_compile_is_part_of_the_identity_only_when_on():
    def spec(**overrides):
        [only] = experiment_from_dict(small_pos_experiment(strategies=["baseline"], **overrides)).trials
        return only

    default, written_off, compiled = spec(), spec(compile=False), spec(compile=True)
    assert compiled.compile is True and default.compile is False
    assert "compile" not in canonical_definition(default)       # the keys made before the switch stay
    assert written_off.key == default.key and compiled.key != default.key
    assert spec(precision="tf32").key != default.key
    with pytest.raises(SpecError, match="compile must be true or false"):
        from trainables.trial_spec import validate
        validate(dataclasses.replace(default, compile="no"), check_files=False)


# -------------------------------------------------------------- a trial's provenance
def short_trial(**overrides):
    raw = small_pos_experiment(strategies=["baseline"], **overrides)
    raw["finetune"].update({"epochs": 1, "max_train_examples": 16, "max_eval_examples": 8})
    [spec] = experiment_from_dict(raw).trials
    return spec


def test_a_result_records_the_acceleration_it_ran_with():
    result = run_trial(short_trial(precision="bf16"), log=lambda _: None)
    assert result["provenance"]["acceleration"] == {
        "precision": "bf16", "autocast": "bf16", "tf32_matmul": False, "fused_optimizer": True,
        "pinned_memory": False, "compile": False, "attention": "sdpa"}


@pytest.mark.slow
def test_a_compiled_trial_runs_to_the_end_with_its_weights_under_their_own_names(tmp_path):
    # about a minute on one CPU: torch.compile builds C++ kernels for the forward and the backward
    from safetensors.torch import load_file

    from trainables.checkpoint_layout import FINAL_WEIGHTS_FILE

    result = run_trial(short_trial(compile=True), log=lambda _: None, final_weights=tmp_path / "weights")
    assert result["provenance"]["acceleration"]["compile"] is True
    assert set(result["metrics"]) == {"fr", "ru"}
    names = set(load_file(str(tmp_path / "weights" / FINAL_WEIGHTS_FILE)))
    assert "encoder.embeddings.word_embeddings.weight" in names and not any("_orig_mod" in n for n in names)
