"""Experiment files: YAML -> validated ``Experiment`` -> the grid of ``TrialSpec``s.

An experiment crosses models x tasks x strategies x aligners x schedules
x seeds. Everything is checked here, before Ray starts: unknown keys,
names and languages, freezing depths against each model's number of
blocks, every data file. Baseline trials do not realign, so there is one
per (model, task, seed), whatever the aligners and schedules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.search_settings import SearchSettings, check_space, parse_search
from trainables.bundled import resolve_location
from trainables.errors import DataError, SpecError, unknown_name
from trainables.languages import SOURCE_LANGUAGE, check_language
from trainables.tasks.registry import TASKS, get_task
from trainables.trial_spec import (
    BASELINE, FINETUNE_KEYS, REALIGN_KEYS, TrialSpec, validate,
)

TOP_LEVEL_KEYS = ("name", "description", "models", "tasks", "strategies", "aligners", "schedules", "seeds",
                  "freeze_embeddings", "languages", "data", "realignment", "finetune", "resources",
                  "device", "precision", "ray", "search")
RESOURCE_KEYS = ("cpus", "gpus")
RAY_KEYS = ("address", "max_concurrent_trials", "reuse_actors", "max_failures", "num_cpus", "num_gpus")


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

    @property
    def all_trials(self) -> list[TrialSpec]:
        return self.trials + [t for by_strategy in self.candidates.values()
                              for specs in by_strategy.values() for t in specs]

    @property
    def resources(self) -> tuple[int, float]:
        first = self.all_trials[0]
        return first.cpus, first.gpus


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


def _resolve_tree(value: Any, base: Path) -> Any:
    """Resolve every location string of a data mapping (``bundled:``, relative paths)."""
    if isinstance(value, dict):
        return {k: _resolve_tree(v, base) for k, v in value.items()}
    if isinstance(value, str):
        return resolve_location(value, base)
    raise SpecError(f"expected a path or a mapping of paths, got {value!r}")


def load_experiment_file(path: str | Path) -> Experiment:
    path = Path(path)
    if not path.is_file():
        raise DataError("experiment file not found", path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise DataError(f"invalid YAML: {problem}", path, line) from None
    return experiment_from_dict(raw, base=path.resolve().parent, source=str(path))


def _per_task(value: Any, task: str, keys: tuple[str, ...], where: str) -> dict[str, Any]:
    """Settings common to all tasks, overridden by a sub-mapping named after the task."""
    value = dict(value or {})
    common = {k: v for k, v in value.items() if k not in TASKS}
    override = value.get(task) or {}
    _check_keys(common, keys, where)
    _check_keys(override, keys, f"{where}.{task}")
    return {**common, **override}


def experiment_from_dict(raw: Any, base: Path | None = None, source: str | None = None) -> Experiment:
    base = base or Path.cwd()
    raw = _check_keys(raw, TOP_LEVEL_KEYS, "experiment")
    name = str(raw.get("name") or (Path(source).stem if source else "experiment"))
    models = [str(m) for m in _as_list(raw.get("models"), "models")]
    tasks = [get_task(str(t)).name for t in _as_list(raw.get("tasks"), "tasks")]
    search = parse_search(raw["search"]) if "search" in raw else None
    if search is not None and "strategies" in raw:
        raise SpecError("experiment: 'strategies' and 'search' exclude each other "
                        "(a depth search chooses the strategies)")
    strategies = [str(s) for s in _as_list(raw.get("strategies", [BASELINE]), "strategies")]
    aligners = [str(a) for a in _as_list(raw.get("aligners", ["dico"]), "aligners")]
    schedules = [str(s) for s in _as_list(raw.get("schedules", ["before"]), "schedules")]
    seeds = _as_list(raw.get("seeds"), "seeds")
    for seed in seeds:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise SpecError(f"experiment: seeds must be integers, got {seed!r}")
    resources = _check_keys(raw.get("resources"), RESOURCE_KEYS, "resources")
    ray = _check_keys(raw.get("ray"), RAY_KEYS, "ray")
    data = _check_keys(raw.get("data") or {}, tuple(TASKS), "data")
    realignment_raw = _check_keys(raw.get("realignment") or {},
                                  (*REALIGN_KEYS, "languages", "parallel", "dictionaries", "alignments",
                                   "aligner_settings"), "realignment")
    realigns = search is not None or any(s != BASELINE for s in strategies)
    realignment = _realignment(realignment_raw, base) if realigns else {}

    from trainables.models import model_num_blocks

    blocks = {model: model_num_blocks(model) for model in models}
    trials: list[TrialSpec] = []
    for model in models:
        if search is not None:
            check_space(search, model, blocks[model])
            strategies = ([BASELINE] if search.baseline else []) + search.space.strategies(blocks[model])
        for task in tasks:
            if search is not None and search.metric is not None and search.metric not in get_task(task).metrics:
                raise unknown_name(f"metric of task {task} in search.metric", search.metric,
                                   get_task(task).metrics)
            targets = _targets(raw.get("languages"), task)
            task_data = _task_data(task, data.get(task), base, targets)
            finetune = _per_task(raw.get("finetune"), task, FINETUNE_KEYS, "finetune")
            for strategy in strategies:
                combos = [("none", "before")] if strategy == BASELINE else [
                    (a, s) for a in aligners for s in schedules]
                for aligner, schedule in combos:
                    for seed in seeds:
                        spec = TrialSpec(
                            model=model, task=task, strategy=strategy, seed=seed, languages=targets,
                            data=task_data, aligner=aligner, schedule=schedule,
                            freeze_embeddings=bool(raw.get("freeze_embeddings", False)),
                            realignment=realignment if strategy != BASELINE else {},
                            finetune=finetune, device=str(raw.get("device", "auto")),
                            precision=str(raw.get("precision", "fp32")),
                            cpus=int(resources.get("cpus", 1)), gpus=float(resources.get("gpus", 0)))
                        trials.append(validate(spec, num_blocks=blocks[model]))
    ids = [t.trial_id for t in trials]
    if len(set(ids)) != len(ids):
        raise SpecError("experiment: the grid contains the same trial twice (repeated model, seed or strategy?)")
    preflight_data(trials)
    if search is None:
        return Experiment(name=name, trials=trials, ray=dict(ray), source=source, num_blocks=blocks)
    fixed = [t for t in trials if not t.realigns]
    candidates: dict[StudyKey, dict[str, list[TrialSpec]]] = {}
    for spec in trials:
        if spec.realigns:
            study = candidates.setdefault((spec.model, spec.task, spec.aligner, spec.schedule), {})
            study.setdefault(spec.strategy, []).append(spec)
    return Experiment(name=name, trials=fixed, ray=dict(ray), source=source, search=search,
                      candidates=candidates, num_blocks=blocks)


def _targets(languages: Any, task: str) -> tuple[str, ...]:
    """Target languages of ``task``: a list for every task, a mapping per task, or the paper's list."""
    if languages is None:
        chosen = list(get_task(task).paper_languages)
    elif isinstance(languages, dict):
        _check_keys(languages, tuple(TASKS), "languages")
        chosen = list(languages.get(task) or get_task(task).paper_languages)
    else:
        chosen = list(languages)
    for language in chosen:
        check_language(str(language), "target language")
    if SOURCE_LANGUAGE in chosen:
        raise SpecError(f"languages: {SOURCE_LANGUAGE!r} is the training language, not a target "
                        f"(its score is reported separately)")
    return tuple(str(language) for language in chosen)


