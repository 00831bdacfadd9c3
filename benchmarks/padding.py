"""Padded against real tokens in training batches: random batches (the paper's) and length-grouped ones.

A batch is padded to its longest sequence; "padded" counts rows x that
length, summed over the batches, "real" the non-pad tokens. Fine-tuning:
the trial's epoch batches (``length_grouping.epoch_batches``) of the
bundled PoS and NER training slices with the tiny mBERT tokenizer (the
real mBERT vocabulary), averaged over epochs. Realignment: the trial's
``RealignmentStream`` over the bundled Tatoeba pairs of the demo's eight
languages (MUSE dictionary links), both sides of each pair counted.
A ratio of 1.00 means no padding at all; "all sorted" is the floor for
batches of that many sequences: the whole slice (the same pairs) sorted
by length at once.

    python benchmarks/padding.py [--batch-size 32] [--realign-batch-size 16] [--epochs 5] [--realign-steps 200]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

TRAINING_SLICES = {"pos": "ud/en_ewt-ud-dev.first200.conllu", "ner": "ner/wikiann/en/train.first1000.conllu"}


def finetune_ratios(task_name: str, batch_size: int, epochs: int, seed: int) -> dict[str, tuple[int, int]]:
    from trainables.bundled import bundled_path
    from trainables.length_grouping import BATCHINGS, epoch_batches, length_sorted_batches, padding_counts
    from trainables.models import load_encoder
    from trainables.tasks.base import FinetuneSettings
    from trainables.tasks.registry import get_task

    definition = get_task(task_name)
    task = definition.load()
    _, tokenizer = load_encoder("tiny-mbert")
    settings = FinetuneSettings(max_length=definition.defaults["max_length"])
    examples = task.load_examples(str(bundled_path(TRAINING_SLICES[task_name])), "en", "train")
    lengths = [len(f["input_ids"]) for f in task.features(examples, tokenizer, settings)]
    counts = {}
    for batching in BATCHINGS:
        real = padded = 0
        for epoch in range(epochs):
            r, p = padding_counts(epoch_batches(lengths, batch_size, seed, epoch, batching), lengths)
            real, padded = real + r, padded + p
        counts[batching] = (real, padded)
    # the floor for batches of this many sequences: every sequence of the slice sorted at once
    real, padded = padding_counts(length_sorted_batches(lengths, batch_size), lengths)
    counts["sorted"] = (real * epochs, padded * epochs)
    return counts


def realign_ratios(batch_size: int, steps: int, seed: int) -> dict[str, tuple[int, int]]:
    import yaml

    from orchestrator.experiment import experiment_from_dict
    from search_spaces import preset_path
    from trainables.length_grouping import BATCHINGS, length_sorted_batches
    from trainables.realignment.batches import collate_pairs
    from trainables.trial import TrialRunner

    counts = {}
    for batching in BATCHINGS:
        raw = copy.deepcopy(yaml.safe_load(preset_path("demo").read_text(encoding="utf-8")))
        raw.update(name="padding", strategies=["full"], seeds=[seed], languages=["fr"])
        raw["realignment"].update(batch_size=batch_size, batching=batching)
        [spec] = experiment_from_dict(raw).trials
        runner = TrialRunner(spec, log=lambda _: None)
        runner.started = time.perf_counter()
        runner._setup()
        stream = runner._realignment_stream()
        real = padded = 0
        pairs = []
        for _ in range(steps):
            drawn = stream._draw()
            batch = collate_pairs(drawn, stream.pad_token_id)
            real, padded = real + batch.real_tokens, padded + batch.padded_tokens
            pairs += drawn
        counts[batching] = (real, padded)
    # the floor: the same pairs sorted at once by their longer side, which pads the other side
    longer = [max(len(p.source_ids), len(p.target_ids)) for p in pairs]
    sides = [len(p.source_ids) + len(p.target_ids) for p in pairs]
    ranked = length_sorted_batches(longer, batch_size)
    counts["sorted"] = (sum(sides), sum(2 * len(b) * longer[b[0]] for b in ranked))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--realign-batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--realign-steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rows = [(f"fine-tuning {name} ({TRAINING_SLICES[name]}), batch {args.batch_size}, {args.epochs} epochs",
             finetune_ratios(name, args.batch_size, args.epochs, args.seed)) for name in TRAINING_SLICES]
    rows.append((f"realignment (Tatoeba, 8 languages), batch {args.realign_batch_size} pairs, "
                 f"{args.realign_steps} batches", realign_ratios(args.realign_batch_size, args.realign_steps, args.seed)))
    width = max(len(r[0]) for r in rows)
    print(f"{'padded / real tokens':<{width}}  random  length_grouped  all sorted (floor)")
    for label, counts in rows:
        ratios = {batching: padded / real for batching, (real, padded) in counts.items()}
        print(f"{label:<{width}}  {ratios['random']:6.2f}  {ratios['length_grouped']:14.2f}  {ratios['sorted']:18.2f}")


if __name__ == "__main__":
    main()
