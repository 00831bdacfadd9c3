"""Training throughput of the paper's encoders at the paper's shapes, on a GPU (or a CPU).

Encoders of the real sizes are built from their configs, with random
weights and nothing downloaded: mBERT base (``mbert``), DistilmBERT
(``distilmbert``) and XLM-R base (``xlmr``). A step is the project's own
code at the paper's shapes, every sequence 96 sub-words long (the
paper's longest, so an upper bound on a step's cost: real batches are
shorter):

- realignment: ``realignment_loss`` (the projection head and the
  contrastive loss on the penultimate hidden state) on 16 sentence pairs,
  i.e. 32 sentences, with --words words a sentence and --links aligned word
  pairs a sentence pair, then Adam (``trainables.optimizers``);
- fine-tuning: the PoS task model (token-classification head, 17 labels)
  on 32 sentences, then AdamW.

Per model, phase and precision (``fp32``, ``tf32``, ``bf16``: as a trial's
``precision`` sets them up, ``trainables.device_settings``) it prints the
median step time over --steps steps after --warmup ones (CUDA synchronized
after each), tokens a second, peak memory (``torch.cuda.max_memory_allocated``
on a GPU; on a CPU the process's peak RSS, which only grows over the
run) and the model FLOPs utilisation: ``step_flops`` (the formula in its
docstring) / step time / the device's peak for that precision
(``PEAK_TFLOPS``, from the vendors' datasheets; n/a for a device not in
the table unless --peak-tflops gives it).

--estimate-grid EXPERIMENT.yaml turns the measured step times into the
planner's throughput figures (fine-tuning sequences and realignment pairs
a second) and prints the device-hours of that grid on this device, per
model and in total, as ``alignfreeze plan --throughput`` would with them.

    python benchmarks/gpu_throughput.py                          # the three models, fp32 and bf16
    python benchmarks/gpu_throughput.py --models mbert --precisions fp32,tf32,bf16 --steps 20
    python benchmarks/gpu_throughput.py --estimate-grid search_spaces/paper.yaml --json gpu.json
    python benchmarks/gpu_throughput.py --small                  # a small config: seconds on a CPU
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MODELS = ("mbert", "distilmbert", "xlmr")
PHASES = ("realign", "finetune")
FINETUNE_BATCH = 32          # sentences (the paper's fine-tuning batch)
REALIGN_PAIRS = 16           # sentence pairs, 32 sentences (the paper's realignment batch)
LENGTH = 96                  # sub-words a sequence (the paper's max_length)
# A sentence of 96 sub-words holds about 64 words (1.2-1.4 sub-words a word in mBERT's
# vocabulary on the bundled text); the dictionary aligner links about one word in seven
# of the bundled Tatoeba pairs with the bundled 3,000-entry dictionaries, more with
# MUSE's full ones: 16 links a pair is in between. The loss costs little either way.
WORDS_PER_SENTENCE = 64
LINKS_PER_PAIR = 16

# The paper's models on the Hub, by the name the benchmark gives them: what a grid file names.
HUB_NAMES = {
    "mbert": ("bert-base-multilingual-cased", "google-bert/bert-base-multilingual-cased"),
    "distilmbert": ("distilbert-base-multilingual-cased", "distilbert/distilbert-base-multilingual-cased"),
    "xlmr": ("xlm-roberta-base", "FacebookAI/xlm-roberta-base"),
}

# Peak dense TFLOP/s by precision, from the vendors' datasheets (the tensor-core
# figures "with sparsity" halved; bf16 with float32 accumulation). fp32: the
# CUDA cores' (no tensor cores); tf32: TF32 tensor cores. First match wins.
PEAK_TFLOPS: list[tuple[str, str, dict[str, float]]] = [
    (r"H200 NVL", "H200 NVL (datasheet)", {"fp32": 60, "tf32": 417.5, "bf16": 835.5}),
    (r"H200", "H200 SXM (datasheet)", {"fp32": 67, "tf32": 494.5, "bf16": 989.5}),
    (r"H100 NVL", "H100 NVL (datasheet)", {"fp32": 60, "tf32": 417.5, "bf16": 835.5}),
    (r"H100.*PCIe", "H100 PCIe (datasheet)", {"fp32": 51, "tf32": 378, "bf16": 756.5}),
    (r"H100", "H100 SXM (datasheet)", {"fp32": 67, "tf32": 494.5, "bf16": 989.5}),
    (r"A100", "A100 40/80 GB, SXM or PCIe (datasheet)", {"fp32": 19.5, "tf32": 156, "bf16": 312}),
    (r"L40S", "L40S (datasheet)", {"fp32": 91.6, "tf32": 183, "bf16": 362.05}),
    (r"\bL4\b", "L4 (datasheet)", {"fp32": 30.3, "tf32": 60, "bf16": 121}),
    (r"A10G", "A10G (the A10's datasheet: NVIDIA publishes none for the A10G)",
     {"fp32": 31.2, "tf32": 62.5, "bf16": 125}),
    (r"\bA10\b", "A10 (datasheet)", {"fp32": 31.2, "tf32": 62.5, "bf16": 125}),
    (r"V100.*PCIE", "V100 PCIe (datasheet; no TF32, no bfloat16)", {"fp32": 14}),
    (r"V100", "V100 SXM2 (datasheet; no TF32, no bfloat16)", {"fp32": 15.7}),
    (r"RTX 4090", "GeForce RTX 4090 (Ada whitepaper)", {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2}),
]


# ------------------------------------------------------------------ models
def encoder_config(name: str, small: bool = False) -> Any:
    """The config of ``name`` at the paper's size, or a small one of the same layout (``small``)."""
    from transformers import BertConfig, DistilBertConfig, XLMRobertaConfig

    if name not in MODELS:
        raise SystemExit(f"unknown model {name!r}: expected one of {', '.join(MODELS)}")
    size = (dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128) if small
            else dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072))
    if name == "mbert":
        return BertConfig(vocab_size=1000 if small else 119_547, max_position_embeddings=512, **size)
    if name == "xlmr":
        return XLMRobertaConfig(vocab_size=1000 if small else 250_002, max_position_embeddings=514,
                                type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0,
                                eos_token_id=2, **size)
    return DistilBertConfig(vocab_size=1000 if small else 119_547, max_position_embeddings=512,
                            dim=size["hidden_size"], n_layers=6 if not small else 2,
                            n_heads=size["num_attention_heads"], hidden_dim=size["intermediate_size"])


