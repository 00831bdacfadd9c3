"""The project's training loops against a bare PyTorch loop over the same model and batches.

Fine-tuning: ``TrialRunner._finetune`` (the trial's loop: its batching,
collation, autocast, loss bookkeeping, checkpoint clock) against a bare
loop that does forward, loss, backward, AdamW step and LR-schedule step
over the same batches collated beforehand, with the same head and
optimizer (fused AdamW, as the trial builds it). Realignment: ``realign``
drawing from the trial's ``RealignmentStream`` (pairs encoded and collated
as it goes; its memo of word pieces kept from one repeat to the next, as
in the steady state of a long run) against a bare loop over the same
batches drawn beforehand.
Each repeat builds its head and optimizer, in both loops; checkpoints are
not written (the callback does nothing). The two loops run interleaved
(A B A B ...) in one process so that load changes hit both alike; the
ratio is the project's steps/s over the bare loop's (medians of the
repeats), by the wall clock and by the process's CPU time (steadier on a
shared machine: the loops run one thread).

    python benchmarks/loop_overhead.py [--repeats 7] [--epochs 4] [--realign-steps 28] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def pos_spec(epochs: int, batching: str | None, realign_batching: str | None):
    """tiny-mbert, PoS on the bundled 200 UD sentences, batch 32; realignment (front) on 3 languages."""
    import yaml

    from orchestrator.experiment import experiment_from_dict
    from search_spaces import preset_path

    raw = copy.deepcopy(yaml.safe_load(preset_path("demo").read_text(encoding="utf-8")))
    raw["name"] = "loop-overhead"
    raw["languages"] = ["fr"]
    raw["data"]["pos"]["eval"] = {k: v for k, v in raw["data"]["pos"]["eval"].items() if k in ("en", "fr")}
    raw["realignment"]["languages"] = ["fr", "de", "ru"]
    raw["finetune"].update({"epochs": epochs, "batch_size": 32})
    if batching:
        raw["finetune"]["batching"] = batching
    if realign_batching:
        raw["realignment"]["batching"] = realign_batching
    raw["strategies"] = ["front"]
    raw["seeds"] = [1]
    [spec] = experiment_from_dict(raw).trials
    return spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs per repeat (7 steps each)")
    parser.add_argument("--realign-steps", type=int, default=28)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batching", default=None, help="finetune.batching (default: the spec's default)")
    parser.add_argument("--realign-batching", default=None, help="realignment.batching")
    parser.add_argument("--phases", default="finetune,realign")
    args = parser.parse_args()

    import torch
    from transformers import get_linear_schedule_with_warmup

    from trainables.checkpoint_policy import CheckpointClock, CheckpointPolicy
    from trainables.realignment.realigner import build_projection_head, realign, realignment_loss
    from trainables.trial import Phase, TrialRunner

    spec = pos_spec(args.epochs, args.batching, args.realign_batching)
    runner = TrialRunner(spec, log=lambda _: None)
    runner.started = time.perf_counter()
    runner._setup()
    torch.set_num_threads(args.threads)
    runner.clock = CheckpointClock(CheckpointPolicy())     # the default policy: every 30 minutes
    task, device, settings = runner.task, runner.device, runner.settings
    phases = args.phases.split(",")
    print(f"tiny-mbert, PoS ({len(runner.features)} training windows), batch {settings.batch_size}, "
          f"{runner.steps_per_epoch} steps x {settings.epochs} epochs per repeat; realignment: "
          f"{args.realign_steps} steps of {runner.realign.batch_size} pairs; {args.threads} thread(s), "
          f"{args.repeats} repeats, interleaved")

    # ------------------------------------------------------------ fine-tuning
    def epoch_index_batches(epoch: int) -> list[list[int]]:
        try:
            from trainables.length_grouping import epoch_batches
        except ImportError:     # before length grouping: the loop's own random order
            order = torch.randperm(len(runner.features),
                                   generator=torch.Generator().manual_seed(spec.seed * 1009 + epoch)).tolist()
            return [order[i:i + settings.batch_size] for i in range(0, len(order), settings.batch_size)]
        return epoch_batches([len(f["input_ids"]) for f in runner.features], settings.batch_size, spec.seed,
                             epoch, getattr(settings, "batching", "random"))

    prebuilt = [task.collate([runner.features[i] for i in batch], runner.tokenizer.pad_token_id)
                for epoch in range(settings.epochs) for batch in epoch_index_batches(epoch)]

    def project_finetune() -> int:
        runner._finetune(Phase("start"), None, frozenset(), lambda *_: None)
        return runner.finetune_steps

    def bare_finetune() -> int:
        torch.manual_seed(spec.seed + 1)
        model = task.build_model(runner.encoder).to(device)
        parameters = list(model.parameters())
        optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate,
                                      weight_decay=settings.weight_decay, fused=True)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(settings.warmup_ratio * len(prebuilt)),
                                                    len(prebuilt))
        model.train()
        for batch in prebuilt:
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = task.loss(model(**batch), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
        return len(prebuilt)

    # ------------------------------------------------------------ realignment
    steps = args.realign_steps

    pieces = {}

    def fresh_stream():
        torch.manual_seed(spec.seed)
        stream = runner._realignment_stream()
        # the steady state of a long run: word pieces memoised (WordPieces), as after its first batches
        if hasattr(stream, "pieces"):
            stream.pieces = pieces.setdefault("warm", stream.pieces)
        return stream

    if "realign" in phases:
        reference = fresh_stream()
        realign_batches = [reference.next_batch() for _ in range(steps)]

    def project_realign(stream) -> int:
        realign(runner.encoder, stream, runner.realign, steps, frozenset(), runner.realign.learning_rate,
                device, runner.autocast_dtype)
        return steps

    def bare_realign(_) -> int:
        head = build_projection_head(runner.encoder, runner.realign).to(device)
        parameters = [p for p in runner.encoder.parameters() if p.requires_grad] + list(head.parameters())
        optimizer = torch.optim.Adam(parameters, lr=runner.realign.learning_rate, fused=True)
        runner.encoder.train()
        for batch in realign_batches:
            loss = realignment_loss(runner.encoder, head, batch.to(device), runner.realign)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return steps

    contests = []
    if "finetune" in phases:
        contests.append(("fine-tuning", project_finetune, bare_finetune, lambda: None))
    if "realign" in phases:
        contests.append(("realignment", project_realign, bare_realign, fresh_stream))
    for name, project, bare, prepare in contests:
        rates: dict[tuple[str, str], list[float]] = {}
        for repeat in range(args.repeats + 1):          # the first repeat warms up, uncounted
            for label, loop in (("project", project), ("bare", bare)) if repeat % 2 else (("bare", bare),
                                                                                         ("project", project)):
                argument = prepare()
                wall, cpu = time.perf_counter(), time.process_time()
                done = loop(argument) if argument is not None else loop()
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                if repeat:
                    rates.setdefault((label, "wall"), []).append(done / wall)
                    rates.setdefault((label, "cpu"), []).append(done / cpu)
        for clock in ("wall", "cpu"):
            project_rate = statistics.median(rates[("project", clock)])
            bare_rate = statistics.median(rates[("bare", clock)])
            ratios = [p / b for p, b in zip(rates[("project", clock)], rates[("bare", clock)])]
            print(f"{name:12s} {clock:4s}  project {project_rate:7.2f} steps/s   bare {bare_rate:7.2f} steps/s   "
                  f"ratio {project_rate / bare_rate:.3f}   (per-repeat ratios: "
                  + " ".join(f"{r:.3f}" for r in ratios) + ")", flush=True)


if __name__ == "__main__":
    main()
