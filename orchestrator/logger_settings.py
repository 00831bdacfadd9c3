"""The experiment file's ``loggers:`` and their settings: where trials' curves and results go.

``loggers: [tensorboard, mlflow, wandb]`` (default ``[tensorboard]``;
``[]`` for none). TensorBoard curves are written by each trial
(``trainables.training_curves``); MLflow and W&B get each trial's
definition, tags and reported metrics from the driver, through Ray Tune's
logger callbacks (``trainables.ray_trainable.logger_callbacks``). What the
file leaves out comes from the environment (MLFLOW_TRACKING_URI,
MLFLOW_EXPERIMENT_NAME, WANDB_PROJECT, WANDB_ENTITY, WANDB_RUN_GROUP,
WANDB_MODE), then from the experiment's name. The settings never change
a trial's identity.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from orchestrator.experiment_schema import MLFLOW, TENSORBOARD, WANDB
from trainables.errors import SpecError, short, unknown_name
from trainables.settings_schema import check_section
from trainables.training_curves import DEFAULT_EVERY

LOGGERS = ("tensorboard", "mlflow", "wandb")
DEFAULT_LOGGERS = ("tensorboard",)
# logger -> the package it needs, and the extra that installs it
PACKAGES = {"mlflow": "mlflow", "wandb": "wandb"}


@dataclass(frozen=True)
class LoggerSettings:
    loggers: tuple[str, ...] = DEFAULT_LOGGERS
    every: int = DEFAULT_EVERY                              # tensorboard: steps between points
    mlflow: dict[str, Any] = field(default_factory=dict)    # MLflowLoggerCallback's arguments
    wandb: dict[str, Any] = field(default_factory=dict)     # WandbLoggerCallback's (and wandb.init's)

    def to_dict(self) -> dict[str, Any]:
        """What the trainables' side takes (plain data: it travels to Ray as is)."""
        return {"loggers": list(self.loggers), "every": self.every, "mlflow": dict(self.mlflow),
                "wandb": dict(self.wandb)}


def parse_logger_settings(raw: Mapping[str, Any], experiment_name: str,
                          environ: Mapping[str, str] | None = None) -> LoggerSettings:
    """The loggers of an experiment file's top level (``raw``); a one-line SpecError for a bad one."""
    environ = os.environ if environ is None else environ
    chosen = raw.get("loggers", list(DEFAULT_LOGGERS))
    if chosen is None:
        chosen = []
    if not isinstance(chosen, list) or not all(isinstance(name, str) for name in chosen):
        raise SpecError(f"loggers must be a list of {', '.join(LOGGERS)}, got {short(chosen)}")
    for name in chosen:
        if name not in LOGGERS:
            raise unknown_name("logger in loggers", name, LOGGERS)
    if len(set(chosen)) != len(chosen):
        raise SpecError(f"loggers lists a logger twice: {chosen}")
    tensorboard = check_section(raw.get("tensorboard"), TENSORBOARD, "tensorboard")
    mlflow = check_section(raw.get("mlflow"), MLFLOW, "mlflow")
    wandb = check_section(raw.get("wandb"), WANDB, "wandb")
    for name in ("mlflow", "wandb"):
        if raw.get(name) and name not in chosen:
            raise SpecError(f"{name}: settings given but {name} is not in loggers (loggers: {chosen})")
        if name in chosen and importlib.util.find_spec(PACKAGES[name]) is None:
            raise SpecError(f"loggers: {name} needs the {PACKAGES[name]} package: pip install 'alignfreeze[{name}]'")
    mlflow_settings = {
        "tracking_uri": mlflow.get("tracking_uri") or environ.get("MLFLOW_TRACKING_URI"),
        "experiment_name": (mlflow.get("experiment_name") or environ.get("MLFLOW_EXPERIMENT_NAME")
                            or experiment_name),
    } if "mlflow" in chosen else {}
    wandb_settings = {
        "project": wandb.get("project") or environ.get("WANDB_PROJECT") or experiment_name,
        "entity": wandb.get("entity") or environ.get("WANDB_ENTITY"),
        "group": wandb.get("group") or environ.get("WANDB_RUN_GROUP") or experiment_name,
        "mode": wandb.get("mode") or environ.get("WANDB_MODE") or "online",
        # where offline runs and W&B's own files go: the driver's WANDB_DIR, given to the logging actor
        "dir": environ.get("WANDB_DIR"),
    } if "wandb" in chosen else {}
    return LoggerSettings(tuple(chosen), int(tensorboard.get("every", DEFAULT_EVERY)),
                          {k: v for k, v in mlflow_settings.items() if v is not None},
                          {k: v for k, v in wandb_settings.items() if v is not None})
