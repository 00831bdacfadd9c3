"""Where a trial's time and memory go before its first optimizer step.

Runs a tiny trial in a fresh process per run (tiny mBERT, PoS, a few
fine-tuning steps) in three configurations:

- ``baseline``: no realignment;
- ``realign``: ``dico`` realignment "before" on fr, ru, zh and ja (the
  bundled Tatoeba pairs and MUSE dictionaries; zh, ja need jieba and
  SudachiPy);
- ``realign-latin``: the same on fr and de only (no segmenter needed).

The spec is parsed (and preflighted) in the parent, as the driver does;
the child runs the trial only, with an empty realigned-encoder cache
(every realigning trial realigns). It marks each stage as it passes it:
the seconds since the parent launched it, its own CPU seconds (steadier
than wall time on a busy machine), its resident memory (``VmRSS``; of it
mapped files, ``RssFile``: shared-library code, SudachiPy's mmapped
dictionary) and its peak so far (``VmHWM``). Stages: interpreter up, the
trial's modules imported (torch with them), the model loaded (with
transformers' model code), the training features built, the realignment
corpora opened (dictionaries read), each segmenter loaded, the first
realignment step, realignment done, the realigned encoder saved, the
fine-tuning optimizer built, its first step, the end. It prints them,
the trial's own ``timings`` and ``peak_rss_mb`` from its provenance, and
which heavy packages the process imported.

A last child imports, one after the other, what a trial process may hold
(CPU seconds and memory of each, and ``-X importtime`` self time by
top-level package): torch, transformers, the project, tiny mBERT, a
MUSE-size dictionary (110,000 synthetic entries), each segmenter with its
dictionary, and ``ray.tune`` (a Tune worker has it), ``datasets``,
``pandas`` and ``pyarrow`` (which a trial never needs) for comparison;
and sizes the tiny model's parameters and their Adam state.

    python benchmarks/trial_overhead.py [--repeats 1] [--configs baseline,realign,realign-latin]
                                        [--with-ray] [--no-census]

Figures taken on a shared machine are noisy: compare runs made side by
side (``--repeats`` alternates the configurations). BENCHMARKS.md has
the figures and what makes up a trial's memory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CONFIGS = {"baseline": None, "realign": ["fr", "ru", "zh", "ja"], "realign-latin": ["fr", "de"]}
SEGMENTER_MODULES = ("jieba", "sudachipy", "pythainlp")
EVAL = {"en": "en_ewt-ud-test.first100.conllu", "fr": "fr_gsd-ud-test.first100.conllu",
        "ru": "ru_pud-ud-test.first50.conllu", "zh": "zh_gsd-ud-test.first100.conllu",
        "ja": "ja_gsd-ud-test.first50.conllu"}
UNNEEDED_MODULES = ("ray", "datasets", "pyarrow", "pandas", "sklearn", "scipy", "matplotlib")


def memory_mb() -> tuple[float, float, float]:
    """(VmRSS, VmHWM, RssFile) of this process in MB: resident now, at its highest so far, and the
    part of the resident memory that is mapped files (shared libraries' code, SudachiPy's dictionary:
    shared with every other process that maps them, and dropped rather than swapped under pressure)."""
    fields = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssFile"):
                fields[key] = int(value.split()[0]) / 1024
    return round(fields["VmRSS"], 1), round(fields["VmHWM"], 1), round(fields["RssFile"], 1)


class Marks:
    """Stages as the child passes them: (label, seconds since launch, CPU seconds of this process,
    VmRSS, VmHWM, RssFile)."""

    def __init__(self, launched: float):
        self.launched = launched
        self.rows: list[tuple[str, float, float, float, float, float]] = []

    def __call__(self, label: str) -> None:
        self.rows.append((label, round(time.time() - self.launched, 3), round(time.process_time(), 3),
                          *memory_mb()))


def _instrument(marks: Marks) -> None:
    """Mark the trial's stages by wrapping the functions that do them (this process only)."""
    import functools

    import torch

    import trainables.models as models
    import trainables.realignment.corpus as corpus
    import trainables.realignment.pretokenization as pretokenization
    import trainables.trial as trial

    def after(owner, name, label):
        original = getattr(owner, name)

        @functools.wraps(original)
        def wrapped(*args, **kwargs):
            value = original(*args, **kwargs)
            marks(label)
            return value
        setattr(owner, name, wrapped)

    import trainables.optimizers as optimizers
    import trainables.realignment.realigned_cache as realigned_cache
    import trainables.realignment.realigner as realigner

    after(models, "load_encoder", "model loaded")
    after(realigner, "realign", "realignment done")
    after(realigned_cache.RealignedCache, "save", "realigned encoder saved to the cache")
    building = optimizers.adam

    def adam(parameters, *args, **kwargs):
        parameters = list(parameters)
        optimizer = building(parameters, *args, **kwargs)
        if len(parameters) > 1:     # not device_settings' one-tensor probe
            marks("fine-tuning optimizer built")
        return optimizer
    optimizers.adam = adam
    after(trial.TrialRunner, "_setup", "setup done (features built)")
    after(corpus, "language_corpora", "realignment corpora ready (dictionaries read)")

    loading = pretokenization.segmenter.__wrapped__

    @functools.lru_cache(maxsize=None)
    def segmenter(kind):
        value = loading(kind)
        marks(f"segmenter {kind} loaded")
        return value
    pretokenization.segmenter = segmenter

    stepped: set[int] = set()

    def first_step(optimizer, args, kwargs):
        if id(optimizer) not in stepped:
            stepped.add(id(optimizer))
            phase = "fine-tuning" if isinstance(optimizer, torch.optim.AdamW) else "realignment"
            marks(f"first {phase} step done")
    from torch.optim.optimizer import register_optimizer_step_post_hook

    register_optimizer_step_post_hook(first_step)