def _task_data(task: str, raw: Any, base: Path, targets: tuple[str, ...]) -> dict[str, Any]:
    raw = _check_keys(raw or {}, ("train", "eval"), f"data.{task}")
    default = "hub" if task != "pos" else None   # UD has no canonical Hub copy
    train = raw.get("train", default)
    if train is None:
        raise SpecError(f"data.{task}.train: task {task} needs local training data (a file or directory)")
    evaluation = raw.get("eval", default)
    resolved_eval: dict[str, Any]
    if isinstance(evaluation, dict):
        for language in evaluation:
            check_language(str(language), f"language in data.{task}.eval")
        resolved_eval = {str(k): resolve_location(str(v), base) for k, v in evaluation.items()}
    elif evaluation is None:
        resolved_eval = {}
    else:
        # one source for every language (the Hub, or a directory following the task's layout)
        location = resolve_location(str(evaluation), base)
        resolved_eval = {language: location for language in (SOURCE_LANGUAGE, *targets)}
    return {"train": resolve_location(str(train), base), "eval": resolved_eval}


def _realignment(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    from trainables.languages import PAPER_REALIGNMENT_LANGUAGES

    languages = [str(l) for l in (raw.get("languages") or PAPER_REALIGNMENT_LANGUAGES)]
    for language in languages:
        check_language(language, "realignment language")
    result: dict[str, Any] = {k: v for k, v in raw.items()
                              if k not in ("languages", "parallel", "dictionaries", "alignments")}
    result["languages"] = languages
    parallel = raw.get("parallel", "hub")
    if isinstance(parallel, str):
        location = resolve_location(parallel, base)
        result["parallel"] = {language: location for language in languages}
    else:
        result["parallel"] = _resolve_tree(_check_language_keys(parallel, "realignment.parallel"), base)
    for key in ("dictionaries", "alignments"):
        if key in raw:
            result[key] = _resolve_tree(_check_language_keys(raw[key], f"realignment.{key}"), base)
    return result


def _check_language_keys(mapping: Any, where: str) -> dict[str, Any]:
    if not isinstance(mapping, dict):
        raise SpecError(f"{where} must map languages to paths")
    for language in mapping:
        check_language(str(language), f"language in {where}")
    return mapping


def preflight_data(trials: list[TrialSpec]) -> None:
    """Read every distinct local data file of the grid once, so that a malformed
    or mismatched one fails here, with file and line, before any trial starts.

    Task files (UD, WikiANN, XNLI, SQuAD/XQuAD) are parsed in full through the
    task's own reader, up to the trial's ``max_*_examples`` (what a trial reads);
    dictionaries and pharaoh files are parsed in full; parallel files, which can
    be large (OPUS-100: 1M lines), are only counted (line-aligned pairs) or
    split on tabs (TSV), streaming. Hub sources are not touched (no network here).
    """
    from trainables.realignment.word_pairs import load_muse_dictionary, read_pharaoh

    def local(location: Any) -> bool:
        return isinstance(location, str) and not (location == "hub" or location.startswith("hub:"))

    task_reads: dict[tuple[str, str, str, str], int | None] = {}
    parallel: dict[Any, int | None] = {}
    dictionaries: set[str] = set()
    alignments: set[str] = set()
    for spec in trials:
        sources = [(SOURCE_LANGUAGE, "train", spec.data["train"], spec.finetune.get("max_train_examples"))]
        sources += [(language, "test", location, spec.finetune.get("max_eval_examples"))
                    for language, location in spec.data.get("eval", {}).items()]
        for language, split, location, limit in sources:
            if local(location):
                key = (spec.task, location, language, split)
                task_reads[key] = _widest(task_reads, key, limit)
        if not spec.realigns:
            continue
        realignment = spec.realignment
        for language in realignment.get("languages", ()):
            source = realignment["parallel"][language]
            key = (source["source"], source["target"]) if isinstance(source, dict) else source
            if isinstance(source, dict) or local(source):
                parallel[key] = _widest(parallel, key, realignment.get("max_pairs"))
            if spec.aligner == "dico":
                dictionaries.add(realignment["dictionaries"][language])
            if spec.aligner == "pharaoh":
                alignments.add(realignment["alignments"][language])
    for (task, location, language, split), limit in task_reads.items():
        _utf8(lambda: get_task(task).load().load_examples(location, language, split, limit), location)
    for key, limit in parallel.items():
        if isinstance(key, tuple):
            counts = [_utf8(lambda path=path: _count_lines(path), path) for path in key]
            if counts[0] != counts[1]:
                raise DataError(f"parallel files differ in length: {counts[0]} lines vs "
                                f"{counts[1]} in {key[1]}", key[0])
        else:
            _utf8(lambda: _check_tsv(key, limit), key)
    for path in sorted(dictionaries):
        _utf8(lambda: load_muse_dictionary(path), path)
    for path in sorted(alignments):
        _utf8(lambda: read_pharaoh(path), path)


def _widest(limits: dict[Any, int | None], key: Any, limit: int | None) -> int | None:
    """The larger of two read limits (None: everything)."""
    if key not in limits:
        return limit
    previous = limits[key]
    return None if previous is None or limit is None else max(previous, limit)


def _utf8(read: Any, path: Any) -> Any:
    try:
        return read()
    except UnicodeDecodeError as error:
        raise DataError(f"not UTF-8 text ({error.reason})", path) from None


def _count_lines(path: str) -> int:
    if not Path(path).is_file():
        raise DataError("parallel file not found", path)
    with open(path, encoding="utf-8") as handle:   # text mode: the same line breaks as the reader
        return sum(1 for _ in handle)


def _check_tsv(path: str, limit: int | None) -> None:
    if not Path(path).is_file():
        raise DataError("parallel file not found", path)
    pairs = 0
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            fields = line.count("\t") + 1
            if fields != 2:
                raise DataError(f"expected 'english<TAB>translation', found {fields} fields", path, number)
            pairs += 1
            if limit is not None and pairs >= limit:
                return
