"""What the depth search costs over a grid: the same settings as one grid and as a search, side by side.

A grid runs every trial in one Tune experiment. The search also runs one
Tune experiment, whose trials Optuna's settings feed as slots free (no
round barrier): what it adds is asking and telling Optuna, and trials
handed out one at a time. Both run here on the same cut-down demo data
(tiny mBERT, PoS), the search with the ``grid`` sampler so that both
evaluate exactly the same settings and seeds, in fresh directories (the
tiny model and alignment caches are warmed first).

    python benchmarks/depth_search_overhead.py [--settings 4] [--parallel N] [--seeds 1 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
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
    parser.add_argument("--parallel", type=int, default=None,
                        help="search.parallel: settings in flight at most (default: as the cluster has room)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="grid / search pairs, alternating order")
    args = parser.parse_args()

    from orchestrator.depth_search import run_depth_search
    from orchestrator.experiment import experiment_from_dict
    from orchestrator.runner import run_experiment
    from trial_fixtures import small_pos_experiment

    search_raw = small_pos_experiment(seeds=args.seeds)
    search_raw.pop("strategies")
    search_raw["search"] = {"trials": args.settings, "sampler": "grid", "parallel": args.parallel,
                            "baseline": False}
    # the search selects on validation data (the test files stand in); the grid, a copy, evaluates the same
    search_raw["data"]["pos"]["validation"] = dict(search_raw["data"]["pos"]["eval"])
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

        # alternating which goes first, so that a machine busy with other work weighs on both alike
        pairs = []
        for repeat in range(args.repeats):
            times: dict[str, float] = {}
            for kind in (("grid", "search") if repeat % 2 == 0 else ("search", "grid")):
                started = time.perf_counter()
                if kind == "grid":
                    grid_summary = run_experiment(grid, scratch / f"grid{repeat}", verbose=0)
                else:
                    outcome = run_depth_search(search, scratch / f"search{repeat}", verbose=0,
                                               log=lambda line: None)
                times[kind] = time.perf_counter() - started
            pairs.append(times)

    trials = len(grid.trials)
    evaluated = len(outcome["studies"][0]["evaluated"])
    parallel = "as the cluster has room" if args.parallel is None else f"at most {args.parallel}"
    print(f"{len(strategies)} settings x {len(args.seeds)} seeds = {trials} trials on "
          f"{os.cpu_count()} CPUs, 1 CPU per trial; search: {evaluated} settings, in flight {parallel}")
    print(f"{'pair':>4}  {'grid s':>7}  {'search s':>8}  {'search / grid':>13}")
    for number, times in enumerate(pairs, 1):
        print(f"{number:>4}  {times['grid']:>7.1f}  {times['search']:>8.1f}  {times['search'] / times['grid']:>13.2f}")
    grid_s = statistics.median(t["grid"] for t in pairs)
    search_s = statistics.median(t["search"] for t in pairs)
    print(f"median: grid {grid_s:.1f} s ({grid_summary['errors']} errors), search {search_s:.1f} s "
          f"({len(outcome['errored'])} errors); search / grid {search_s / grid_s:.2f}; median of the "
          f"pairs' ratios {statistics.median(t['search'] / t['grid'] for t in pairs):.2f}")


if __name__ == "__main__":
    main()
