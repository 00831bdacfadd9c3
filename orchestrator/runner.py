"""Running an experiment's grid on Ray and keeping its results directory up to date."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from orchestrator import results as results_dir
from orchestrator.cluster import check_resources, connect, shutdown
from orchestrator.experiment import Experiment


def run_experiment(experiment: Experiment, output: Path, address: str | None = None,
                   verbose: int = 1) -> dict[str, Any]:
    """Run every trial of ``experiment`` that has no result under ``output`` yet.

    Trials checkpointed by an interrupted earlier run resume from their
    latest checkpoint. Returns a summary with counts and the wall time.
    """
    output = output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    results_dir.write_manifest(output, experiment.name, experiment.trials, experiment.source)
    done = results_dir.completed_ids(output)
    pending = [t for t in experiment.trials if t.trial_id not in done]
    summary: dict[str, Any] = {"planned": len(experiment.trials), "already_done": len(done & {
        t.trial_id for t in experiment.trials}), "ran": len(pending), "errors": 0, "errored": [],
        "output": str(output)}
    if not pending:
        print(f"all {len(experiment.trials)} trials already have results in {output}", file=sys.stderr)
        return summary
    ray_options = experiment.ray
    cpus, gpus = experiment.resources
    started = time.perf_counter()
    resources = connect(address or ray_options.get("address"), ray_options.get("num_cpus"),
                        ray_options.get("num_gpus"))
    try:
        check_resources(resources, cpus, gpus)
        from trainables.ray_trainable import fit_trials

        def on_result(result: dict[str, Any]) -> None:
            results_dir.write_result(output, result)
            average = ", ".join(f"{k} {v:.4f}" for k, v in result["average"].items())
            print(f"[alignfreeze] done {result['trial_id']}: target average {average} "
                  f"({result['provenance']['timings'].get('total_s', 0):.1f} s)", file=sys.stderr, flush=True)

        def on_error(spec, message: str) -> None:
            results_dir.write_error(output, spec.trial_id, spec.to_dict(), message)
            print(f"[alignfreeze] FAILED {spec.trial_id}: {message}", file=sys.stderr, flush=True)

        outcome = fit_trials(pending, output / results_dir.RAY_STORAGE, "tune-" + time.strftime("%Y%m%d-%H%M%S"),
                             on_result=on_result, on_error=on_error,
                             max_concurrent=ray_options.get("max_concurrent_trials"),
                             reuse_actors=bool(ray_options.get("reuse_actors", True)),
                             max_failures=int(ray_options.get("max_failures", 0)), verbose=verbose)
    finally:
        if not (address or ray_options.get("address")):
            shutdown()
    summary.update(errors=outcome["errors"], errored=outcome["errored"],
                   wall_s=time.perf_counter() - started)
    missing = [t.trial_id for t in pending if t.trial_id not in results_dir.completed_ids(output)]
    summary["missing"] = missing
    return summary
