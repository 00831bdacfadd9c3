"""Experiment files: YAML -> validated ``Experiment``.

This module parses the file (keys, names, languages, data locations);
``orchestrator.grid`` crosses the parsed axes into trials and
``orchestrator.preflight`` reads every local data file once. Everything is
checked before Ray starts.

Data locations may name environment variables as ``${NAME}``
(``${DATA}/ud/en_ewt``); relative paths are relative to the experiment
file. ``realignment.dictionaries: muse`` (or ``muse`` for one language)
fetches MUSE's published en-xx dictionary at run time.
``data.<task>.validation`` (optional) takes the locations ``eval`` takes:
held-out data every trial also scores, which a depth search selects on.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.experiment_schema import DATA, TOP
from orchestrator.grid import GridAxes, TaskSettings, expand_grid
from orchestrator.logger_settings import LoggerSettings, parse_logger_settings
from orchestrator.preflight import preflight_data
from orchestrator.ray_settings import parse_ray, parse_resources
from orchestrator.safe_yaml import load_yaml_file, short
from orchestrator.search_settings import SearchSettings, check_space, parse_search
from trainables.bundled import resolve_location
from trainables.checkpoint_policy import CheckpointPolicy, parse_checkpoint_policy
from trainables.errors import SpecError, unknown_name
from trainables.languages import SOURCE_LANGUAGE, check_language
from trainables.realignment.muse import MUSE_SOURCE
from trainables.tasks.registry import TASKS, get_task
from trainables.settings_schema import (FINETUNE, REALIGNMENT, REALIGNMENT_STRUCTURE, SEED, check_aligner_settings,
                                        check_section)
from trainables.trial_spec import BASELINE, TrialSpec



StudyKey = tuple[str, str, str, str]     # (model, task, aligner, schedule)


@dataclass
class Experiment:
    """The trials to run. For a depth search, ``trials`` holds only the fixed part
    (the baselines) and ``candidates`` every trial the search may ask for, per
    study and strategy (one spec per seed), all validated up front."""
    name: str
    trials: list[TrialSpec]
    ray: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    search: SearchSettings | None = None
    candidates: dict[StudyKey, dict[str, list[TrialSpec]]] = field(default_factory=dict)
    num_blocks: dict[str, int] = field(default_factory=dict)
    checkpoint: CheckpointPolicy = field(default_factory=CheckpointPolicy)   # not part of any trial's identity
    loggers: LoggerSettings = field(default_factory=LoggerSettings)   # not part of any trial's identity either

    @property
    def all_trials(self) -> list[TrialSpec]:
        return self.trials + [t for by_strategy in self.candidates.values()
                              for specs in by_strategy.values() for t in specs]

    @property
    def resources(self) -> dict[tuple[str, str], tuple[int, float]]:
        """(cpus, gpus) per trial, by (model, task): what the cluster must be able to place."""
        return {(t.model, t.task): (t.cpus, t.gpus) for t in self.all_trials}


def _as_list(value: Any, key: str) -> list[Any]:
    if value is None:
        raise SpecError(f"experiment: '{key}' is required")
    values = value if isinstance(value, list) else [value]
    if not values:
        raise SpecError(f"experiment: '{key}' is empty")
    return values


def _check_keys(mapping: Any, allowed: tuple[str, ...] | set[str], where: str) -> dict[str, Any]:
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        raise SpecError(f"{where} must be a mapping, got {type(mapping).__name__}")
    for key in mapping:
        if key not in allowed:
            raise unknown_name(f"key in {where}", key, allowed)
    return mapping


def load_experiment_file(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Experiment:
    """The experiment of file ``path`` with the command line's ``KEY=VALUE`` ``overrides`` applied."""
    from orchestrator.overrides import apply_overrides

    path = Path(path)
    raw = load_yaml_file(path, "experiment file")    # size, alias, duplicate-key and encoding limits
    raw = apply_overrides(raw, overrides)
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: an experiment file is a mapping of keys (models, tasks, seeds, ...), "
                        f"got {'an empty file' if raw is None else type(raw).__name__}")
    return experiment_from_dict(raw, base=path.resolve().parent, source=str(path))


def _finetune(value: Any, task: str) -> dict[str, Any]:
    """Fine-tuning settings common to all tasks, overridden by a sub-mapping named after the task."""
    value = dict(check_section(value, FINETUNE, "finetune", extra_keys=TASKS))
    common = {k: v for k, v in value.items() if k not in TASKS}
    override = check_section(value.get(task), FINETUNE, f"finetune.{task}")
    return {**common, **override}


