"""Accuracy with random against length-grouped batches, over several seeds (no Ray).

The demo's PoS trial (tiny-mbert, the bundled 200 English UD sentences,
8 target languages) with batch 32 for ``--epochs`` epochs, as the
baseline and with realignment (``front``, MUSE dictionary links on the
bundled Tatoeba pairs), once per seed with ``finetune.batching`` (and
``realignment.batching``) ``random`` and ``length_grouped``. Prints the
mean +- standard deviation over the seeds of the English accuracy and
of the average over the target languages, and the padded / real token
ratios the trials report (``provenance.tokens``).

    python benchmarks/batching_accuracy.py [--seeds 1 2 3 4 5] [--epochs 5] [--strategies baseline front]
                                           [--window-batches 2]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def spec_of(strategy: str, seed: int, batching: str, epochs: int, cache: str):
    import yaml

    from orchestrator.experiment import experiment_from_dict
    from search_spaces import preset_path

    raw = copy.deepcopy(yaml.safe_load(preset_path("demo").read_text(encoding="utf-8")))
    raw.update(name="batching-accuracy", strategies=[strategy], seeds=[seed], cache=cache)
    raw["finetune"].update(epochs=epochs, batch_size=32)
    if batching != "random":        # the default stays unwritten: the trial keeps its usual key
        raw["finetune"]["batching"] = batching
        raw["realignment"]["batching"] = batching
    [spec] = experiment_from_dict(raw).trials
    return spec


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.2f} +- {100 * spread:.2f}"


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--strategies", nargs="+", default=["baseline", "front"])
    parser.add_argument("--window-batches", type=int, default=None,
                        help="batches per grouping window (default: length_grouping.WINDOW_BATCHES, 50); "
                             "fewer emulate on the 200 sentences the several windows per epoch of a full "
                             "training set")
    args = parser.parse_args()
    if args.window_batches:
        from trainables import length_grouping

        length_grouping.WINDOW_BATCHES = args.window_batches
    from trainables.trial import run_trial

    with tempfile.TemporaryDirectory() as cache:
        for strategy in args.strategies:
            for batching in ("random", "length_grouped"):
                english, targets, ratios = [], [], {}
                for seed in args.seeds:
                    result = run_trial(spec_of(strategy, seed, batching, args.epochs, cache), log=lambda _: None)
                    english.append(result["english"]["accuracy"])
                    targets.append(result["average"]["accuracy"])
                    for phase, counts in result["provenance"]["tokens"].items():
                        if counts["real"]:
                            ratios.setdefault(phase, []).append(counts["padded"] / counts["real"])
                padding = ", ".join(f"{phase} {statistics.mean(values):.2f}" for phase, values in ratios.items())
                print(f"{strategy:9s} {batching:15s} English {mean_std(english)}   targets {mean_std(targets)}   "
                      f"padded/real: {padding}   ({len(args.seeds)} seeds)", flush=True)


if __name__ == "__main__":
    main()
