"""A trial loads only what its languages need, and records where its setup time went.

The module checks run in a fresh interpreter: in the test process other
tests have loaded every segmenter already.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEGMENTER_MODULES = ("jieba", "sudachipy", "pythainlp")
# what a trial never needs (the Tune worker imports ray itself)
UNNEEDED_MODULES = ("datasets", "pyarrow", "pandas", "ray", "sklearn")

CORPORA = """
import json, sys
import trainables.trial
from trainables.realignment.corpus import language_corpora
from trainables.realignment.pretokenization import segmenter_load_seconds
languages = sys.argv[1].split(",")
codes = {"fr": "fra", "de": "deu", "zh": "cmn", "ja": "jpn"}
parallel = {l: {"source": f"bundled:parallel/tatoeba/tatoeba.{codes[l]}-eng.eng.first500",
                "target": f"bundled:parallel/tatoeba/tatoeba.{codes[l]}-eng.{codes[l]}.first500"} for l in languages}
from trainables.bundled import resolve_location
parallel = {l: {k: str(resolve_location(v)) for k, v in files.items()} for l, files in parallel.items()}
dictionaries = {l: str(resolve_location(f"bundled:dictionaries/muse/en-{l}.first3000.txt")) for l in languages}
linked = 0
for corpus in language_corpora(languages, parallel, "dico", dictionaries=dictionaries, max_pairs=50).values():
    linked += sum(1 for item in corpus if corpus.aligned(item).links)
print(json.dumps({"modules": sorted({m.split(".")[0] for m in sys.modules}), "linked": linked,
                  "segmenters_s": segmenter_load_seconds()}))
"""


def fresh_python(*args: str, **env_vars: str) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **env_vars}
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("languages, segmenters", [
    ("fr,de", set()),
    ("zh", {"jieba"}),
    ("ja", {"sudachipy"}),
])
def test_corpora_load_the_segmenters_of_their_languages_only(languages, segmenters):
    figures = fresh_python("-c", CORPORA, languages)
    assert figures["linked"] > 0     # the pairs were pre-tokenized and aligned
    assert {m for m in SEGMENTER_MODULES if m in figures["modules"]} == segmenters
    assert not set(UNNEEDED_MODULES) & set(figures["modules"])
    assert (figures["segmenters_s"] > 0) == bool(segmenters)


def test_loading_a_dictionary_leaves_the_garbage_collector_as_it_was(tmp_path):
    from trainables.realignment.word_pairs import load_muse_dictionary

    path = tmp_path / "en-fr.txt"
    path.write_text("the le\nthe la\ncat chat\n", encoding="utf-8")
    assert gc.isenabled()
    assert load_muse_dictionary(path).forward["the"] == {"le", "la"}
    assert gc.isenabled()
    gc.disable()
    try:
        load_muse_dictionary(path)
        assert not gc.isenabled()
    finally:
        gc.enable()


@pytest.mark.parametrize("symmetric", [True, False])
def test_a_dictionary_held_once_maps_as_the_reference_rule_does(symmetric):
    """Read symmetric, forward and backward are one mapping; the sets are the reference's either way."""
    from collections import defaultdict

    from trainables.bundled import resolve_location
    from trainables.realignment.word_pairs import load_muse_dictionary

    path = Path(resolve_location("bundled:dictionaries/muse/en-zh.first3000.txt"))
    forward, backward = defaultdict(set), defaultdict(set)    # the reference's four additions
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) != 2 or fields[0] == fields[1]:
            continue
        english, foreign = fields
        forward[english].add(foreign)
        backward[foreign].add(english)
        if symmetric:
            forward[foreign].add(english)
            backward[english].add(foreign)
    dictionary = load_muse_dictionary(path, symmetric=symmetric)
    assert dictionary.forward == forward and dictionary.backward == backward
    assert (dictionary.backward is dictionary.forward) == symmetric
    assert all(isinstance(words, frozenset) for words in dictionary.backward.values())


def test_a_corpus_prefix_is_hashed_once_per_file_version(tmp_path, monkeypatch):
    from trainables.realignment.corpus import corpus_fingerprint
    from trainables.realignment.parallel_data import ParallelCorpus

    monkeypatch.setenv("ALIGNFREEZE_CACHE", str(tmp_path / "cache"))
    files = {"source": tmp_path / "en.txt", "target": tmp_path / "fr.txt"}
    files["source"].write_text("a cat\nthe dog\nhello\n", encoding="utf-8")
    files["target"].write_text("un chat\nle chien\nbonjour\n", encoding="utf-8")
    corpus = ParallelCorpus("fr", {k: str(v) for k, v in files.items()}, 2)
    first = corpus_fingerprint(corpus)
    assert first == corpus.fingerprint() and first.endswith(":2")

    def no_reading(self):
        raise AssertionError("read again")
    monkeypatch.setattr(ParallelCorpus, "fingerprint", no_reading)
    assert corpus_fingerprint(corpus) == first               # remembered
    monkeypatch.undo()
    monkeypatch.setenv("ALIGNFREEZE_CACHE", str(tmp_path / "cache"))
    files["target"].write_text("un chien\nle chien\nbonjour\n", encoding="utf-8")
    changed = corpus_fingerprint(corpus)
    assert changed != first and changed == corpus.fingerprint()
    assert corpus_fingerprint(ParallelCorpus("fr", {k: str(v) for k, v in files.items()}, 3)).endswith(":3")


def test_process_age_is_the_time_since_the_process_started():
    from trainables.trial import process_age_s

    figures = fresh_python("-c", "import json, time; time.sleep(0.3); from trainables.trial import process_age_s; "
                                 "print(json.dumps({'age': process_age_s()}))")
    assert 0.3 <= figures["age"] < 120
    assert process_age_s() > 0


TRIAL = """
import json, sys
sys.path.insert(0, "tests")
from orchestrator.experiment import experiment_from_dict
from trainables.trial import run_trial
from trial_fixtures import small_pos_experiment
raw = small_pos_experiment(strategies=["front"], languages=["fr", "de"])
raw["data"]["pos"]["eval"]["de"] = "bundled:ud/de_gsd-ud-test.first100.conllu"
raw["realignment"]["languages"] = ["fr", "de"]
raw["realignment"]["steps"] = 2
raw["finetune"].update({"epochs": 1, "max_train_examples": 16, "max_eval_examples": 4})
[spec] = experiment_from_dict(raw).trials
provenance = run_trial(spec, log=lambda _: None)["provenance"]
print(json.dumps({"timings": provenance["timings"], "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


@pytest.mark.slow
def test_a_trial_records_its_setup_timings_and_loads_no_segmenter_it_does_not_use(tmp_path):
    figures = fresh_python("-c", TRIAL, ALIGNFREEZE_REALIGNED_CACHE=str(tmp_path))   # empty: it realigns
    timings = figures["timings"]
    assert {"startup_s", "model_s", "load_s", "corpora_s", "align_s", "segmenters_s", "first_step_s",
            "first_finetune_step_s", "realign_s", "finetune_s", "total_s"} <= set(timings)
    assert timings["segmenters_s"] == 0.0
    # realignment "before": its first batch comes before the first fine-tuning batch
    assert 0 < timings["model_s"] < timings["first_step_s"] < timings["first_finetune_step_s"]
    assert not {m for m in SEGMENTER_MODULES if m in figures["modules"]}
