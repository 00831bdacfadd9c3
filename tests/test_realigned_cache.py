"""The shared cache of realigned encoders: its key, its entries, its lock, and two trials sharing one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from orchestrator.experiment import experiment_from_dict
from trainables import artifacts
from trainables.errors import SpecError
from trainables.realignment import realigned_cache
from trainables.realignment.realigned_cache import (COMPLETE_FILE, WEIGHTS_FILE, RealignedCache, load_or_realign,
                                                     realignment_identity, realignment_key)

from trial_fixtures import small_pos_experiment

REPO = Path(__file__).resolve().parent.parent


class Encoder(nn.Module):
    """Stands in for an encoder: a block, and a pooler that realignment never trains."""

    def __init__(self, pooler: bool = True, width: int = 4):
        super().__init__()
        self.block = nn.Linear(width, width)
        if pooler:
            self.pooler = nn.Linear(width, width)


def realigner(value: float, calls: list[str]):
    """A ``compute`` that 'realigns' an encoder by setting its block's weights to ``value``."""
    def compute(encoder: nn.Module):
        def run():
            calls.append("computed")
            with torch.no_grad():
                encoder.block.weight.fill_(value)
            return {"realign_steps": 3, "realign_s": 1.5}
        return run
    return compute


def test_an_entry_round_trips_through_a_path_and_an_fsspec_uri(tmp_path):
    for location in (str(tmp_path / "cache"), "memory://alignfreeze-test/roundtrip", f"file://{tmp_path}/uri"):
        cache = RealignedCache(location)
        source, calls = Encoder(), []
        stats, hit = load_or_realign(cache, "0123456789abcdef", source, realigner(0.5, calls)(source),
                                     {"model": "m"}, log=lambda _: None)
        assert (hit, calls, stats["realign_steps"]) == (False, ["computed"], 3)
        target = Encoder()
        pooler_before = target.pooler.weight.clone()
        stats, hit = load_or_realign(cache, "0123456789abcdef", target, realigner(9.0, calls)(target),
                                     {"model": "m"}, log=lambda _: None)
        assert hit and calls == ["computed"] and stats == {"realign_steps": 3, "realign_s": 1.5}
        assert torch.equal(target.block.weight, source.block.weight)
        # the pooler is not stored: each trial keeps its own (and an encoder without one loads the entry)
        assert torch.equal(target.pooler.weight, pooler_before)
        assert cache.load("0123456789abcdef", Encoder(pooler=False)) is not None
        [entry] = cache.entries()
        assert entry.key == "0123456789abcdef" and entry.meta["model"] == "m" and entry.bytes > 0


def test_an_entry_without_its_marker_is_not_used(tmp_path):
    cache = RealignedCache(str(tmp_path))
    encoder = Encoder()
    cache.save("0123456789abcdef", encoder, {})
    (tmp_path / "0123456789abcdef" / COMPLETE_FILE).unlink()   # as if the write had stopped before it
    assert cache.load("0123456789abcdef", Encoder()) is None
    assert cache.entries() == []


@pytest.mark.parametrize("damage", ["truncate", "other_tensors", "marker"])
def test_a_damaged_entry_is_refused_with_a_warning_and_recomputed(tmp_path, damage):
    cache = RealignedCache(str(tmp_path))
    calls: list[str] = []
    first = Encoder()
    load_or_realign(cache, "0123456789abcdef", first, realigner(0.5, calls)(first), {}, log=lambda _: None)
    attempt = cache.complete_attempt("0123456789abcdef")
    weights = tmp_path / "0123456789abcdef" / attempt / WEIGHTS_FILE
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:-100])
    elif damage == "other_tensors":   # a consistent entry of another architecture
        cache.save("0123456789abcdef", Encoder(width=3), {}, replacing=attempt)
    else:
        (tmp_path / "0123456789abcdef" / COMPLETE_FILE).write_text("{not json")
    messages: list[str] = []
    second = Encoder()
    untouched = second.block.weight.clone()
    stats, hit = load_or_realign(cache, "0123456789abcdef", second,
                                 lambda: (messages.append("computed") or {"realign_steps": 3}),
                                 {}, log=messages.append)
    assert not hit and messages[-1] == "computed"
    assert any("damaged" in m and "recomputing" in m for m in messages)
    assert torch.equal(second.block.weight, untouched), "a damaged entry was partly loaded"
    # the recomputed entry replaced it
    assert cache.load("0123456789abcdef", Encoder()) is not None
    assert len([p for p in (tmp_path / "0123456789abcdef").iterdir() if p.is_dir()]) == 1 + (damage == "marker")