def experiment_from_dict(raw: Any, base: Path | None = None, source: str | None = None) -> Experiment:
    resolve = _Resolver(base or Path.cwd())
    if not isinstance(raw, dict):
        raise SpecError(f"experiment must be a mapping, got {type(raw).__name__}")
    check_section(raw, TOP, "")       # keys, and the values of the scalar settings
    name = _experiment_name(raw.get("name"), Path(source).stem if source else "experiment")
    models = _names(raw.get("models"), "models")
    tasks = [get_task(t).name for t in _names(raw.get("tasks"), "tasks")]
    search = parse_search(raw["search"]) if "search" in raw else None
    if search is not None and "strategies" in raw:
        raise SpecError("experiment: 'strategies' and 'search' exclude each other "
                        "(a depth search chooses the strategies)")
    strategies = _names(raw.get("strategies", [BASELINE]), "strategies")
    aligners = _names(raw.get("aligners", ["dico"]), "aligners")
    schedules = _names(raw.get("schedules", ["before"]), "schedules")
    seeds = _as_list(raw.get("seeds"), "seeds")
    for seed in seeds:
        SEED.check(seed, "seeds")
    resources = parse_resources(raw.get("resources"), models, tasks)
    ray = parse_ray(raw.get("ray"))
    checkpoint = parse_checkpoint_policy(raw.get("checkpoint"))
    loggers = parse_logger_settings(raw, name)
    data = _check_keys(raw.get("data") or {}, tuple(TASKS), "data")
    realignment_raw = check_section(raw.get("realignment"), REALIGNMENT, "realignment",
                                    extra_keys=REALIGNMENT_STRUCTURE)
    realigns = search is not None or any(s != BASELINE for s in strategies)
    if realigns:      # every key must be a setting of one of the grid's aligners
        from trainables.realignment.aligners import check_aligner

        for aligner in aligners:
            check_aligner(aligner)
        check_aligner_settings(realignment_raw.get("aligner_settings"), aligners, "realignment.aligner_settings")
    realignment = _realignment(realignment_raw, resolve) if realigns else {}

    from trainables.models import model_num_blocks

    blocks = {model: model_num_blocks(model) for model in models}
    per_model: dict[str, list[str]] = {}
    for model in models:
        if search is not None:
            check_space(search, model, blocks[model])
            per_model[model] = ([BASELINE] if search.baseline else []) + search.space.strategies(blocks[model])
        else:
            per_model[model] = strategies
    per_task: dict[str, TaskSettings] = {}
    for task in tasks:
        if search is not None and search.metric is not None and search.metric not in get_task(task).metrics:
            raise unknown_name(f"metric of task {task} in search.metric", search.metric,
                               get_task(task).metrics)
        targets = _targets(raw.get("languages"), task)
        per_task[task] = TaskSettings(targets, _task_data(task, data.get(task), resolve, targets),
                                      _finetune(raw.get("finetune"), task))
    _check_lengths(models, raw.get("finetune"), realignment_raw if realigns else {})   # values checked above
    common = {"freeze_embeddings": raw.get("freeze_embeddings", False),
              "device": raw.get("device", "auto"), "precision": raw.get("precision", "fp32"),
              "compile": raw.get("compile", False),
              "cache": _cache_location(raw.get("cache"), base or Path.cwd())}
    axes = GridAxes(models, per_task, per_model, aligners, schedules, seeds, realignment, common)
    trials = [resources.apply(t) for t in expand_grid(axes, blocks)]
    preflight_data(trials)
    if search is None:
        return Experiment(name=name, trials=trials, ray=dict(ray), source=source, num_blocks=blocks,
                          checkpoint=checkpoint, loggers=loggers)
    fixed = [t for t in trials if not t.realigns]
    candidates: dict[StudyKey, dict[str, list[TrialSpec]]] = {}
    for spec in trials:
        if spec.realigns:
            study = candidates.setdefault((spec.model, spec.task, spec.aligner, spec.schedule), {})
            study.setdefault(spec.strategy, []).append(spec)
    return Experiment(name=name, trials=fixed, ray=dict(ray), source=source, search=search,
                      candidates=candidates, num_blocks=blocks, checkpoint=checkpoint, loggers=loggers)