def trial_specs(configs: list[str]) -> dict[str, dict]:
    """The spec of each configuration's trial, as the driver makes it (parsed and preflighted here,
    in the parent: a Tune worker receives a ready spec)."""
    from orchestrator.experiment import experiment_from_dict
    from trial_fixtures import small_pos_experiment

    specs = {}
    for config in configs:
        languages = CONFIGS[config]
        raw = small_pos_experiment(strategies=["front" if languages else "baseline"], seeds=[1])
        raw["languages"] = list(EVAL)[1:]
        raw["data"]["pos"]["eval"] = {k: f"bundled:ud/{v}" for k, v in EVAL.items()}
        if languages:
            realignment = raw["realignment"]
            realignment["languages"] = languages
            realignment["parallel"] = {l: realignment["parallel"].get(l) or _tatoeba(l) for l in languages}
            realignment["dictionaries"] = {l: f"bundled:dictionaries/muse/en-{l}.first3000.txt"
                                           for l in languages}
            realignment["steps"] = 4
        raw["finetune"].update({"epochs": 1, "max_train_examples": 64, "max_eval_examples": 8})
        [spec] = experiment_from_dict(raw).trials
        specs[config] = spec.to_dict()
    return specs


def child(spec_file: Path, launched: float, with_ray: bool) -> None:
    """One trial of the spec in ``spec_file``; prints its marks, timings and modules as one JSON line."""
    marks = Marks(launched)
    marks("interpreter up")
    if with_ray:
        import trainables.ray_trainable  # noqa: F401  (what a Tune worker holds before its trial)
        marks("ray.tune imported")
    from trainables.trial import run_trial
    from trainables.trial_spec import TrialSpec
    marks("trial module imported (torch with it)")
    _instrument(marks)
    spec = TrialSpec.from_dict(json.loads(spec_file.read_text(encoding="utf-8")))
    result = run_trial(spec, log=lambda _: None)
    marks("trial done")
    provenance = result["provenance"]
    print(json.dumps({"marks": marks.rows, "timings": provenance["timings"],
                      "peak_rss_mb": provenance["peak_rss_mb"],
                      "modules": sorted({m.split(".")[0] for m in sys.modules
                                         if m.split(".")[0] in SEGMENTER_MODULES + UNNEEDED_MODULES})}))