def test_a_failed_write_costs_the_reuse_not_the_trial_and_leaves_nothing(tmp_path, monkeypatch):
    import safetensors.torch

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    cache, calls, messages = RealignedCache(str(tmp_path)), [], []
    encoder = Encoder()
    stats, hit = load_or_realign(cache, "0123456789abcdef", encoder, realigner(0.5, calls)(encoder), {},
                                 log=messages.append)
    assert (hit, calls, stats["realign_steps"]) == (False, ["computed"], 3)
    assert any("cannot store 0123456789abcdef" in m and "No space left" in m for m in messages)
    assert not [p for p in (tmp_path / "0123456789abcdef").rglob("*")], "a half-written entry was left"


def test_a_write_that_lost_the_race_keeps_the_entry_written_first():
    """Object storage has no lock: two trials may compute the same realignment; the first complete write wins."""
    cache = RealignedCache("memory://alignfreeze-test/race")
    winner, loser = Encoder(), Encoder()
    seen_by_loser = cache.current_attempt("0123456789abcdef")   # nothing yet: both start computing
    cache.save("0123456789abcdef", winner, {"by": "winner"})
    cache.save("0123456789abcdef", loser, {"by": "loser"}, replacing=seen_by_loser)
    assert cache.load("0123456789abcdef", Encoder())["by"] == "winner"
    assert len(cache.fs.ls(cache._path("0123456789abcdef"))) == 3   # the attempt, the marker, last_used


_WORKER = """
import sys, time
from pathlib import Path
import torch
from torch import nn
from trainables.realignment.realigned_cache import RealignedCache, load_or_realign

root, name = Path(sys.argv[1]), sys.argv[2]
encoder = nn.Linear(4, 4)

def compute():
    (root / f"computing-{name}").write_text("")
    while not (root / "go").exists():     # hold the lock until the test says so
        time.sleep(0.02)
    with torch.no_grad():
        encoder.weight.fill_(0.25)
    return {"realign_steps": 1}

def log(message):
    if message.startswith("waiting"):
        (root / f"waiting-{name}").write_text("")

stats, hit = load_or_realign(RealignedCache(str(root / "cache")), "0123456789abcdef", encoder, compute, {}, log=log)
print("hit" if hit else "computed", float(encoder.weight[0, 0]))
"""


@pytest.mark.slow
def test_two_trials_needing_the_same_realignment_at_once_compute_it_once(tmp_path):
    def start(name: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path), name], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_for(path: Path, process: subprocess.Popen) -> None:
        deadline = time.monotonic() + 120
        while not path.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"{path.name} never appeared"
            time.sleep(0.05)

    first = start("a")
    wait_for(tmp_path / "computing-a", first)          # a holds the lock, computing
    second = start("b")
    wait_for(tmp_path / "waiting-b", second)           # b found it taken and waits
    (tmp_path / "go").write_text("")
    outputs = [process.communicate(timeout=120)[0].split() for process in (first, second)]
    assert outputs == [["computed", "0.25"], ["hit", "0.25"]]
    assert not (tmp_path / "computing-b").exists()


# ------------------------------------------------------------------------ the key
def specs(**overrides):
    raw = small_pos_experiment(**overrides)
    return experiment_from_dict(raw).trials


def one_spec(**overrides):
    [spec] = specs(**overrides)
    return spec


def test_the_key_ignores_the_task_the_targets_and_fine_tuning():
    import dataclasses

    spec = one_spec(strategies=["front"])
    other_task = dataclasses.replace(spec, task="ner", languages=("de",), data={"train": "x", "eval": {}},
                                     finetune={"epochs": 7, "learning_rate": 1.0}, cpus=4, cache="/elsewhere")
    assert realignment_key(spec, 10) == realignment_key(other_task, 10)
    identity = realignment_identity(spec, 10)
    assert identity["frozen"] == {"num_blocks": 4, "blocks": [0, 1], "embeddings": False}
    assert identity["settings"]["learning_rate"] == spec.realignment["learning_rate"]
    # a frozen set is what it freezes, whatever the strategy is called
    assert realignment_key(spec, 10) == realignment_key(dataclasses.replace(spec, strategy="range:1-3"), 10)