class _Resolver:
    """Turns a location string of the file into what a trial reads: ``${NAME}``
    environment variables expanded, ``bundled:`` and relative paths made absolute
    (relative to the experiment file), Hub sources unchanged."""

    _VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

    def __init__(self, base: Path):
        self.base = base

    def __call__(self, value: Any) -> str:
        location = str(value)

        def expand(match: re.Match) -> str:
            if match.group(1) not in os.environ:
                raise SpecError(f"environment variable {match.group(1)} is not set (used in {short(location)})")
            return os.environ[match.group(1)]

        return resolve_location(self._VARIABLE.sub(expand, location), self.base)

    def tree(self, value: Any) -> Any:
        """Resolve every location string of a data mapping."""
        if isinstance(value, dict):
            return {k: self.tree(v) for k, v in value.items()}
        if isinstance(value, str):
            return self(value)
        raise SpecError(f"expected a path or a mapping of paths, got {short(value)}")


def _cache_location(value: Any, base: Path) -> str | None:
    """The realigned-encoder cache: a storage URI as given, a local path made absolute."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"cache must be a path or a storage URI, got {short(value)}")
    if "://" in value:
        return value
    path = Path(os.path.expandvars(value)).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _check_lengths(models: list[str], finetune: Any, realignment: dict[str, Any]) -> None:
    """Token lengths the models can take (their position embeddings): 1024 for mBERT fails
    in the first batch of every trial otherwise."""
    from trainables.models import model_max_tokens

    given = [(f"finetune.{key}", value) for key, value in (finetune or {}).items() if key in LENGTH_KEYS]
    given += [(f"finetune.{task}.{key}", value) for task, settings in (finetune or {}).items()
              if task in TASKS and isinstance(settings, dict)
              for key, value in settings.items() if key in LENGTH_KEYS]
    if "max_length" in realignment:
        given.append(("realignment.max_length", realignment["max_length"]))
    for model in models if given else ():
        limit = model_max_tokens(model)
        for where, value in given:
            if limit is not None and value > limit:
                raise SpecError(f"{where} {value} is longer than {model} takes ({limit} tokens)")


LENGTH_KEYS = ("max_length", "eval_max_length")


def _names(value: Any, key: str) -> list[str]:
    """A list of names (models, tasks, strategies, ...) as written: a number is not a name."""
    names = _as_list(value, key)
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise SpecError(f"{key}: a name must be a non-empty string, got {short(name)}"
                            + (" (quote it)" if isinstance(name, (bool, int, float)) else ""))
    return names


def _experiment_name(value: Any, default: str) -> str:
    """``name``: the results directory's name under runs/, so a name and never a path."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise SpecError(f"experiment: name must be a string (quote it: '{short(value)[:40]}'), "
                        f"got {type(value).__name__}")
    separators = {"/", "\\", os.sep, os.altsep} - {None}
    if (not value.strip() or value.startswith((".", "~")) or any(s in value for s in separators)
            or not value.isprintable() or len(value) > 100):
        raise SpecError(f"experiment: name must be a name, not a path (no '/' or '\\', not starting "
                        f"with '.' or '~', printable, <= 100 characters), got {short(value)}")
    return value


def _language_list(value: Any, where: str, what: str) -> list[str]:
    """A list of language codes as written: a bare string or an unquoted ``no`` is named, not
    read letter by letter or as 'False'."""
    if isinstance(value, str):
        raise SpecError(f"{where} must be a list of language codes, got the string {short(value)} "
                        f"(write [{value[:20]}])")
    if not isinstance(value, (list, tuple)):
        raise SpecError(f"{where} must be a list of language codes, got {short(value)}")
    for language in value:
        if language is False:      # Norwegian: YAML 1.1 reads no, off as false
            raise SpecError(f"{where}: YAML read an unquoted no as false: quote it: 'no'")
        if language is True:
            raise SpecError(f"{where}: YAML read an unquoted yes or on as true: quote the language code")
        if not isinstance(language, str):
            raise SpecError(f"{where}: a language code must be a string, got {short(language)}")
        check_language(language, what)
    return list(value)


def _targets(languages: Any, task: str) -> tuple[str, ...]:
    """Target languages of ``task``: a list for every task, a mapping per task, or the paper's list."""
    if languages is None:
        chosen = list(get_task(task).paper_languages)
    elif isinstance(languages, dict):
        _check_keys(languages, tuple(TASKS), "languages")
        given = languages.get(task)
        chosen = (list(get_task(task).paper_languages) if given in (None, [])
                  else _language_list(given, f"languages.{task}", "target language"))
    else:
        chosen = _language_list(languages, "languages", "target language")
    if SOURCE_LANGUAGE in chosen:
        raise SpecError(f"languages: {SOURCE_LANGUAGE!r} is the training language, not a target "
                        f"(its score is reported separately)")
    return tuple(str(language) for language in chosen)