def dimensions(config: Any) -> tuple[int, int, int]:
    """(blocks n, width d, feed-forward width f) of a BERT, XLM-R or DistilBERT config."""
    blocks = getattr(config, "num_hidden_layers", None) or config.n_layers
    width = getattr(config, "hidden_size", None) or config.dim
    feed_forward = getattr(config, "intermediate_size", None) or config.hidden_dim
    return int(blocks), int(width), int(feed_forward)


def build_encoder(config: Any, device: Any) -> Any:
    """A randomly initialised encoder (no pooler: the PoS head and the realignment read the states)."""
    import torch
    from transformers import AutoModel

    from trainables.models import ATTENTION

    extra = {"add_pooling_layer": False} if config.model_type in ("bert", "xlm-roberta") else {}
    with torch.device(device):
        encoder = AutoModel.from_config(config, attn_implementation=ATTENTION, **extra)
    return encoder.to(device).train()


# ------------------------------------------------------------------ FLOPs
def matmul_parameters(config: Any) -> int:
    """P: weights of the blocks' matmuls, n (4 d^2 + 2 d f): Q, K, V and output; the feed-forward."""
    blocks, width, feed_forward = dimensions(config)
    return blocks * (4 * width * width + 2 * width * feed_forward)


def encoder_flops(config: Any, sequences: int, length: int, backward_blocks: int | None = None) -> float:
    """Model FLOPs of the encoder on ``sequences`` x ``length`` tokens, forward and backward.

    A multiply-add is 2 FLOPs. With T = sequences x length tokens, per block:
    forward 2 (4 d^2 + 2 d f) T for the weight matmuls plus 4 S L^2 d for the
    attention's Q K^T and A V (S sequences of L tokens); the backward pass
    costs twice the forward (gradients of the inputs and of the weights).
    ``backward_blocks``: blocks the backward pass goes through (all by default;
    realignment reads an inner hidden state, so the blocks above it run forward
    only). Not counted, as is usual for MFU: embeddings (lookups), layer
    norms, softmax, activations, biases, dropout and the optimizer.
    """
    blocks, width, _ = dimensions(config)
    backward_blocks = blocks if backward_blocks is None else backward_blocks
    tokens = sequences * length
    per_block = matmul_parameters(config) // blocks
    forward_block = 2 * per_block * tokens + 4 * sequences * length ** 2 * width
    return blocks * forward_block + backward_blocks * 2 * forward_block