def _tatoeba(language: str) -> dict[str, str]:
    code = {"fr": "fra", "de": "deu", "ru": "rus", "zh": "cmn", "ja": "jpn"}[language]
    stem = f"bundled:parallel/tatoeba/tatoeba.{code}-eng"
    return {"source": f"{stem}.eng.first500", "target": f"{stem}.{code}.first500"}


# ------------------------------------------------------------------ import census

CENSUS = (   # label, statement; in the order a realigning trial process meets them
    ("torch", "import torch"),
    ("transformers (BertModel, tokenizer)", "import transformers; from transformers import BertModel, BertTokenizer"),
    ("alignfreeze (trial, tasks, realignment)",
     "import trainables.trial, trainables.tasks.registry, trainables.models, trainables.realignment.realigner, "
     "trainables.realignment.corpus"),
    ("tiny mBERT loaded", "from trainables.models import load_encoder; _m = load_encoder('tiny-mbert')"),
    ("a MUSE-size dictionary (110,000 entries)", "from trainables.realignment.word_pairs import "
                                                  "load_muse_dictionary; _d = load_muse_dictionary(_path)"),
    ("jieba + its dictionary", "from trainables.realignment.pretokenization import pretokenize; "
                               "pretokenize('我们去学校。', 'zh')"),
    ("sudachipy + core dictionary", "pretokenize('学校に行きます', 'ja')"),
    ("pythainlp + its dictionary", "pretokenize('ฉันไปโรงเรียน', 'th')"),
    ("ray.tune (the Tune worker)", "import ray.tune"),
    ("datasets", "import datasets"),
    ("pandas", "import pandas"),
    ("pyarrow", "import pyarrow"),
)


def muse_size_dictionary(path: Path, entries: int = 110_000) -> None:
    """A synthetic dictionary of the size of MUSE's en-xx ones (en-fr: 113,324 lines), seeded."""
    import random

    generator = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(generator.choices(letters, k=generator.randint(3, 10))) for _ in range(60_000)]
    with open(path, "w", encoding="utf-8") as handle:
        for _ in range(entries):
            handle.write(f"{generator.choice(words)}\t{generator.choice(words)}e\n")


def census_child() -> None:
    rows = []
    path = Path(tempfile.mkdtemp(prefix="alignfreeze-overhead-")) / "en-xx.txt"
    muse_size_dictionary(path)
    scope: dict = {"_path": path}
    for label, statement in CENSUS:
        (before, _, mapped_before), started = memory_mb(), time.process_time()
        try:
            exec(statement, scope)
            error = None
        except Exception as problem:    # a segmenter that is not installed: say so, go on
            error = f"{type(problem).__name__}: {problem}"[:80]
        rows.append({"label": label, "seconds": round(time.process_time() - started, 3),
                     "rss_mb": round(memory_mb()[0] - before, 1),
                     "mapped_mb": round(memory_mb()[2] - mapped_before, 1), "error": error,
                     "modules": len(sys.modules)})
    path.unlink()
    path.parent.rmdir()
    encoder = scope["_m"][0]
    embedding = encoder.get_input_embeddings().weight.numel()
    total = sum(p.numel() for p in encoder.parameters())
    print(json.dumps({"rows": rows, "embedding_params": embedding, "params": total,
                      "rss_mb": memory_mb()[0]}))


def importtime_by_package(stderr: str) -> dict[str, float]:
    """Seconds of ``-X importtime`` self time per top-level package."""
    totals: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        fields = [field.strip() for field in line[len("import time:"):].split("|")]
        if not fields[0].isdigit():
            continue    # the header line
        package = fields[2].split(".")[0]
        totals[package] = totals.get(package, 0.0) + int(fields[0]) / 1e6
    return totals


# ------------------------------------------------------------------------ parent

