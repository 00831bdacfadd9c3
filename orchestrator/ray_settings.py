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

from trainables.errors import SpecError, unknown_name
from trainables.trial_spec import TrialSpec

RESOURCE_KEYS = ("cpus", "gpus")
RESOURCE_SECTIONS = ("default", "models", "tasks")
BUILT_IN_RESOURCES: dict[str, float] = {"cpus": 1, "gpus": 0.0}

RAY_KEYS = ("address", "max_concurrent_trials", "reuse_actors", "max_failures", "num_cpus", "num_gpus")
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


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"{where} must be a mapping, got {type(value).__name__}")
    return value


def _request(value: Any, where: str) -> dict[str, float]:
    """One ``{cpus, gpus}`` mapping (either key may be left out)."""
    value = _mapping(value, where)
    for key in value:
        if key not in RESOURCE_KEYS:
            raise unknown_name(f"key in {where}", key, RESOURCE_KEYS)
    if "cpus" in value and not (_is_int(value["cpus"]) and value["cpus"] >= 1):
        raise SpecError(f"{where}.cpus must be an integer >= 1, got {value['cpus']!r}")
    if "gpus" in value and not (_is_number(value["gpus"]) and value["gpus"] >= 0):
        raise SpecError(f"{where}.gpus must be a number >= 0 (fractions share a GPU), got {value['gpus']!r}")
    return dict(value)


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
    raw = _mapping(raw, "ray")
    for key in raw:
        if key not in RAY_KEYS:
            raise unknown_name("key in ray", key, RAY_KEYS)
    checks = {
        "address": (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string (auto, HOST:PORT)"),
        "max_concurrent_trials": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        "reuse_actors": (lambda v: isinstance(v, bool), "true or false"),
        "max_failures": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
        # only for the Ray instance started here (without an address); Ray counts whole CPUs
        "num_cpus": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        "num_gpus": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    }
    for key, value in raw.items():
        accepts, expected = checks[key]
        if not accepts(value):
            raise SpecError(f"ray.{key} must be {expected}, got {value!r}")
    return {**RAY_DEFAULTS, **raw}
