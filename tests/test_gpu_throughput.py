"""benchmarks/gpu_throughput.py: its FLOPs formula, its peak table, a small run on the CPU, the grid estimate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import gpu_throughput as benchmark  # noqa: E402

from trial_fixtures import small_pos_experiment  # noqa: E402


def hand_config(layout: str = "bert"):
    """n = 2 blocks, d = 4, f = 8."""
    from transformers import BertConfig, DistilBertConfig

    if layout == "distilbert":
        return DistilBertConfig(vocab_size=10, dim=4, n_layers=2, n_heads=1, hidden_dim=8)
    return BertConfig(vocab_size=10, hidden_size=4, num_hidden_layers=2, num_attention_heads=1, intermediate_size=8)


@pytest.mark.parametrize("layout", ["bert", "distilbert"])
def test_the_flops_formula_on_a_hand_computed_config(layout):
    config = hand_config(layout)
    # P = n (4 d^2 + 2 d f) = 2 (64 + 64)
    assert benchmark.matmul_parameters(config) == 256
    # fine-tuning, S = 2 sentences of L = 3 (T = 6), C = 5 labels:
    # 6 P T = 9216; attention 12 n S L^2 d = 12 * 2 * 2 * 9 * 4 = 1728; head 6 d C T = 720
    assert benchmark.finetune_step_flops(config, 2, 3, 5) == 9216 + 1728 + 720
    # realignment, 1 pair (S = 2, T = 6), the loss on hidden state 1 (backward through block 1 only),
    # 2 words a sentence (W = 4), 2 links (4 queries), r = 3:
    # forward 2 P T + 4 n S L^2 d = 3072 + 576; backward of one block 4 (P / n) T + 8 S L^2 d = 3072 + 576;
    # head 6 (d^2 + d r) W = 6 * 28 * 4 = 672; similarities 6 * 4 * 4 * 3 = 288
    assert benchmark.realign_step_flops(config, 1, 3, 2, 2, 3, hidden_state=1) == 3072 + 576 + 3072 + 576 + 672 + 288
    # a backward through every block is 3x the forward
    assert benchmark.encoder_flops(config, 2, 3) == 3 * benchmark.encoder_flops(config, 2, 3, backward_blocks=0)


def test_the_paper_configs_have_the_sizes_the_planner_counts():
    import torch

    from orchestrator.model_costs import PAPER_MODEL_SHAPES

    for name in benchmark.MODELS:
        encoder = benchmark.build_encoder(benchmark.encoder_config(name), torch.device("meta"))
        shape = PAPER_MODEL_SHAPES[benchmark.HUB_NAMES[name][0]]
        assert sum(p.numel() for p in encoder.parameters()) == shape.stored_parameters, name
        assert encoder.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("device_name, precision, peak", [
    ("NVIDIA H100 80GB HBM3", "bf16", 989.5), ("NVIDIA H100 PCIe", "bf16", 756.5),
    ("NVIDIA H200", "tf32", 494.5), ("NVIDIA A100-SXM4-40GB", "fp32", 19.5), ("NVIDIA A100 80GB PCIe", "bf16", 312),
    ("NVIDIA L4", "bf16", 121), ("NVIDIA L40S", "bf16", 362.05), ("NVIDIA A10G", "fp32", 31.2),
    ("Tesla V100-SXM2-16GB", "fp32", 15.7), ("Tesla V100-SXM2-16GB", "bf16", None),
    ("NVIDIA GeForce RTX 4090", "bf16", 165.2), ("CPU (x86_64, 2 threads)", "fp32", None),
])
def test_peak_flops_come_from_the_table_by_device_name(device_name, precision, peak):
    assert benchmark.device_peak(device_name, precision, None)[0] == peak
    assert benchmark.device_peak(device_name, precision, 7.5) == (7.5, "--peak-tflops")


def test_a_small_run_on_the_cpu_reports_every_figure(tmp_path, capsys):
    out = tmp_path / "figures.json"
    returned = benchmark.main(["--small", "--models", "distilmbert", "--precisions", "fp32,bf16", "--steps", "1",
                               "--warmup", "0", "--device", "cpu", "--threads", "1", "--peak-tflops", "1", "--json", str(out)])
    written = json.loads(out.read_text())
    assert written["results"] == json.loads(json.dumps(returned["results"], default=str))
    rows = written["results"]
    assert {(r["phase"], r["precision"]) for r in rows} == {(p, q) for p in ("realign", "finetune")
                                                           for q in ("fp32", "bf16")}
    for row in rows:
        for key in ("step_s", "tokens_per_s", "sequences_per_s", "flops_per_step", "achieved_tflops", "mfu",
                    "peak_memory_mb"):
            assert row[key] > 0, key
        assert row["tokens_per_s"] == pytest.approx(32 * 96 / row["step_s"])
        assert row["memory"] == "process peak RSS"
        assert row["acceleration"]["attention"] == "sdpa" and row["acceleration"]["fused_optimizer"] is True
        assert row["acceleration"]["autocast"] == ("bf16" if row["precision"] == "bf16" else None)
    printed = capsys.readouterr().out
    assert "step ms" in printed and "MFU" in printed and "peak fp32: 1 TFLOP/s, --peak-tflops" in printed


def test_bad_arguments_are_one_line_errors(capsys):
    with pytest.raises(SystemExit):
        benchmark.parse_arguments(["--precisions", "fp16"])
    assert "unknown precision 'fp16'" in capsys.readouterr().err


def test_the_grid_estimate_turns_measured_steps_into_the_planners_throughput(tmp_path):
    from orchestrator.experiment import load_experiment_file
    from orchestrator.plan import build_plan

    raw = small_pos_experiment(models=["bert-base-multilingual-cased", "distilbert-base-multilingual-cased"],
                               strategies=["baseline", "full"])
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")

    def row(phase: str, step_s: float) -> benchmark.Measurement:
        return benchmark.Measurement("mbert", phase, "bf16", 32, 96, step_s, step_s, 1.0, 1.0, 1.0, 1.0, None,
                                     None, 1.0, "cuda max allocated", {})

    grid = benchmark.grid_estimate(path, [row("finetune", 0.1), row("realign", 0.4)], "bf16", "GPU X", False)
    models = {m["model"]: m for m in grid["models"]}
    mbert, distil = models["bert-base-multilingual-cased"], models["distilbert-base-multilingual-cased"]
    assert mbert["finetune_seq_per_s"] == pytest.approx(320) and mbert["realign_pairs_per_s"] == pytest.approx(40)
    assert mbert["throughput"] == "measured (GPU X, bf16)"
    # the same plan from the planner's estimates, scaled by the throughput ratios
    estimate = {m.model: m for m in build_plan(load_experiment_file(path)).models}
    planned = estimate["bert-base-multilingual-cased"]
    assert mbert["finetune_h"] == pytest.approx(planned.finetune_h * planned.throughput.finetune_seq_per_s / 320)
    assert mbert["realign_h"] == pytest.approx(planned.realign_h * planned.throughput.realign_pairs_per_s / 40)
    # a model not measured keeps the planner's estimate
    assert distil["throughput"] == "estimate"
    assert distil["total_h"] == pytest.approx(estimate["distilbert-base-multilingual-cased"].total_h)
    assert grid["total_h"] == pytest.approx(mbert["total_h"] + distil["total_h"])