@pytest.mark.parametrize("change", [
    {"steps": 11}, {"seed": 4}, {"strategy": "back"}, {"strategy": "front+embeddings"}, {"precision": "bf16"},
    {"realignment": {"learning_rate": 1e-4}}, {"realignment": {"batch_size": 8}},
    {"realignment": {"temperature": 0.2}}, {"realignment": {"layer": "last"}},
    {"realignment": {"loss_reduction": "sentence_pairs"}}, {"realignment": {"word_representation": "sum"}},
    {"realignment": {"max_length": 64}}, {"realignment": {"projection": False}},
    {"realignment": {"projection_dim": 64}}, {"realignment": {"max_pairs": 32}},
    {"realignment": {"pretokenizer": "unicode"}}, {"realignment": {"aligner_settings": {"lowercase_fallback": True}}},
    {"realignment": {"languages": ["ru", "fr"]}}, {"aligner": "eflomal"},
])
def test_the_key_changes_with_what_changes_the_weights(change):
    import dataclasses

    spec = one_spec(strategies=["front"])
    steps = change.pop("steps", 10)
    if "realignment" in change:
        change["realignment"] = {**spec.realignment, **change["realignment"]}
    assert realignment_key(dataclasses.replace(spec, **change), steps) != realignment_key(spec, 10)


def test_the_key_follows_the_corpus_content_not_its_path(tmp_path):
    import dataclasses
    import shutil

    spec = one_spec(strategies=["front"])
    realignment = json.loads(json.dumps(spec.realignment))
    original = realignment["parallel"]["fr"]["target"]
    copy = tmp_path / "fra.txt"
    shutil.copyfile(original, copy)
    realignment["parallel"]["fr"]["target"] = str(copy)
    moved = dataclasses.replace(spec, realignment=realignment)
    assert realignment_key(moved, 10) == realignment_key(spec, 10)
    lines = copy.read_text(encoding="utf-8").splitlines()
    copy.write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n", encoding="utf-8")
    os.utime(copy, ns=(time.time_ns(), time.time_ns() + 10**9))   # a new mtime, as an edit gives
    assert realignment_key(moved, 10) != realignment_key(spec, 10)
    # the dictionary's content counts too
    dictionary = tmp_path / "dico.txt"
    dictionary.write_text("cat chat\n", encoding="utf-8")
    other = json.loads(json.dumps(realignment))
    other["dictionaries"]["fr"] = str(dictionary)
    assert realignment_key(dataclasses.replace(moved, realignment=other), 10) != realignment_key(moved, 10)


def test_hub_sources_and_muse_are_keyed_by_name_without_network():
    import dataclasses

    spec = one_spec(strategies=["front"])
    realignment = {**spec.realignment, "parallel": {**spec.realignment["parallel"], "fr": "hub"},
                   "dictionaries": {**spec.realignment["dictionaries"], "fr": "muse"}}
    identity = realignment_identity(dataclasses.replace(spec, realignment=realignment), 10)
    assert identity["corpus"]["fr"] == {
        "parallel": {"hub": "Helsinki-NLP/opus-100", "config": "en-fr", "split": "train"},
        "dictionary": {"muse": "https://dl.fbaipublicfiles.com/arrival/dictionaries/en-fr.txt"}}
    hub_model = realignment_identity(dataclasses.replace(spec, model="xlm-roberta-base"), 10)
    assert hub_model["model"]["hub"] == "xlm-roberta-base"
    assert hub_model["settings"]["learning_rate"] == spec.realignment["learning_rate"]


def test_a_large_file_is_hashed_once(tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNFREEZE_CACHE", str(tmp_path / "cache"))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b c\n" * 1000)
    hashed = []
    real = artifacts.file_fingerprint
    monkeypatch.setattr(artifacts, "file_fingerprint", lambda path: hashed.append(path) or real(path))
    first = realigned_cache.cached_file_fingerprint(corpus)
    artifacts._FINGERPRINTS.clear()    # another process: the record on disk answers
    assert realigned_cache.cached_file_fingerprint(corpus) == first and len(hashed) == 1


# ------------------------------------------------------------ the cache location
def test_an_unwritable_cache_location_stops_the_experiment_before_any_trial(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SpecError, match="cache location .*a-file/realigned is not writable"):
        specs(strategies=["front"], cache=str(blocker / "realigned"))
    # a grid without a "before" realignment never uses it
    assert specs(strategies=["baseline"], cache=str(blocker / "realigned"))
    with pytest.raises(SpecError, match="cache location foo://x: Protocol not known"):
        specs(strategies=["front"], cache="foo://x")


