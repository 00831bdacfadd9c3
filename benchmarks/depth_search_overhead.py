"""What the depth search's rounds cost: the same settings as one grid and as a search, side by side.

The search runs each round (``parallel`` settings x seeds) as its own Tune
experiment and waits for its slowest trial before asking Optuna again; a
grid runs every trial in one Tune experiment. Both run here on the same
cut-down demo data (tiny mBERT, PoS), the search with the ``grid``
sampler so that both evaluate exactly the same settings, in fresh
directories (the tiny model and alignment caches are warmed first).

    python benchmarks/depth_search_overhead.py [--settings 4] [--parallel 1] [--seeds 1 2]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", type=int, default=4, help="settings evaluated (shallowest first)")
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    from orchestrator.depth_search import run_depth_search
    from orchestrator.experiment import experiment_from_dict
    from orchestrator.runner import run_experiment
    from trial_fixtures import small_pos_experiment

    search_raw = small_pos_experiment(seeds=args.seeds)
    search_raw.pop("strategies")
    search_raw["search"] = {"trials": args.settings, "sampler": "grid", "parallel": args.parallel,
                            "baseline": False}
    search = experiment_from_dict(search_raw)
    [by_strategy] = search.candidates.values()
    strategies = list(by_strategy)[: args.settings]
    grid_raw = copy.deepcopy(search_raw)
    grid_raw.pop("search")
    grid_raw["strategies"] = strategies
    grid = experiment_from_dict(grid_raw)

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        # warm the caches (tiny model, alignments) outside the timed runs
        warm = copy.deepcopy(grid_raw)
        warm["strategies"], warm["seeds"] = strategies[:1], args.seeds[:1]
        run_experiment(experiment_from_dict(warm), scratch / "warm", verbose=0)

        started = time.perf_counter()
        grid_summary = run_experiment(grid, scratch / "grid", verbose=0)
        grid_s = time.perf_counter() - started
        started = time.perf_counter()
        outcome = run_depth_search(search, scratch / "search", verbose=0, log=lambda line: None)
        search_s = time.perf_counter() - started

    trials = len(grid.trials)
    evaluated = len(outcome["studies"][0]["evaluated"])
    print(f"{len(strategies)} settings x {len(args.seeds)} seeds = {trials} trials on "
          f"{os.cpu_count()} CPUs, 1 CPU per trial")
    print("grid   (one Tune experiment):".ljust(44) + f"{grid_s:7.1f} s  ({grid_summary['errors']} errors)")
    print(f"search ({evaluated} rounds of {args.parallel} setting(s)):".ljust(44) + f"{search_s:7.1f} s  "
          f"({len(outcome['errored'])} errors)")
    print(f"search / grid: {search_s / grid_s:.2f}")


if __name__ == "__main__":
    main()