def finetune_step_flops(config: Any, sentences: int, length: int, labels: int) -> float:
    """6 P T + 12 n S L^2 d + 6 d C T: the encoder, then the C-label head on every token."""
    _, width, _ = dimensions(config)
    return encoder_flops(config, sentences, length) + 6 * width * labels * sentences * length


def realign_step_flops(config: Any, pairs: int, length: int, words: int, links: int,
                       projection_dim: int, hidden_state: int) -> float:
    """The encoder on 2 x ``pairs`` sentences, its backward through blocks 1..``hidden_state``;
    the projection head (d x d, then d x r) on the W words: 6 (d^2 + d r) W; the similarities of
    the 2N queries (N links) with the W words: 6 x 2N x W x r."""
    _, width, _ = dimensions(config)
    word_count = 2 * pairs * words
    queries = 2 * pairs * links
    return (encoder_flops(config, 2 * pairs, length, backward_blocks=hidden_state)
            + 6 * (width * width + width * projection_dim) * word_count
            + 6 * queries * word_count * projection_dim)


def device_peak(device_name: str, precision_used: str, override: float | None) -> tuple[float | None, str]:
    """(peak TFLOP/s or None, where it comes from) of the device for the precision used."""
    if override is not None:
        return override, "--peak-tflops"
    for pattern, label, peaks in PEAK_TFLOPS:
        if re.search(pattern, device_name, re.IGNORECASE):
            return peaks.get(precision_used), label
    return None, "unknown device (give --peak-tflops)"


