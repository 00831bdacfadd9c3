"""Loggers: the experiment file's ``loggers:`` and their settings; a tiny grid through Ray Tune
read back from its TensorBoard files, a local MLflow store (through MLflow's client) and W&B's
offline run files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.logger_settings import LoggerSettings, parse_logger_settings
from trainables.errors import SpecError


def test_tensorboard_alone_by_default():
    assert parse_logger_settings({}, "demo", environ={}) == LoggerSettings(("tensorboard",), 10, {}, {})
    assert parse_logger_settings({"loggers": []}, "demo", environ={}).loggers == ()
    assert parse_logger_settings({"tensorboard": {"every": 50}}, "demo", environ={}).every == 50


def test_settings_come_from_the_file_then_the_environment_then_the_name():
    mlflow = pytest.importorskip("mlflow")
    assert mlflow
    environ = {"MLFLOW_TRACKING_URI": "sqlite:///env.db"}
    settings = parse_logger_settings({"loggers": ["mlflow"]}, "demo", environ=environ)
    assert settings.mlflow == {"tracking_uri": "sqlite:///env.db", "experiment_name": "demo"}
    settings = parse_logger_settings({"loggers": ["mlflow"], "mlflow": {"tracking_uri": "file:/tmp/x"}},
                                     "demo", environ=environ)
    assert settings.mlflow["tracking_uri"] == "file:/tmp/x"


def test_wandb_settings_from_the_environment():
    pytest.importorskip("wandb")
    environ = {"WANDB_MODE": "offline", "WANDB_DIR": "/tmp/w", "WANDB_ENTITY": "lab"}
    settings = parse_logger_settings({"loggers": ["tensorboard", "wandb"], "wandb": {"project": "p"}},
                                     "demo", environ=environ)
    assert settings.wandb == {"project": "p", "entity": "lab", "group": "demo", "mode": "offline", "dir": "/tmp/w"}


@pytest.mark.parametrize("raw, message", [
    ({"loggers": ["tensorbord"]}, "unknown logger in loggers 'tensorbord'; did you mean tensorboard?"),
    ({"loggers": "mlflow"}, "loggers must be a list of tensorboard, mlflow, wandb, got 'mlflow'"),
    ({"loggers": ["tensorboard", "tensorboard"]}, "loggers lists a logger twice"),
    ({"tensorboard": {"every": 0}}, "tensorboard.every must be"),
    ({"wandb": {"project": "p"}}, "wandb: settings given but wandb is not in loggers"),
    ({"loggers": ["wandb"], "wandb": {"mode": "sometimes"}}, "wandb.mode must be one of online, offline, disabled"),
])
def test_bad_logger_settings_are_one_line(raw, message):
    with pytest.raises(SpecError) as error:
        parse_logger_settings(raw, "demo", environ={})
    assert message in str(error.value) and "\n" not in str(error.value)


def test_parameters_and_tags_of_a_trial():
    from trial_fixtures import small_pos_experiment

    from orchestrator.experiment import experiment_from_dict
    from trainables.ray_trainable import reported_metrics, trial_params, trial_tags

    [spec] = experiment_from_dict(small_pos_experiment(strategies=["front"])).trials
    assert trial_tags(spec) == {"trial_id": spec.trial_id, "model": "tiny-mbert", "task": "pos",
                                "strategy": "front", "seed": "3", "aligner": "dico", "schedule": "before"}
    params = trial_params(spec)
    assert params["finetune.epochs"] == "2" and params["languages"] == '["fr", "ru"]'
    assert params["spec_key"] == spec.key and all(len(v) <= 500 for v in params.values())
    assert reported_metrics({"fr_accuracy": 0.5, "phase": "done", "result_json": "{}", "pid": 7,
                             "training_iteration": 3, "done": True}) == {"fr_accuracy": 0.5}


# ------------------------------------------------------------------ through Ray Tune
@pytest.fixture(scope="module")
def logged_grid(tmp_path_factory):
    """One tiny realigned trial through Ray Tune with every logger installed here."""
    import os

    from trial_fixtures import small_pos_experiment

    from orchestrator.cluster import connect, shutdown
    from orchestrator.experiment import experiment_from_dict
    from trainables.ray_trainable import fit_trials

    tmp = tmp_path_factory.mktemp("loggers")
    loggers = ["tensorboard"] + [name for name in ("mlflow", "wandb") if _installed(name)]
    raw = small_pos_experiment(strategies=["front"], loggers=loggers, tensorboard={"every": 2},
                               cache=str(tmp / "cache"))
    raw["finetune"]["epochs"] = 1
    if "mlflow" in loggers:
        raw["mlflow"] = {"tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}", "experiment_name": "loggers-test"}
    if "wandb" in loggers:
        raw["wandb"] = {"project": "alignfreeze-test", "mode": "offline"}
    experiment = experiment_from_dict(raw)
    saved = {k: os.environ.get(k) for k in ("WANDB_DIR", "WANDB_SILENT")}
    os.environ.update(WANDB_DIR=str(tmp / "wandb"), WANDB_SILENT="true")
    (tmp / "wandb").mkdir()
    settings = parse_logger_settings(raw, experiment.name)
    results, errors = [], []
    connect(None, 2, 0)
    try:
        outcome = fit_trials(experiment.trials, tmp / "out" / "ray", "tune-test", on_result=results.append,
                             on_error=lambda spec, message: errors.append(message), verbose=0,
                             loggers=settings.to_dict())
    finally:
        shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert outcome["errors"] == 0 and not errors and len(results) == 1
    return tmp, results[0], loggers


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


@pytest.mark.slow
def test_a_trial_writes_its_curves_in_its_tune_trial_directory(logged_grid):
    from trainables.training_curves import curves_directories, read_curves

    tmp, result, _ = logged_grid
    trial = tmp / "out" / "ray" / "tune-test" / result["trial_id"]
    assert curves_directories(tmp / "out" / "ray") == [trial / "finetune", trial / "realignment"]
    realignment, finetune = read_curves(trial / "realignment"), read_curves(trial / "finetune")
    steps = result["provenance"]["realign_steps"]      # "auto": as many as the fine-tuning's
    assert [s for s, _ in realignment["loss/realignment"]] == [*range(2, steps + 1, 2)] + (
        [steps] if steps % 2 else [])
    for tag in ("loss/task", "optimizer/learning_rate", "optimizer/grad_norm", "throughput/tokens_per_s"):
        assert finetune[tag][-1][0] == result["provenance"]["finetune_steps"], tag
    assert finetune["test/fr/accuracy"] == [(steps, pytest.approx(result["metrics"]["fr"]["accuracy"]))]
    assert finetune["test/average/accuracy"][0][1] == pytest.approx(result["average"]["accuracy"])
    # Tune's own TensorBoard file (its reports on its iteration axis) is not written; its CSV and JSON are
    assert not list(trial.glob("events.out.tfevents.*"))
    assert (trial / "progress.csv").is_file() and (trial / "result.json").is_file()


@pytest.mark.slow
def test_mlflow_records_the_trial_definition_tags_and_metrics(logged_grid):
    mlflow = pytest.importorskip("mlflow")
    tmp, result, loggers = logged_grid
    assert "mlflow" in loggers
    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("loggers-test")
    [run] = client.search_runs([experiment.experiment_id])
    spec = result["spec"]
    assert run.info.run_name == result["trial_id"] and run.info.status == "FINISHED"
    assert {k: run.data.tags[k] for k in ("model", "task", "strategy", "seed", "aligner", "schedule")} == {
        "model": spec["model"], "task": "pos", "strategy": "front", "seed": "3", "aligner": "dico",
        "schedule": "before"}
    assert run.data.params["finetune.epochs"] == "1" and run.data.params["model"] == spec["model"]
    metrics = run.data.metrics
    assert metrics["fr_accuracy"] == pytest.approx(result["metrics"]["fr"]["accuracy"])
    assert metrics["avg_accuracy"] == pytest.approx(result["average"]["accuracy"])
    assert metrics["en_accuracy"] == pytest.approx(result["english"]["accuracy"])
    assert "result_json" not in metrics and "pid" not in metrics


def wandb_records(path: Path):
    """The records of a W&B run file (``run-<id>.wandb``): a 7-byte header (``:W&B``...), then
    LevelDB log records in 32 KiB blocks (crc, length, kind: 1 whole, 2 first, 3 middle, 4 last)."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    position, pending = 7, b""
    while position + 7 <= len(data):
        left = 32768 - position % 32768
        _, length, kind = struct.unpack("<IHB", data[position:position + 7]) if left >= 7 else (0, 0, 0)
        if left < 7 or (kind == 0 and length == 0):     # a block's padding
            position += left
            continue
        chunk = data[position + 7:position + 7 + length]
        position += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


@pytest.mark.slow
def test_wandb_offline_run_files_hold_the_trial(logged_grid):
    pytest.importorskip("wandb")
    tmp, result, loggers = logged_grid
    assert "wandb" in loggers
    [run_file] = list((tmp / "wandb").rglob("offline-run-*/run-*.wandb"))
    records = list(wandb_records(run_file))
    [run] = [r.run for r in records if r.HasField("run")]
    spec = result["spec"]
    assert run.display_name == result["trial_id"] and run.project == "alignfreeze-test"
    assert {"model:" + spec["model"], "task:pos", "strategy:front", "seed:3", "aligner:dico",
            "schedule:before"} <= set(run.tags)
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["finetune.epochs"] == "1" and config["trial_id"] == result["trial_id"]
    logged = {}
    for record in records:
        if record.HasField("history"):
            logged.update({"/".join(item.nested_key) or item.key: json.loads(item.value_json)
                           for item in record.history.item})
    assert logged["fr_accuracy"] == pytest.approx(result["metrics"]["fr"]["accuracy"])
    assert logged["avg_accuracy"] == pytest.approx(result["average"]["accuracy"])
    assert "result_json" not in logged
    assert any(r.HasField("exit") for r in records)     # the run was finished, not cut off
