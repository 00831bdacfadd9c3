"""One realignment, two tasks: the second trial reuses the first one's realigned encoder.

    python benchmarks/shared_realignment.py [EXPERIMENT.yaml]

Runs the trials of ``benchmarks/shared_realignment.yaml`` (PoS and NER,
tiny mBERT, front, a fixed budget of 40 realignment steps) one after the
other without Ray, on an empty cache: the first computes the realignment,
the second reuses it. Then the second trial again on another empty cache,
where it computes the realignment itself. Prints each trial's
``realignment_cache`` provenance, its time in the realignment phase, the
sha256 of its realigned encoder (from the "realigned" checkpoint) and
whether the reused weights (and the trial's metrics) are bit-identical
to the ones computed afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import torch

from orchestrator.experiment import load_experiment_file
from trainables.trial import CHECKPOINT_FILE, run_trial

HERE = Path(__file__).resolve().parent


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode() + state[name].detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def main() -> None:
    experiment = load_experiment_file(sys.argv[1] if len(sys.argv) > 1 else HERE / "shared_realignment.yaml")
    first, second = experiment.trials
    with tempfile.TemporaryDirectory(prefix="shared-realignment-") as scratch:
        root = Path(scratch)
        runs = [("shared cache", first, "shared"), ("shared cache", second, "shared"),
                ("empty cache", second, "empty")]
        encoders, results = [], []
        for label, spec, cache in runs:
            spec = dataclasses.replace(spec, cache=str(root / cache))
            checkpoints = root / f"checkpoints-{len(encoders)}"
            result = run_trial(spec, checkpoint_root=checkpoints, log=lambda _: None)
            state = torch.load(checkpoints / "realigned" / CHECKPOINT_FILE, weights_only=False)["encoder"]
            encoders.append(state)
            results.append(result)
            provenance = result["provenance"]
            print(f"{spec.task:4} {label:12} realignment_cache={json.dumps(provenance['realignment_cache'])} "
                  f"realign_s={provenance['timings']['realign_s']:.2f} realign_steps={provenance['realign_steps']} "
                  f"encoder_sha256={state_sha256(state)}")
        reused, fresh = encoders[1], encoders[2]
        identical = reused.keys() == fresh.keys() and all(torch.equal(reused[k], fresh[k]) for k in reused)
        print(f"reused weights bit-identical to a fresh computation: {identical}; "
              f"the trial's metrics identical: {results[1]['metrics'] == results[2]['metrics']}")


if __name__ == "__main__":
    main()