def run_child(args: list[str], env: dict[str, str], importtime: bool = False) -> tuple[dict, str]:
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), __file__, *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def print_trial(config: str, figures: dict) -> None:
    print(f"\n== {config}: stages (seconds since launch, CPU seconds of the child since the previous stage; "
          f"RSS now (of it mapped files) / peak so far, MB)")
    previous = 0.0
    for label, seconds, cpu, rss, hwm, mapped in figures["marks"]:
        print(f"  {seconds:7.2f} s (CPU +{cpu - previous:5.2f})  {rss:7.1f} ({mapped:5.1f}) / {hwm:7.1f}  {label}")
        previous = cpu
    timings = figures["timings"]
    print("  trial timings: " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
    print(f"  peak_rss_mb {figures['peak_rss_mb']}; heavy modules present: {', '.join(figures['modules']) or 'none'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs of each configuration (alternated)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, of: " + ", ".join(CONFIGS))
    parser.add_argument("--no-census", action="store_true", help="skip the import census")
    parser.add_argument("--with-ray", action="store_true",
                        help="import ray.tune in the trial process first, as a Tune worker does")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--launched", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "census":
        census_child()
        return
    if args.child:
        child(Path(args.child), args.launched, args.with_ray)
        return

    from trainables.tiny_models import tiny_model_dir

    tiny_model_dir("tiny-mbert")    # built once, outside the measured runs
    configs = args.configs.split(",")
    specs = trial_specs(configs)
    runs: dict[str, list[dict]] = {config: [] for config in configs}
    with tempfile.TemporaryDirectory(prefix="alignfreeze-overhead-") as scratch:
        for config, spec in specs.items():
            (Path(scratch) / f"{config}.json").write_text(json.dumps(spec), encoding="utf-8")
        for repeat in range(args.repeats):
            for config in configs:
                env = {**os.environ, "ALIGNFREEZE_REALIGNED_CACHE": str(Path(scratch) / f"{config}-{repeat}")}
                figures, _ = run_child(["--child", str(Path(scratch) / f"{config}.json"),
                                        "--launched", repr(time.time()), *(["--with-ray"] if args.with_ray else [])],
                                       env)
                runs[config].append(figures)
                print_trial(config + (f" (run {repeat + 1})" if args.repeats > 1 else ""), figures)
    print("\n== medians over runs: time (and CPU time) to the first fine-tuning step, to the end; peak RSS")
    for config, figures in runs.items():
        def at(label: str, figures=figures) -> float:
            return statistics.median(next(m[1] for m in f["marks"] if m[0].startswith(label)) for f in figures)
        def cpu(label: str, figures=figures) -> float:
            return statistics.median(next(m[2] for m in f["marks"] if m[0].startswith(label)) for f in figures)
        print(f"  {config:14} first fine-tuning step {at('first fine-tuning'):6.2f} s (CPU {cpu('first fine-tuning'):6.2f} s)"
              f"   end {at('trial done'):6.2f} s   peak {statistics.median(f['peak_rss_mb'] for f in figures):7.1f} MB")
    if args.no_census:
        return

    census, stderr = run_child(["--child", "census"], dict(os.environ), importtime=True)
    print("\n== import census (one process, in this order; CPU seconds, with first-use loading)")
    for row in census["rows"]:
        note = f"  ({row['error']})" if row["error"] else ""
        print(f"  {row['label']:42} {row['seconds']:6.2f} s  {row['rss_mb']:+7.1f} MB "
              f"(mapped files {row['mapped_mb']:+6.1f}){note}")
    print(f"  resident at the end: {census['rss_mb']:.0f} MB")
    params, embedding = census["params"], census["embedding_params"]
    print(f"  tiny mBERT: {params / 1e6:.1f} M parameters ({embedding / 1e6:.1f} M in the 119,547 x 128 "
          f"embedding): {params * 4 / 2**20:.0f} MB of weights; training adds gradients (1x) and Adam's two "
          f"moments (2x): {params * 12 / 2**20:.0f} MB more per optimizer")
    totals = importtime_by_package(stderr)
    top = sorted(totals.items(), key=lambda item: -item[1])[:12]
    print("  -X importtime, self seconds by top-level package: "
          + ", ".join(f"{name} {seconds:.2f}" for name, seconds in top))


if __name__ == "__main__":
    main()