# ------------------------------------------------------------------ batches
def word_positions(length: int, words: int) -> list[int]:
    """First sub-word of each of ``words`` words spread over a sentence, after [CLS], before [SEP]."""
    if words > length - 2:
        raise SystemExit(f"--words {words} does not fit in {length} sub-words")
    return [1 + (i * (length - 2)) // words for i in range(words)]


def realignment_batch(pairs: int, length: int, words: int, links: int, vocab_size: int, seed: int = 0):
    """A ``RealignmentBatch`` of ``pairs`` sentence pairs of ``length`` sub-words, ``links`` links a pair."""
    import torch

    from trainables.realignment.batches import RealignmentBatch

    if links > words:
        raise SystemExit(f"--links {links} exceeds --words {words}")
    generator = torch.Generator().manual_seed(seed)
    sentences = 2 * pairs
    firsts = word_positions(length, words)
    ends = firsts[1:] + [length - 1]
    pairs_of_links = []
    for pair in range(pairs):
        source = torch.randperm(words, generator=generator)[:links] + pair * words
        target = torch.randperm(words, generator=generator)[:links] + (pairs + pair) * words
        pairs_of_links.append(torch.stack([source, target], dim=1))
    return RealignmentBatch(
        input_ids=torch.randint(5, vocab_size, (sentences, length), generator=generator),
        attention_mask=torch.ones(sentences, length, dtype=torch.long),
        word_rows=torch.arange(sentences).repeat_interleave(words),
        word_positions=torch.tensor(firsts).repeat(sentences),
        links=torch.cat(pairs_of_links), num_pairs=pairs,
        word_ends=torch.tensor(ends).repeat(sentences))


def tagging_batch(sentences: int, length: int, words: int, labels: int, vocab_size: int,
                  seed: int = 0) -> dict[str, Any]:
    """A PoS batch: every sentence ``length`` sub-words, a label on each word's first sub-word."""
    import torch

    from trainables.tasks.base import IGNORE_INDEX

    generator = torch.Generator().manual_seed(seed)
    tags = torch.full((sentences, length), IGNORE_INDEX, dtype=torch.long)
    firsts = torch.tensor(word_positions(length, words))
    tags[:, firsts] = torch.randint(0, labels, (sentences, len(firsts)), generator=generator)
    return {"input_ids": torch.randint(5, vocab_size, (sentences, length), generator=generator),
            "attention_mask": torch.ones(sentences, length, dtype=torch.long), "labels": tags}


# ------------------------------------------------------------------ steps
@dataclass
class Measurement:
    model: str
    phase: str
    precision: str
    sequences: int                # sentences a step
    length: int
    step_s: float                 # median
    step_s_min: float
    tokens_per_s: float
    sequences_per_s: float        # fine-tuning: sentences; realignment: sentence pairs
    flops_per_step: float
    achieved_tflops: float
    peak_tflops: float | None
    mfu: float | None
    peak_memory_mb: float
    memory: str                   # "cuda max allocated" | "process peak RSS"
    acceleration: dict[str, Any]


def phase_step(phase: str, encoder: Any, config: Any, device: Any, autocast_dtype: Any, words: int,
               links: int, compile: bool) -> tuple[Callable[[], None], float, int]:
    """(one optimizer step, its model FLOPs, sequences a step) of ``phase``, with the project's code."""
    import torch

    from trainables.device_settings import compile_model, to_device
    from trainables.optimizers import adam
    from trainables.realignment.realigner import (RealignSettings, build_projection_head,
                                                   hidden_state_index, realignment_loss)
    from trainables.tasks.registry import get_task

    blocks, _, _ = dimensions(config)

    def autocast():
        return torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None)

    if phase == "realign":
        settings = RealignSettings()
        head = build_projection_head(encoder, settings).to(device)
        optimizer = adam(list(encoder.parameters()) + list(head.parameters()), settings.learning_rate)
        batch = realignment_batch(REALIGN_PAIRS, LENGTH, words, links, config.vocab_size).to(device)
        flops = realign_step_flops(config, REALIGN_PAIRS, LENGTH, words, links, settings.projection_dim,
                                   hidden_state_index(settings.layer, blocks))
        compile_model(encoder, compile)

        def step() -> None:
            with autocast():
                loss = realignment_loss(encoder, head, batch, settings)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return step, flops, REALIGN_PAIRS

    task = get_task("pos").load()
    model = compile_model(task.build_model(encoder).to(device), compile)
    labels = len(task.labels)
    optimizer = adam(model.parameters(), 2e-5, 0.0, decoupled=True)
    batch = to_device(tagging_batch(FINETUNE_BATCH, LENGTH, words, labels, config.vocab_size), device)

    def step() -> None:
        with autocast():
            loss = task.loss(model(**batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step, finetune_step_flops(config, FINETUNE_BATCH, LENGTH, labels), FINETUNE_BATCH


def synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mb(device: Any) -> tuple[float, str]:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "cuda max allocated"
    from trainables.trial import peak_rss_mb

    return peak_rss_mb(), "process peak RSS"


def measure(name: str, phase: str, precision: str, args: argparse.Namespace, device: Any,
            device_name: str) -> Measurement:
    import torch

    from trainables.device_settings import autocast_dtype, configure

    config = encoder_config(name, args.small)
    acceleration = configure(device, precision, args.compile)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)
    encoder = build_encoder(config, device)
    acceleration["attention"] = encoder.config._attn_implementation
    step, flops, sequences = phase_step(phase, encoder, config, device, autocast_dtype(precision), args.words,
                                        args.links, args.compile)
    for _ in range(args.warmup):
        step()
    synchronize(device)
    times = []
    for _ in range(args.steps):
        started = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - started)
    memory, memory_kind = peak_memory_mb(device)
    median = statistics.median(times)
    used = "bf16" if precision == "bf16" else ("tf32" if acceleration["tf32_matmul"] else "fp32")
    peak, _ = device_peak(device_name, used, args.peak_tflops)
    achieved = flops / median / 1e12
    tokens = (2 * sequences if phase == "realign" else sequences) * LENGTH
    return Measurement(name, phase, precision, tokens // LENGTH, LENGTH, median, min(times), tokens / median,
                       sequences / median, flops, achieved, peak, achieved / peak if peak else None,
                       memory, memory_kind, acceleration)


