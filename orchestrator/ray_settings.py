"""The experiment file's ``resources:`` and ``ray:`` sections, validated.

``resources`` is what one trial asks Ray for. The flat form applies to
every trial::

    resources: {cpus: 1, gpus: 0}

The per-model and per-task form refines a default::

    resources:
      default: {cpus: 4, gpus: 1}
      tasks: {nli: {cpus: 8}}
      models: {distilbert-base-multilingual-cased: {gpus: 0.5}}

Precedence, key by key: built-in (1 CPU, no GPU) < ``default`` (or the
flat keys) < the trial's task < the trial's model. The model wins because
what a trial needs on a device (memory, a share of a GPU) is mostly its
model's. Above, a DistilmBERT trial on NLI asks for 8 CPUs and 0.5 GPU.

``ray`` holds the Tune and connection options; every value is checked
here, before Ray starts, with the same one-line errors as the rest of the
file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from orchestrator.experiment_schema import RAY, RESOURCE
from orchestrator.experiment_schema import RESOURCE_SECTIONS as RESOURCE_SECTION_SCHEMA
from trainables.errors import SpecError, unknown_name
from trainables.settings_schema import check_section
from trainables.trial_spec import TrialSpec

RESOURCE_KEYS = tuple(RESOURCE)
RESOURCE_SECTIONS = tuple(RESOURCE_SECTION_SCHEMA)
BUILT_IN_RESOURCES: dict[str, float] = {"cpus": 1, "gpus": 0.0}

RAY_KEYS = tuple(RAY)
# max_failures: Tune restarts a failed trial (a lost node, a crashed worker) up to this many
# times, from the trial's latest checkpoint.
RAY_DEFAULTS: dict[str, Any] = {"reuse_actors": True, "max_failures": 2}


@dataclass(frozen=True)
class ResourcePlan:
    """Per-trial requests: a default refined per task, then per model."""
    default: dict[str, float] = field(default_factory=dict)
    tasks: dict[str, dict[str, float]] = field(default_factory=dict)
    models: dict[str, dict[str, float]] = field(default_factory=dict)

    def of(self, model: str, task: str) -> tuple[int, float]:
        """(cpus, gpus) of a trial of ``model`` on ``task``."""
        merged = {**BUILT_IN_RESOURCES, **self.default, **self.tasks.get(task, {}), **self.models.get(model, {})}
        return int(merged["cpus"]), float(merged["gpus"])

    def apply(self, spec: TrialSpec) -> TrialSpec:
        """``spec`` with its requests set (resources are not part of a trial's identity)."""
        cpus, gpus = self.of(spec.model, spec.task)
        return dataclasses.replace(spec, cpus=cpus, gpus=gpus)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _request(value: Any, where: str) -> dict[str, float]:
    """One ``{cpus, gpus}`` mapping (either key may be left out)."""
    return dict(check_section(_mapping(value, where), RESOURCE, where))


def _named_requests(value: Any, kind: str, known: list[str]) -> dict[str, dict[str, float]]:
    """``{name: {cpus, gpus}}`` whose names must be among the experiment's ``kind``s (a typo
    would silently fall back to the default)."""
    where = f"resources.{kind}s"
    requests = {}
    for name, request in _mapping(value, where).items():
        if str(name) not in known:
            raise unknown_name(f"{kind} in {where}", name, known)
        requests[str(name)] = _request(request, f"{where}.{name}")
    return requests


def parse_resources(raw: Any, models: list[str], tasks: list[str]) -> ResourcePlan:
    """The ``resources`` section, flat or per model / task, checked against the experiment's names."""
    raw = _mapping(raw, "resources")
    for key in raw:
        if key not in (*RESOURCE_KEYS, *RESOURCE_SECTIONS):
            raise unknown_name("key in resources", key, (*RESOURCE_KEYS, *RESOURCE_SECTIONS))
    flat = {k: v for k, v in raw.items() if k in RESOURCE_KEYS}
    if flat and "default" in raw:
        raise SpecError("resources: give either 'default' or flat cpus/gpus, not both")
    default = _request(raw["default"], "resources.default") if "default" in raw else _request(flat, "resources")
    return ResourcePlan(default=default,
                        tasks=_named_requests(raw.get("tasks"), "task", tasks),
                        models=_named_requests(raw.get("models"), "model", models))


def parse_ray(raw: Any) -> dict[str, Any]:
    """The ``ray`` section with its defaults filled in; a wrong type or range is one line."""
    raw = check_section(_mapping(raw, "ray"), RAY, "ray")
    # null is "as many as fit": the same as leaving the key out
    return {**RAY_DEFAULTS, **{k: v for k, v in raw.items() if v is not None}}