# ---------------------------------------------------------------- in real trials
@pytest.mark.slow
def test_two_tasks_share_one_realignment_with_identical_weights(tmp_path, monkeypatch):
    """PoS computes the realignment, NER reuses it: the same weights NER computes with an empty cache."""
    from trainables.trial import CHECKPOINT_FILE, TrialRunner, run_trial

    raw = two_task_experiment(tmp_path / "shared")
    pos, ner = experiment_from_dict(raw).trials
    assert (pos.task, ner.task) == ("pos", "ner")

    def realigned(spec, name, cache=None):
        import dataclasses

        spec = dataclasses.replace(spec, cache=cache) if cache else spec
        result = run_trial(spec, checkpoint_root=tmp_path / name, log=lambda _: None)
        encoder = torch.load(tmp_path / name / "realigned" / CHECKPOINT_FILE, weights_only=False)["encoder"]
        return result, encoder

    pos_result, pos_encoder = realigned(pos, "pos")
    ner_result, ner_encoder = realigned(ner, "ner")
    # NER computed afresh, its setup drawing random numbers as a task's loading may (the first
    # trial on a node builds the tiny model; a sampled training set): the realignment must not care
    setup = TrialRunner._setup
    monkeypatch.setattr(TrialRunner, "_setup", lambda self: (setup(self), torch.rand(100), None)[-1])
    fresh_result, fresh_encoder = realigned(ner, "fresh", cache=str(tmp_path / "empty"))
    assert pos_result["provenance"]["realignment_cache"]["hit"] is False
    assert ner_result["provenance"]["realignment_cache"] == {
        "key": pos_result["provenance"]["realignment_cache"]["key"], "hit": True}
    assert fresh_result["provenance"]["realignment_cache"]["hit"] is False
    assert ner_encoder.keys() == fresh_encoder.keys()
    assert all(torch.equal(ner_encoder[name], fresh_encoder[name]) for name in ner_encoder)
    assert all(torch.equal(pos_encoder[name], fresh_encoder[name]) for name in pos_encoder)
    # the whole trial too: reusing the realignment changes nothing downstream (the fine-tuning reseeds)
    assert ner_result["metrics"] == fresh_result["metrics"]
    assert ner_result["provenance"]["realign_loss_last"] == fresh_result["provenance"]["realign_loss_last"]


@pytest.mark.slow
def test_a_trial_resumed_after_its_realignment_keeps_its_cache_provenance(tmp_path):
    from trainables.trial import run_trial

    [spec] = specs(strategies=["full"], cache=str(tmp_path / "cache"))

    def stop_after_realignment(metrics, directory):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_trial(spec, checkpoint_root=tmp_path / "run", on_checkpoint=stop_after_realignment, log=lambda _: None)
    [entry] = RealignedCache(str(tmp_path / "cache")).entries()   # stored before the checkpoint
    messages: list[str] = []
    resumed = run_trial(spec, resume_from=tmp_path / "run" / "realigned", log=messages.append)
    assert resumed["provenance"]["realignment_cache"] == {"key": entry.key, "hit": False}
    assert not any("realigning" in m or "reused" in m for m in messages)


@pytest.mark.slow
def test_the_during_schedule_records_why_it_has_no_cached_realignment(tmp_path):
    from trainables.trial import run_trial

    [spec] = specs(strategies=["front"], schedules=["during"], cache=str(tmp_path / "cache"))
    result = run_trial(spec, log=lambda _: None)
    assert result["provenance"]["realignment_cache"] == {
        "key": None, "hit": False, "reason": "schedule 'during' realigns inside fine-tuning"}
    assert RealignedCache(str(tmp_path / "cache")).entries() == []


def test_with_steps_auto_each_task_has_its_own_realignment(tmp_path):
    from trainables.trial import TrialRunner

    raw = two_task_experiment(tmp_path / "cache")
    raw["realignment"]["steps"] = "auto"
    keys = {}
    for spec in experiment_from_dict(raw).trials:
        runner = TrialRunner(spec, log=lambda _: None)
        runner._setup()
        keys[spec.task] = (runner._realignment_steps(), realignment_key(spec, runner._realignment_steps()))
    assert keys["pos"][0] != keys["ner"][0]
    assert keys["pos"][1] != keys["ner"][1]


def two_task_experiment(cache: Path) -> dict:
    """PoS and NER on the bundled slices, one strategy, a fixed realignment budget."""
    raw = small_pos_experiment(strategies=["front"])
    raw["tasks"] = ["pos", "ner"]
    raw["languages"] = {"pos": ["fr", "ru"], "ner": ["de", "ru"]}
    raw["data"]["ner"] = {"train": "bundled:ner/wikiann/en/train.first1000.conllu",
                          "eval": {language: f"bundled:ner/wikiann/{language}/test.first200.conllu"
                                   for language in ("en", "de", "ru")}}
    raw["finetune"]["ner"] = {"max_train_examples": 64}
    raw["realignment"]["steps"] = 4
    raw["cache"] = str(cache)
    return raw