# ------------------------------------------------------------------ the grid
def grid_estimate(experiment_path: Path, results: list[Measurement], precision: str, device_name: str,
                  small: bool) -> dict[str, Any]:
    """Device-hours of the experiment's grid on this device at ``precision``, from the measured steps.

    The planner's figures (``orchestrator.model_costs.Throughput``): fine-tuning
    sentences a second = 32 / fine-tuning step time, realignment pairs a second =
    16 / realignment step time; a model not measured keeps the planner's estimate.
    Evaluation is scaled from the fine-tuning figure by the planner (FLOPs ratio).
    """
    from orchestrator.experiment import load_experiment_file
    from orchestrator.model_costs import Throughput
    from orchestrator.plan import build_plan

    steps: dict[str, dict[str, Measurement]] = {}
    for row in results:
        if row.precision == precision:
            steps.setdefault(row.model, {})[row.phase] = row
    label = f"measured ({device_name}, {precision}{', SMALL config' if small else ''})"
    throughput = {}
    for model, phases in steps.items():
        if set(phases) == set(PHASES):
            figures = Throughput(FINETUNE_BATCH / phases["finetune"].step_s,
                                 REALIGN_PAIRS / phases["realign"].step_s, label)
            throughput.update({hub: figures for hub in HUB_NAMES[model]})
    plan = build_plan(load_experiment_file(experiment_path), throughput)
    return {"experiment": str(experiment_path), "precision": precision, "device": device_name,
            "small_config": small,
            "models": [{"model": cost.model, "throughput": cost.throughput.source,
                        "finetune_seq_per_s": cost.throughput.finetune_seq_per_s,
                        "realign_pairs_per_s": cost.throughput.realign_pairs_per_s,
                        "trials": cost.trials, "realignments": cost.realignments,
                        "finetune_h": cost.finetune_h, "realign_h": cost.realign_h, "eval_h": cost.eval_h,
                        "total_h": cost.total_h} for cost in plan.models],
            "total_h": plan.total_h}


