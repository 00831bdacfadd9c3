"""Fused against default Adam(W) on a tiny model's fine-tuning step, side by side.

The 119,547 x d embedding matrix of the mBERT vocabulary dominates a tiny
model's parameters, so the optimizer update costs more than the forward
and backward passes; this measures what the fused kernels save.

    python benchmarks/optimizer_step.py [--model tiny-mbert] [--repeats 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny-mbert")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    from trainables.bundled import bundled_path
    from trainables.models import hidden_size, load_encoder
    from trainables.tasks.base import FinetuneSettings, TaskModel
    from trainables.tasks.registry import get_task

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    encoder, tokenizer = load_encoder(args.model)
    task = get_task("pos").load()
    examples = task.load_examples(str(bundled_path("ud/en_ewt-ud-dev.first200.conllu")), "en", "train")
    features = task.features(examples, tokenizer, FinetuneSettings())
    batch = task.collate(features[:32], tokenizer.pad_token_id)
    model = TaskModel(encoder, task.build_head(hidden_size(encoder), 0.1))
    parameters = list(model.parameters())
    print(f"{args.model}: {sum(p.numel() for p in parameters) / 1e6:.1f} M parameters, batch 32 x "
          f"{batch['input_ids'].shape[1]} tokens, {args.threads} thread(s)")

    def forward_backward() -> None:
        model.zero_grad(set_to_none=True)
        task.loss(model(**batch), batch).backward()

    optimizers = {
        "AdamW default": torch.optim.AdamW(parameters, lr=1e-5),
        "AdamW fused": torch.optim.AdamW(parameters, lr=1e-5, fused=True),
    }
    timings = {name: [] for name in optimizers}
    forward_backward()
    for _ in range(args.repeats):           # interleaved, so load changes hit both alike
        for name, optimizer in optimizers.items():
            started = time.perf_counter()
            optimizer.step()
            timings[name].append(time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(args.repeats):
        forward_backward()
    pass_time = (time.perf_counter() - started) / args.repeats
    median = {name: sorted(t)[len(t) // 2] for name, t in timings.items()}
    print(f"forward+backward: {pass_time * 1000:.1f} ms")
    for name, value in median.items():
        print(f"{name:<14} step: {value * 1000:.1f} ms (median of {args.repeats})")
    print(f"ratio default/fused: {median['AdamW default'] / median['AdamW fused']:.2f}x")


if __name__ == "__main__":
    main()
