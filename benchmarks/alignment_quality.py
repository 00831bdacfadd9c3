"""Benchmark: alignment quality and speed of the in-process aligners.

Runs ``alignfreeze align-eval`` with no argument (every in-process aligner
on every bundled gold set) and prints its table, then the wall time of
each aligner summed over the gold sets, and the time to load the
simalign encoder.

    HF_HUB_OFFLINE=1 python benchmarks/alignment_quality.py [--model DIR] [--layer N] [--threads N]

With no ``--model``, simalign runs the built-in ``tiny-mbert`` (random
weights): its figures show the machinery, not the method; eflomal is
trained on each gold set's own 100 (en-de: 5) sentence pairs.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run from a checkout

from trainables.realignment.alignment_eval import (  # noqa: E402
    DEFAULT_SIMALIGN_MODEL, EVALUATED_ALIGNERS, evaluation_results, evaluation_table,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help=f"simalign encoder (default: {DEFAULT_SIMALIGN_MODEL})")
    parser.add_argument("--layer", type=int, help="simalign layer (default: 2/3 of the depth)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on a shared 2-core machine, 2 threads ran 7x slower)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)

    started = time.perf_counter()
    results = evaluation_results(EVALUATED_ALIGNERS, None, args.model, args.layer)
    total = time.perf_counter() - started
    print(evaluation_table(results))
    print()
    per_aligner: dict[str, float] = defaultdict(float)
    for row in results:
        per_aligner[row["aligner"]] += row.get("seconds", 0.0)
    print(f"{'aligner':<34} {'wall s':>8}   (sum over gold sets)")
    for name, seconds in per_aligner.items():
        print(f"{name:<34} {seconds:>8.2f}")
    print(f"{'total, with loading the encoder':<34} {total:>8.2f}")
    print(f"\n{platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