# ------------------------------------------------------------------ output
def format_results(results: list[Measurement]) -> list[str]:
    header = ["model", "phase", "precision", "step ms", "tokens/s", "seq/s", "TFLOP/s", "MFU", "peak MB"]
    rows = [header]
    for r in results:
        rows.append([r.model, r.phase, r.precision, f"{r.step_s * 1000:,.1f}", f"{r.tokens_per_s:,.0f}",
                     f"{r.sequences_per_s:,.1f}", f"{r.achieved_tflops:,.3f}",
                     "n/a" if r.mfu is None else f"{r.mfu:.1%}", f"{r.peak_memory_mb:,.0f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return ["  ".join(cell.ljust(widths[i]) if i < 3 else cell.rjust(widths[i]) for i, cell in enumerate(row))
            for row in rows]


def format_grid(grid: dict[str, Any]) -> list[str]:
    lines = [f"device-hours of {grid['experiment']} on {grid['device']} at {grid['precision']}"
             + (" (SMALL config: not the paper's models)" if grid["small_config"] else "")]
    for m in grid["models"]:
        lines.append(f"  {m['model']:<36} fine-tuning {m['finetune_h']:8.1f}  realignment {m['realign_h']:8.1f}  "
                     f"evaluation {m['eval_h']:6.1f}  total {m['total_h']:8.1f} h   [{m['throughput']}]")
    lines.append(f"  {'total':<36} {grid['total_h']:.1f} device-hours")
    return lines


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated: {', '.join(MODELS)}")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, tf32, bf16")
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated: realign, finetune")
    parser.add_argument("--steps", type=int, default=20, help="measured steps (the median is reported)")
    parser.add_argument("--warmup", type=int, default=3, help="steps run first and not measured")
    parser.add_argument("--small", action="store_true", help="small configs of the same layouts (CPU tests)")
    parser.add_argument("--words", type=int, default=WORDS_PER_SENTENCE, help="words a sentence")
    parser.add_argument("--links", type=int, default=LINKS_PER_PAIR, help="aligned word pairs a sentence pair")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (warm-up compiles)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's peak TFLOP/s for the precisions run (else the table, if it knows it)")
    parser.add_argument("--estimate-grid", type=Path, default=None, metavar="EXPERIMENT",
                        help="print the device-hours of this experiment's grid from the measured steps")
    parser.add_argument("--throughput-out", type=Path, default=None, metavar="FILE",
                        help="write the measured figures of the first precision for `alignfreeze plan --throughput`")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="write every figure as JSON")
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    from trainables.trial_spec import PRECISIONS

    for value, allowed, what in ((args.models, MODELS, "model"), (args.precisions, PRECISIONS, "precision"),
                                 (args.phases, PHASES, "phase")):
        for item in value:
            if item not in allowed:
                parser.error(f"unknown {what} {item!r}: expected one of {', '.join(allowed)}")
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_arguments(argv)
    import torch

    from trainables.errors import SpecError
    from trainables.models import quiet_transformers

    quiet_transformers()
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no GPU is visible")
    device = torch.device("cuda" if cuda else "cpu")
    device_name = torch.cuda.get_device_name(device) if cuda else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    print(f"{device_name}; torch {torch.__version__}; shapes: fine-tuning {FINETUNE_BATCH} x {LENGTH}, realignment "
          f"{REALIGN_PAIRS} pairs = {2 * REALIGN_PAIRS} x {LENGTH}; {args.words} words a sentence, {args.links} "
          f"links a pair; median of {args.steps} steps after {args.warmup}" + ("; SMALL configs" if args.small else ""))
    for name in args.models:
        config = encoder_config(name, args.small)
        print(f"  {name}: {dimensions(config)[0]} blocks, width {dimensions(config)[1]}, vocabulary "
              f"{config.vocab_size:,}; matmul weights P = {matmul_parameters(config):,}")
    results: list[Measurement] = []
    for name in args.models:
        for phase in args.phases:
            for precision in args.precisions:
                try:
                    row = measure(name, phase, precision, args, device, device_name)
                except SpecError as error:     # e.g. bf16 on a GPU without it
                    print(f"  {name} {phase} {precision}: skipped ({error})", flush=True)
                    continue
                finally:
                    gc.collect()
                    if cuda:
                        torch.cuda.empty_cache()
                results.append(row)
                print(f"  {name} {phase} {precision}: {row.step_s * 1000:,.1f} ms a step", flush=True)
    print()
    print("\n".join(format_results(results)))
    used = {r.precision: device_peak(device_name, "bf16" if r.precision == "bf16" else
                                     ("tf32" if r.acceleration["tf32_matmul"] else "fp32"), args.peak_tflops)
            for r in results}
    for precision, (peak, source) in used.items():
        print(f"  peak {precision}: " + (f"{peak:g} TFLOP/s, {source}" if peak else f"n/a ({source})"))
    output: dict[str, Any] = {"device": device_name, "torch": torch.__version__, "small": args.small,
                              "shapes": {"finetune": [FINETUNE_BATCH, LENGTH], "realign_pairs": REALIGN_PAIRS,
                                         "length": LENGTH, "words": args.words, "links": args.links},
                              "steps": args.steps, "warmup": args.warmup,
                              "results": [asdict(r) for r in results], "grids": []}
    if args.estimate_grid is not None:
        for precision in args.precisions:
            grid = grid_estimate(args.estimate_grid, results, precision, device_name, args.small)
            output["grids"].append(grid)
            print()
            print("\n".join(format_grid(grid)))
    if args.throughput_out is not None and results:
        first = args.precisions[0]
        figures = {}
        for model in args.models:
            phases = {r.phase: r for r in results if r.model == model and r.precision == first}
            if set(phases) == set(PHASES):
                figures[HUB_NAMES[model][0]] = {"finetune_seq_per_s": FINETUNE_BATCH / phases["finetune"].step_s,
                                                "realign_pairs_per_s": REALIGN_PAIRS / phases["realign"].step_s}
        args.throughput_out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"throughput ({first}) written to {args.throughput_out}")
    if args.json is not None:
        args.json.write_text(json.dumps(output, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")
    return output


if __name__ == "__main__":
    main()
