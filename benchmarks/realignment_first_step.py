"""A trial's time to its first realignment step and its peak memory: a huge corpus against a small one.

The realignment corpus is read lazily (shuffle buffer, interleaving,
alignment on the fly), so neither figure should grow with its size. This
makes synthetic corpora from the bundled Tatoeba sentences, 1,000,000
pairs per language for 3 languages (line-aligned files; the 500 bundled
pairs of each language over and over) and 1,000 pairs per language, and
runs the same trial on each (tiny mBERT, PoS, ``dico`` with the bundled
MUSE dictionaries, realignment "before", 4 steps), each in its own
process so that peak RSS is per trial, alternating the two sizes. It
prints each trial's ``timings.first_step_s`` (from the trial's start to
its first realignment batch) and ``peak_rss_mb`` from its provenance,
their medians, the time ratio and the memory difference. Goal: ratio at
most 1.2, at most 200 MB more.

A first run of each size (not counted; printed as "cold") builds the tiny
model and hashes the corpus files once for the realigned-encoder cache's
key (remembered by path, size and mtime, as on a cluster node after its
first trial). Each trial gets an empty realigned-encoder cache: every
trial realigns.

    python benchmarks/realignment_first_step.py [--pairs 1000000] [--small 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

LANGUAGES = {"fr": "fra", "de": "deu", "ru": "rus"}


def make_corpus(directory: Path, pairs: int) -> dict[str, dict[str, str]]:
    """Line-aligned files of ``pairs`` pairs per language, the bundled pairs repeated."""
    from trainables.bundled import bundled_path

    directory.mkdir(parents=True, exist_ok=True)
    parallel = {}
    for language, code in LANGUAGES.items():
        files = {}
        for side, suffix in (("source", "eng"), ("target", code)):
            lines = bundled_path(f"parallel/tatoeba/tatoeba.{code}-eng.{suffix}.first500").read_text(
                encoding="utf-8").splitlines(keepends=True)
            path = directory / f"{language}.{side}"
            with open(path, "w", encoding="utf-8") as handle:
                block = "".join(lines)
                full, rest = divmod(pairs, len(lines))
                for _ in range(full):
                    handle.write(block)
                handle.write("".join(lines[:rest]))
            files[side] = str(path)
        parallel[language] = files
    return parallel


def child(corpus: Path) -> None:
    """One trial on the corpus described in ``corpus`` (JSON); prints its figures as one JSON line."""
    from orchestrator.experiment import experiment_from_dict
    from trainables.trial import run_trial
    from trial_fixtures import small_pos_experiment

    parallel = json.loads(corpus.read_text(encoding="utf-8"))
    raw = small_pos_experiment(strategies=["front"], seeds=[1])
    realignment = raw["realignment"]
    realignment["languages"] = list(LANGUAGES)
    realignment["parallel"] = parallel
    realignment["dictionaries"] = {language: f"bundled:dictionaries/muse/en-{language}.first3000.txt"
                                   for language in LANGUAGES}
    realignment.pop("max_pairs", None)        # the whole corpus
    realignment["steps"] = 4
    raw["finetune"].update({"epochs": 1, "max_train_examples": 16, "max_eval_examples": 8})
    [spec] = experiment_from_dict(raw).trials
    provenance = run_trial(spec, log=lambda _: None)["provenance"]
    timings = provenance["timings"]
    print(json.dumps({"first_step_s": timings["first_step_s"], "peak_rss_mb": provenance["peak_rss_mb"],
                      "align_s": timings["align_s"], "total_s": timings["total_s"]}))


def run_child(corpus: Path, realigned_cache: Path) -> dict[str, float]:
    env = {**os.environ, "ALIGNFREEZE_REALIGNED_CACHE": str(realigned_cache)}
    done = subprocess.run([sys.executable, __file__, "--child", str(corpus)], env=env, check=True,
                          capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=1_000_000, help="pairs per language of the large corpus")
    parser.add_argument("--small", type=int, default=1_000, help="pairs per language of the small corpus")
    parser.add_argument("--repeats", type=int, default=3, help="measured trials of each size")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return

    with tempfile.TemporaryDirectory(prefix="alignfreeze-first-step-") as scratch:
        scratch = Path(scratch)
        corpora = {}
        for name, pairs in (("small", args.small), ("large", args.pairs)):
            description = scratch / f"{name}.json"
            description.write_text(json.dumps(make_corpus(scratch / name, pairs)), encoding="utf-8")
            corpora[name] = description
        size_mb = sum(p.stat().st_size for p in (scratch / "large").iterdir()) / 2**20
        print(f"corpora: {args.small:,} and {args.pairs:,} pairs per language x {len(LANGUAGES)} languages "
              f"({size_mb:.0f} MB of text for the large one)")
        results: dict[str, list[dict[str, float]]] = {"small": [], "large": []}
        for round_index in range(args.repeats + 1):
            for name in ("small", "large"):
                figures = run_child(corpora[name], scratch / f"realigned-{name}-{round_index}")
                label = "cold" if round_index == 0 else f"run {round_index}"
                print(f"{name:5} {label:6}: first step {figures['first_step_s']:6.2f} s  "
                      f"peak RSS {figures['peak_rss_mb']:7.1f} MB  (align_s {figures['align_s']:.2f}, "
                      f"total {figures['total_s']:.1f} s)", flush=True)
                if round_index:
                    results[name].append(figures)
    median = {name: {key: statistics.median(r[key] for r in runs) for key in ("first_step_s", "peak_rss_mb")}
              for name, runs in results.items()}
    ratio = median["large"]["first_step_s"] / median["small"]["first_step_s"]
    extra = median["large"]["peak_rss_mb"] - median["small"]["peak_rss_mb"]
    print(f"median first step: {median['small']['first_step_s']:.2f} s ({args.small:,} pairs) vs "
          f"{median['large']['first_step_s']:.2f} s ({args.pairs:,} pairs): ratio {ratio:.2f} (goal <= 1.2)")
    print(f"median peak RSS: {median['small']['peak_rss_mb']:.0f} MB vs {median['large']['peak_rss_mb']:.0f} MB: "
          f"{extra:+.0f} MB (goal <= +200 MB)")


if __name__ == "__main__":
    main()