def _task_data(task: str, raw: Any, resolve: _Resolver, targets: tuple[str, ...]) -> dict[str, Any]:
    raw = _check_keys(raw or {}, tuple(DATA), f"data.{task}")
    default = "hub" if task != "pos" else None   # UD has no canonical Hub copy
    train = raw.get("train", default)
    if train is None:
        raise SpecError(f"data.{task}.train: task {task} needs local training data (a file or directory)")
    evaluation = raw.get("eval", default)
    resolved_eval: dict[str, Any]
    if isinstance(evaluation, dict):
        for language in evaluation:
            check_language(str(language), f"language in data.{task}.eval")
        resolved_eval = {str(k): resolve(v) for k, v in evaluation.items()}
    elif evaluation is None:
        resolved_eval = {}
    else:
        # one source for every language (the Hub, or a directory following the task's layout)
        location = resolve(evaluation)
        resolved_eval = {language: location for language in (SOURCE_LANGUAGE, *targets)}
    data = {"train": resolve(train), "eval": resolved_eval}
    if raw.get("validation") is not None:
        data["validation"] = _validation_data(task, raw["validation"], resolve, targets)
    return data


def _validation_data(task: str, raw: Any, resolve: _Resolver, targets: tuple[str, ...]) -> dict[str, str]:
    """``data.<task>.validation``: held-out data per language (a mapping) or one source for
    all (the Hub, a directory); kept for the languages the trials score (English and the
    targets), so that a language listed for another task changes no trial."""
    used = (SOURCE_LANGUAGE, *targets)
    if isinstance(raw, dict):
        for language in raw:
            check_language(str(language), f"language in data.{task}.validation")
        return {str(k): resolve(v) for k, v in raw.items() if str(k) in used}
    location = resolve(raw)
    return {language: location for language in used}


def _realignment(raw: dict[str, Any], resolve: _Resolver) -> dict[str, Any]:
    from trainables.languages import PAPER_REALIGNMENT_LANGUAGES

    given = raw.get("languages")
    languages = (list(PAPER_REALIGNMENT_LANGUAGES) if given in (None, [])
                 else _language_list(given, "realignment.languages", "realignment language"))
    result: dict[str, Any] = {k: v for k, v in raw.items()
                              if k not in ("languages", "parallel", "dictionaries", "alignments")}
    result["languages"] = languages
    parallel = raw.get("parallel", "hub")
    if isinstance(parallel, str):
        location = resolve(parallel)
        result["parallel"] = {language: location for language in languages}
    else:
        result["parallel"] = {language: _parallel_entry(entry, f"realignment.parallel.{language}", resolve)
                              for language, entry in _check_language_keys(parallel, "realignment.parallel").items()}
    dictionaries = raw.get("dictionaries")
    if dictionaries == MUSE_SOURCE:        # MUSE's en-xx dictionary of every language, fetched
        result["dictionaries"] = {language: MUSE_SOURCE for language in languages}
    elif dictionaries is not None:
        mapping = _check_language_keys(dictionaries, "realignment.dictionaries")
        result["dictionaries"] = {language: MUSE_SOURCE if location == MUSE_SOURCE else resolve(location)
                                  for language, location in mapping.items()}
    if "alignments" in raw:
        result["alignments"] = resolve.tree(_check_language_keys(raw["alignments"], "realignment.alignments"))
    return result


def _parallel_entry(entry: Any, where: str, resolve: _Resolver) -> Any:
    """One language's parallel data: a location (hub, a TSV file, a directory) or
    ``{source: FILE, target: FILE}``, line-aligned files."""
    if isinstance(entry, str):
        return resolve(entry)
    if isinstance(entry, dict):
        for key in entry:
            if key not in ("source", "target"):
                raise unknown_name(f"key in {where}", key, ("source", "target"))
        missing = [key for key in ("source", "target") if not isinstance(entry.get(key), str)]
        if not missing:
            return {key: resolve(entry[key]) for key in ("source", "target")}
    raise SpecError(f"{where} must be a location (hub, a TSV file) or {{source: FILE, target: FILE}}, "
                    f"got {short(entry)}")


def _check_language_keys(mapping: Any, where: str) -> dict[str, Any]:
    if not isinstance(mapping, dict):
        raise SpecError(f"{where} must map languages to paths")
    for language in mapping:
        check_language(str(language), f"language in {where}")
    return mapping
