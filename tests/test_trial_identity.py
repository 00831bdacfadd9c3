"""Trial identity: a hash of what determines the result, not of where the files sit or how the file says it.

Moving the project or its data keeps every trial ID, and so does writing a
default out or listing the target languages in another order; the baseline
ignores every realignment setting; editing a data file gives new IDs. A
grid grown in place runs only its new trials (decided by the runner's
selection, tested here with Tune replaced by a stand-in; the slow test at
the end goes through Ray), and the results of trials the file no longer
plans are kept and listed by ``alignfreeze status``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator import results as results_dir
from orchestrator.experiment import load_experiment_file
from orchestrator.status import format_status, run_status
from trainables import trial_spec
from trainables.bundled import BUNDLED_PREFIX, bundled_path
from trainables.trial_spec import OUTSIDE_IDENTITY, TrialSpec

from trial_fixtures import small_pos_experiment


def write(path: Path, raw: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def ids(path: Path) -> list[str]:
    return [t.trial_id for t in load_experiment_file(path).trials]


def localized(raw: dict[str, Any], project: Path) -> dict[str, Any]:
    """``raw`` reading copies of its bundled files under ``project/data``, by paths relative to the file."""
    raw = copy.deepcopy(raw)

    def copy_tree(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: copy_tree(v) for k, v in value.items()}
        if isinstance(value, str) and value.startswith(BUNDLED_PREFIX):
            relative = value[len(BUNDLED_PREFIX):]
            target = project / "data" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(bundled_path(relative), target)
            return f"data/{relative}"
        return value

    raw["data"] = copy_tree(raw["data"])
    raw["realignment"] = copy_tree(raw["realignment"])
    return raw


def grid(**overrides: Any) -> dict[str, Any]:
    return small_pos_experiment(**{"strategies": ["baseline", "front"], **overrides})


# ------------------------------------------------------------------ identity
def test_moving_the_project_or_the_data_keeps_every_id(tmp_path):
    raw = grid()
    bundled = ids(write(tmp_path / "bundled.yaml", raw))
    project = tmp_path / "project"
    here = ids(write(project / "experiment.yaml", localized(raw, project)))
    moved = tmp_path / "elsewhere" / "moved"
    shutil.copytree(project, moved)
    shutil.rmtree(project)
    assert ids(moved / "experiment.yaml") == here
    # the package's copy of the same bytes is the same data
    assert here == bundled
    # an absolute path to another copy: still the same trials
    absolute = localized(raw, tmp_path / "absolute")
    absolute["data"]["pos"]["train"] = str(moved / absolute["data"]["pos"]["train"])
    assert ids(write(tmp_path / "absolute" / "experiment.yaml", absolute)) == here


def test_an_edited_data_file_changes_the_ids_of_the_trials_that_read_it(tmp_path):
    raw = grid()
    project = tmp_path / "project"
    path = write(project / "experiment.yaml", localized(raw, project))
    before = ids(path)
    train = project / "data" / "ud" / "en_ewt-ud-dev.first200.conllu"
    train.write_text(train.read_text(encoding="utf-8").replace("\tNOUN\t", "\tPROPN\t", 1), encoding="utf-8")
    after = ids(path)
    assert len(after) == len(before) and not set(after) & set(before)
    # a parallel corpus only realigning trials read: the baseline keeps its ID
    corpus = next((project / "data" / "parallel").rglob("*.fra.first500"))
    corpus.write_text("Encore une phrase.\n" + corpus.read_text(encoding="utf-8").split("\n", 1)[1],
                      encoding="utf-8")
    again = ids(path)
    assert [i for i in again if "_baseline_" in i] == [i for i in after if "_baseline_" in i]
    assert [i for i in again if "_front_" in i] != [i for i in after if "_front_" in i]


def test_reordered_target_languages_and_written_out_defaults_keep_the_ids(tmp_path):
    raw = grid()
    reference = ids(write(tmp_path / "a.yaml", raw))
    spelled = copy.deepcopy(raw)
    spelled["languages"] = ["ru", "fr"]
    spelled["data"]["pos"]["eval"] = dict(reversed(list(spelled["data"]["pos"]["eval"].items())))
    spelled["finetune"].update({"warmup_ratio": 0.1, "weight_decay": 0.0, "max_length": 96, "dropout": None,
                                "clip_grad_norm": None, "eval_batch_size": 64})
    spelled["realignment"].update({"temperature": 0.1, "projection": True, "layer": "penultimate",
                                   "interleaving": "shortest", "pretokenizer": "reference",
                                   "aligner_settings": {"symmetric": True}})
    spelled.update(freeze_embeddings=False, schedules=["before"], aligners=["dico"], precision="fp32",
                   # neither resources, device nor the cache location count
                   device="cpu", resources={"cpus": 2, "gpus": 0}, cache=str(tmp_path / "cache"))
    assert ids(write(tmp_path / "b.yaml", spelled)) == reference
    # a setting that changes the result does change them
    changed = copy.deepcopy(raw)
    changed["finetune"]["weight_decay"] = 0.01
    assert not set(ids(write(tmp_path / "c.yaml", changed))) & set(reference)


def test_the_baseline_ignores_every_realignment_setting(tmp_path):
    raw = grid()
    reference = ids(write(tmp_path / "a.yaml", raw))
    other = copy.deepcopy(raw)
    other["realignment"].update({"temperature": 0.5, "steps": 7, "languages": ["ru"], "max_pairs": 10})
    other.update(freeze_embeddings=True, aligners=["eflomal"], schedules=["during"])
    changed = ids(write(tmp_path / "b.yaml", other))
    assert [i for i in changed if "_baseline_" in i] == [i for i in reference if "_baseline_" in i]
    assert [i for i in changed if "_front_" in i] != [i for i in reference if "_front_" in i]


def spec(**changes: Any) -> TrialSpec:
    base = TrialSpec(model="tiny-xlmr", task="pos", strategy="front", seed=1, languages=("fr", "de"),
                     data={"train": "hub", "eval": {"en": "hub", "fr": "hub", "de": "hub"}}, aligner="dico",
                     realignment={"languages": ["fr"], "parallel": {"fr": "hub"}, "dictionaries": {"fr": "muse"}})
    return dataclasses.replace(base, **changes)


def test_the_learning_rate_a_model_gets_by_default_is_the_default():
    # XLM-R models get their own default rates, for fine-tuning and for realignment
    assert spec(finetune={"learning_rate": 7.5e-6}).key == spec().key
    assert spec(realignment={**spec().realignment, "learning_rate": 7.5e-6}).key == spec().key
    assert spec(model="tiny-mbert", finetune={"learning_rate": 2e-5}).key == spec(model="tiny-mbert").key
    assert spec(finetune={"learning_rate": 2e-5}).key != spec().key
    # "during" realigns at the fine-tuning's rate for as many steps: those two settings do not count there
    during = spec(schedule="during")
    assert spec(schedule="during", realignment={**spec().realignment, "learning_rate": 1.0, "steps": 3}).key \
        == during.key
    assert spec(schedule="during", realignment={**spec().realignment, "during_weight": 0.5}).key != during.key
    # a key of another task, or an unset option written out, changes nothing
    assert spec(finetune={"doc_stride": 64, "dropout": None, "zh_segmentation": "jieba"}).key == spec().key


def test_every_field_of_a_spec_either_counts_or_is_declared_outside_the_identity():
    reference = spec()
    changed = {
        "model": "tiny-mbert", "task": "ner", "strategy": "back", "seed": 2, "languages": ("fr",),
        "data": {"train": "hub:other", "eval": reference.data["eval"]}, "aligner": "eflomal",
        "schedule": "during", "freeze_embeddings": True,
        "realignment": {**reference.realignment, "temperature": 0.2},
        "finetune": {"epochs": 1}, "precision": "bf16", "compile": True,
        "model_type": "bert",    # measured from the model: it decides the default learning rates
    }
    outside = {"device": "cuda", "cpus": 4, "gpus": 1.0, "cache": "/elsewhere", "fingerprints": {"x": "y"}}
    assert set(OUTSIDE_IDENTITY) == set(outside)
    for field in dataclasses.fields(TrialSpec):
        assert field.name in changed or field.name in outside, (
            f"TrialSpec.{field.name}: say whether it changes a trial's result (canonical_definition) "
            f"or not (OUTSIDE_IDENTITY)")
        if field.name in changed:
            assert dataclasses.replace(reference, **{field.name: changed[field.name]}).key != reference.key, field.name
        else:
            assert dataclasses.replace(reference, **{field.name: outside[field.name]}).key == reference.key, field.name


def test_a_worker_derives_the_key_from_the_carried_fingerprints_without_hashing(tmp_path, monkeypatch):
    [driver] = load_experiment_file(write(tmp_path / "a.yaml", grid(strategies=["front"]))).trials
    assert driver.fingerprints and all(len(v) == 16 for v in driver.fingerprints.values())
    assert driver.model_type == "bert"

    def no_hashing(path):
        raise AssertionError(f"hashed {path} again")

    monkeypatch.setattr(trial_spec, "location_fingerprint", no_hashing)
    monkeypatch.setattr(trial_spec, "_model_type", no_hashing)    # nor reads the model's config
    worker = TrialSpec.from_dict(json.loads(json.dumps(driver.to_dict())))
    assert worker.trial_id == driver.trial_id


# ------------------------------------------------------- growing a grid in place
class StandInTune:
    """``fit_trials`` without Ray: records which trials the runner asked for and completes them."""

    def __init__(self):
        self.batches: list[list[str]] = []

    def __call__(self, specs, storage, name, *, on_result, on_error, **options):
        self.batches.append(sorted(spec.trial_id for spec in specs))
        for spec in specs:
            on_result({"trial_id": spec.trial_id, "status": "completed", "spec": spec.to_dict(),
                       "metrics": {language: {"accuracy": 0.5} for language in spec.languages},
                       "average": {"accuracy": 0.5}, "english": {"accuracy": 0.9},
                       "provenance": {"timings": {"total_s": 0.0}, "spec_key": spec.key}})
        return {"trials": len(specs), "errors": 0, "errored": []}


@pytest.fixture
def stand_in_tune(monkeypatch):
    from orchestrator.runner import TrialSession
    from trainables import ray_trainable

    tune = StandInTune()
    monkeypatch.setattr(ray_trainable, "fit_trials", tune)
    monkeypatch.setattr(TrialSession, "_connect", lambda self: None)
    return tune


def test_a_grown_grid_runs_only_its_new_trials_and_keeps_the_results_it_no_longer_plans(
        tmp_path, stand_in_tune, capsys):
    from orchestrator.runner import run_experiment

    output = tmp_path / "out"
    one_seed = load_experiment_file(write(tmp_path / "a.yaml", grid(seeds=[3])))
    run_experiment(one_seed, output, verbose=0)
    first = {t.trial_id for t in one_seed.trials}
    assert stand_in_tune.batches == [sorted(first)]
    written = {p.name: p.stat().st_mtime_ns for p in (output / "results").glob("*.json")}

    # one more seed: only its two trials run; the first results stay untouched
    two_seeds = load_experiment_file(write(tmp_path / "a.yaml", grid(seeds=[3, 4])))
    summary = run_experiment(two_seeds, output, verbose=0)
    added = {t.trial_id for t in two_seeds.trials} - first
    assert len(added) == 2 and stand_in_tune.batches[-1] == sorted(added)
    assert summary["already_done"] == 2 and summary["ran"] == 2
    assert {p.name: p.stat().st_mtime_ns for p in (output / "results").glob("*.json")
            if p.name in written} == written

    # seed 3 dropped: nothing runs, its results are kept apart and reported
    capsys.readouterr()
    seed_four = load_experiment_file(write(tmp_path / "a.yaml", grid(seeds=[4])))
    summary = run_experiment(seed_four, output, verbose=0)
    assert stand_in_tune.batches[-1] == sorted(added) and len(stand_in_tune.batches) == 2
    assert sorted(summary["no_longer_planned"]) == sorted(first)
    assert "2 result(s) of trials no longer in the experiment file" in capsys.readouterr().err
    assert {p.stem for p in (output / "results").glob("*.json")} == added
    status = run_status(output)
    assert status["counts"]["done"] == 2 and status["no_longer_planned"] == sorted(first)
    text = format_status(status)
    assert "2 result(s) of trials no longer in the experiment file" in text
    assert all(trial_id in text for trial_id in first)

    # seed 3 back: its results count again, nothing reruns
    run_experiment(two_seeds, output, verbose=0)
    assert len(stand_in_tune.batches) == 2
    assert {p.stem for p in (output / "results").glob("*.json")} == first | added
    assert run_status(output)["no_longer_planned"] == []


def test_status_lists_results_left_by_a_version_with_other_trial_ids(tmp_path):
    output = tmp_path / "out"
    experiment = load_experiment_file(write(tmp_path / "a.yaml", grid()))
    results_dir.write_manifest(output, "small", experiment.trials)
    manifest = results_dir.read_manifest(output)
    old_id = "tiny-mbert_pos_baseline_s3_0123abcd"
    manifest["trials"].append({"trial_id": old_id, "spec": {}})
    del manifest["identity"]    # as an older version wrote it
    (output / results_dir.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    results_dir.write_result(output, {"trial_id": old_id, "average": {"accuracy": 0.5}})
    # the older version's ID is not in the file's plan any more: its result is moved apart, kept
    reconciled = results_dir.write_manifest(output, "small", experiment.trials)
    assert reconciled.retired_now == [old_id] and (output / "retired" / f"{old_id}.json").is_file()
    assert run_status(output)["no_longer_planned"] == [old_id]


def test_a_depth_search_directory_still_refuses_other_data(tmp_path):
    raw = grid()
    raw.pop("strategies")
    raw["search"] = {"trials": 1, "sides": ["front"], "depths": [1, 1]}
    project = tmp_path / "project"
    path = write(project / "experiment.yaml", localized(raw, project))
    from orchestrator.depth_search import search_fingerprint
    from trainables.errors import SpecError

    experiment = load_experiment_file(path)
    output = tmp_path / "out"
    results_dir.write_manifest(output, "s", experiment.trials, search=search_fingerprint(experiment))
    corpus = next((project / "data" / "parallel").rglob("*.fra.first500"))
    corpus.write_text("Encore une phrase.\n" + corpus.read_text(encoding="utf-8").split("\n", 1)[1],
                      encoding="utf-8")
    edited = load_experiment_file(path)
    with pytest.raises(SpecError, match="holds a different experiment"):
        results_dir.write_manifest(output, "s", edited.trials, search=search_fingerprint(edited))


# --------------------------------------------------------------- through Ray
@pytest.mark.slow
def test_a_grid_grown_by_one_seed_reruns_only_the_new_trial_through_ray(tmp_path, capsys):
    from orchestrator.cli import main

    raw = small_pos_experiment(strategies=["baseline"], seeds=[3])
    raw["finetune"]["epochs"] = 1
    output = tmp_path / "out"
    assert main(["run", str(write(tmp_path / "a.yaml", raw)), "--output", str(output)]) == 0
    [first] = list((output / "results").glob("*.json"))
    written = first.read_bytes()
    raw["seeds"] = [3, 4]
    capsys.readouterr()
    assert main(["run", str(write(tmp_path / "a.yaml", raw)), "--output", str(output)]) == 0
    assert "ran 1 trials" in capsys.readouterr().err
    assert len(list((output / "results").glob("*.json"))) == 2 and first.read_bytes() == written
