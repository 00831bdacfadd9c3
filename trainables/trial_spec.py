"""The validated description of one trial: everything that determines its result.

A ``TrialSpec`` is plain data (JSON round-trip), so it travels in a Ray
config dict. Its key (and the end of its trial ID) is a hash of its
canonical definition (``canonical_definition``): defaults filled in,
target languages sorted, what the trial does not use left out, local data
and models by the content of their files, never by where they sit; the
resources, device and cache location never count. ``validate`` checks it
at the boundary: an unknown model, task, strategy, aligner or language, a
freezing depth outside the model, or a missing data file is a one-line
error naming the culprit, raised before any training starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from trainables import languages as language_lists
from trainables.artifacts import content_key, location_fingerprint
from trainables.errors import SpecError, unknown_name
from trainables.length_grouping import DEFAULT_BATCHING
from trainables.settings_schema import (ALIGNER_SETTINGS, FINETUNE, REALIGNMENT, REALIGNMENT_STRUCTURE, SEED,
                                        check_section)

BASELINE = "baseline"
FULL = "full"
SCHEDULES = ("before", "during")
PRECISIONS = ("fp32", "tf32", "bf16")   # trainables.device_settings: what each one switches on
DEVICES = ("auto", "cpu", "cuda")
# Bump when the canonical definition changes: every trial ID changes with it
# (1: the spec as written, paths included; 2: canonical, data by content).
IDENTITY_FORMAT = 2
# Fields that never change a trial's result, so never its identity.
OUTSIDE_IDENTITY = ("device", "cpus", "gpus", "cache", "fingerprints")

# Keys a user may set: declared, with their types and ranges, in trainables.settings_schema.
FINETUNE_KEYS = tuple(FINETUNE)
REALIGN_KEYS = tuple(REALIGNMENT)


@dataclass(frozen=True)
class TrialSpec:
    model: str
    task: str
    strategy: str                         # baseline | full | front | back | front:K | back:K | range:A-B
    seed: int
    languages: tuple[str, ...]            # zero-shot target languages
    data: dict[str, Any]                  # {"train": src, "eval": {lang: src}[, "validation": {lang: src}]}
                                          # (English under "en")
    aligner: str = "none"                 # none for the baseline
    schedule: str = "before"
    freeze_embeddings: bool = False
    realignment: dict[str, Any] = field(default_factory=dict)
    # realignment: {"languages": [...], "parallel": {lang: src}, "dictionaries": {lang: path},
    #               "alignments": {lang: path}, "aligner_settings": {...}, <REALIGN_KEYS>}
    finetune: dict[str, Any] = field(default_factory=dict)   # <FINETUNE_KEYS>
    device: str = "auto"
    precision: str = "fp32"
    compile: bool = False                 # torch.compile the task model (device_settings)
    cpus: int = 1
    gpus: float = 0.0
    cache: str | None = None              # realigned-encoder cache: a path or a storage URI;
                                          # None: $ALIGNFREEZE_CACHE/realigned
    # What the driver measured of the trial's inputs (``with_fingerprints``), so that every
    # process derives the same key without reading them again: the content fingerprint of
    # each local file and directory it reads, by location, and the model's config.model_type
    # (which decides its default learning rates). Missing: measured when the key is made.
    fingerprints: dict[str, str] = field(default_factory=dict)
    model_type: str | None = None

    # ---- identity
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["languages"] = list(self.languages)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrialSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise unknown_name("trial spec key", unknown[0], known)
        data = dict(data)
        data["languages"] = tuple(data.get("languages", ()))
        return cls(**data)

    @cached_property
    def key(self) -> str:
        """A hash of ``canonical_definition(self)``: what determines the result, written one way only."""
        return content_key(canonical_definition(self))

    @property
    def realigns(self) -> bool:
        return self.strategy != BASELINE

    @property
    def freeze_spec(self) -> str:
        return "none" if self.strategy == FULL else self.strategy

    @cached_property
    def trial_id(self) -> str:
        """Readable and unique: model, task, strategy, aligner, schedule, seed, then the key."""
        model = self.model.rstrip("/").split("/")[-1]
        strategy = self.strategy.replace(":", "").replace("+", "-")
        parts = [model, self.task, strategy]
        if self.realigns:
            parts += [self.aligner, self.schedule]
        parts += [f"s{self.seed}", self.key[:8]]
        return "_".join(parts)


# ------------------------------------------------------------------ identity
def canonical_definition(spec: TrialSpec) -> dict[str, Any]:
    """Everything that determines ``spec``'s result, one way only.

    Defaults are filled in (the task's fine-tuning settings, the learning
    rate the model family gets, RealignSettings, the aligner's settings),
    target languages are sorted, the evaluation data of languages the trial
    does not evaluate are left out, and so is everything a baseline does
    not use (aligner, schedule, freeze_embeddings, realignment). Local files
    and directories count by content, Hub and MUSE sources by their name.
    The realignment languages keep their order: the interleaving follows it.
    """
    return _canonical(spec, _Contents(spec.fingerprints))


def with_fingerprints(spec: TrialSpec, known: dict[str, str | None] | None = None) -> TrialSpec:
    """``spec`` carrying the fingerprint of every local location it reads, and its model's type.

    ``known``: fingerprints already taken, by location (shared across a
    grid, so each file or directory is looked at once per parse).
    """
    contents = _Contents({}, known)
    measured = dataclasses.replace(spec, fingerprints={}, model_type=_model_type(spec.model))
    _canonical(measured, contents)
    return dataclasses.replace(measured, fingerprints=contents.used)


def _canonical(spec: TrialSpec, contents: "_Contents") -> dict[str, Any]:
    measured = spec.model_type if spec.model_type is not None else _model_type(spec.model)
    xlmr = measured == "xlm-roberta"
    evaluation = spec.data.get("eval") or {}
    definition: dict[str, Any] = {
        "format": IDENTITY_FORMAT,
        "model": contents.model(spec.model),
        "task": spec.task,
        "strategy": spec.strategy,
        "seed": spec.seed,
        "precision": spec.precision,
        **({"compile": True} if spec.compile else {}),   # absent when off: the keys made before it stay
        "languages": sorted(spec.languages),
        "data": {"train": contents(spec.data.get("train")),
                 "eval": {language: contents(evaluation.get(language))
                          for language in (language_lists.SOURCE_LANGUAGE, *spec.languages)}},
        "finetune": _finetune_identity(spec, xlmr),
    }
    # Validation data make the trial compute more (its key changes); a trial without
    # any keeps the key it had before validation existed.
    validation = {language: contents(location) for language, location in _validation(spec).items()}
    if validation:
        definition["data"]["validation"] = validation
    if spec.realigns:
        definition["realignment"] = _realignment_identity(spec, xlmr, contents)
    return definition


def _validation(spec: TrialSpec) -> dict[str, Any]:
    """The trial's validation sources of the languages it scores, English first."""
    given = spec.data.get("validation") or {}
    return {language: given[language]
            for language in (language_lists.SOURCE_LANGUAGE, *sorted(spec.languages)) if language in given}


class _Contents:
    """Locations as what they hold: local files and directories by content
    fingerprint (the carried one if any, else taken now and noted in ``used``),
    Hub and MUSE sources by their name."""

    def __init__(self, carried: dict[str, str], known: dict[str, str | None] | None = None):
        self.carried = carried
        self.known = {} if known is None else known
        self.used: dict[str, str] = {}

    def __call__(self, location: Any) -> Any:
        if isinstance(location, dict):
            return {str(k): self(v) for k, v in location.items()}
        if not isinstance(location, str) or _named_source(location):
            return location
        fingerprint = self._fingerprint(location, location)
        return {"content": fingerprint} if fingerprint else {"missing": location}

    def model(self, name: str) -> Any:
        """A built-in tiny model or a Hub id by name; a local model directory by content."""
        from trainables.tiny_models import TINY_MODELS

        path = Path(name).expanduser()
        if name in TINY_MODELS or not (name in self.carried or path.is_dir()):
            return name
        return {"content": self._fingerprint(name, path)}

    def _fingerprint(self, location: str, path: str | Path) -> str | None:
        fingerprint = self.carried.get(location)
        if fingerprint is None:
            if location not in self.known:
                self.known[location] = location_fingerprint(path)
            fingerprint = self.known[location]
        if fingerprint is not None:
            self.used[location] = fingerprint
        return fingerprint


def _named_source(location: str) -> bool:
    from trainables.realignment.muse import MUSE_SOURCE

    return location in ("hub", MUSE_SOURCE) or location.startswith("hub:")


def _model_type(model: str) -> str:
    """``config.model_type`` from local files ("" if unknown): XLM-R models get their own learning rates."""
    from trainables.realignment.realigned_cache import model_type
    from trainables.tiny_models import TINY_MODELS

    if model in TINY_MODELS:    # known without building the model
        return {"tiny-mbert": "bert", "tiny-distilmbert": "distilbert", "tiny-xlmr": "xlm-roberta"}[model]
    return model_type(model) or ""


def _finetune_identity(spec: TrialSpec, xlmr: bool) -> dict[str, Any]:
    """The fine-tuning settings the trial runs with; keys of other tasks and unset options left out."""
    from trainables.tasks.registry import TASKS, get_task
    from trainables.tasks.zh_resegmentation import DEFAULT_SEGMENTATION
    from trainables.trial import finetune_settings

    settings = dataclasses.asdict(finetune_settings(spec, xlmr))
    extra = settings.pop("extra")
    other_tasks = set().union(*(t.defaults for t in TASKS.values())) - set(get_task(spec.task).defaults)
    values = {**settings, **{k: v for k, v in extra.items() if k not in other_tasks}}
    if values.get("dropout", None) is None:    # None: the architecture's own rate, as when unset
        values.pop("dropout", None)
    if values.get("batching") == DEFAULT_BATCHING:   # absent by default: the keys made before it stay
        values.pop("batching")
    if spec.task == "ner":                      # only NER re-segments Chinese
        values.setdefault("zh_segmentation", DEFAULT_SEGMENTATION)
    else:
        values.pop("zh_segmentation", None)
    return values


def _realignment_identity(spec: TrialSpec, xlmr: bool, contents: _Contents) -> dict[str, Any]:
    """What a realigning trial adds: aligner, schedule, frozen embeddings, settings and corpora."""
    from trainables.realignment.pretokenization import DEFAULT_PRETOKENIZER
    from trainables.trial import realign_settings

    realignment = spec.realignment
    settings = dataclasses.asdict(realign_settings(spec, xlmr))   # the learning rate the model gets
    settings.pop("xlmr_learning_rate")
    if settings["batching"] == DEFAULT_BATCHING:      # absent by default: the keys made before it stay
        settings.pop("batching")
    settings["pretokenizer"] = realignment.get("pretokenizer", DEFAULT_PRETOKENIZER)
    # "before" has no loss weight; "during" realigns once per fine-tuning step, at its learning rate
    for unused in (("during_weight",) if spec.schedule == "before" else ("steps", "learning_rate")):
        settings.pop(unused)
    languages = [str(language) for language in realignment.get("languages") or ()]
    identity: dict[str, Any] = {
        "aligner": spec.aligner, "schedule": spec.schedule, "freeze_embeddings": bool(spec.freeze_embeddings),
        "settings": settings, "aligner_settings": _aligner_settings(spec),
        "languages": languages,
        "parallel": {language: contents((realignment.get("parallel") or {}).get(language))
                     for language in languages},
    }
    by_aligner = {"dico": "dictionaries", "pharaoh": "alignments"}
    if spec.aligner in by_aligner:
        files = realignment.get(by_aligner[spec.aligner]) or {}
        identity[by_aligner[spec.aligner]] = {language: contents(files.get(language)) for language in languages}
    return identity


def _aligner_settings(spec: TrialSpec) -> dict[str, Any]:
    """The aligner's settings with its defaults (pharaoh has none)."""
    given = dict(spec.realignment.get("aligner_settings") or {})
    if spec.aligner == "dico":
        from trainables.realignment.aligners import DICO_SETTINGS
        return {**DICO_SETTINGS, **given}
    if spec.aligner == "eflomal":
        from trainables.realignment.eflomal_aligner import DEFAULT_SETTINGS
        return {**DEFAULT_SETTINGS, **given}
    if spec.aligner == "simalign":
        from trainables.models import model_num_blocks
        from trainables.realignment.similarity_aligner import DEFAULT_SETTINGS, default_layer

        resolved = {**DEFAULT_SETTINGS, **given}
        if resolved["layer"] is None:
            resolved["layer"] = default_layer(model_num_blocks(spec.model))
        return resolved
    return given


def validate(spec: TrialSpec, check_files: bool = True, num_blocks: int | None = None) -> TrialSpec:
    """Raise a one-line SpecError/DataError for anything wrong with ``spec``; return it."""
    from trainables.freezing import frozen_positions, parse_freeze_spec
    from trainables.realignment.aligners import check_aligner
    from trainables.tasks.registry import get_task

    task = get_task(spec.task)
    if spec.schedule not in SCHEDULES:
        raise unknown_name("schedule", spec.schedule, SCHEDULES)
    if spec.precision not in PRECISIONS:
        raise unknown_name("precision", spec.precision, PRECISIONS)
    if not isinstance(spec.compile, bool):
        raise SpecError(f"compile must be true or false, got {spec.compile!r}")
    if spec.device not in DEVICES:
        raise unknown_name("device", spec.device, DEVICES)
    SEED.check(spec.seed, "seed")
    if spec.cpus < 1 or spec.gpus < 0:
        raise SpecError(f"resources: cpus must be >= 1 and gpus >= 0 (got {spec.cpus}, {spec.gpus})")
    check_section(spec.finetune, FINETUNE, "finetune")    # keys, types and ranges
    if spec.task == "qa":
        # the window must hold the question, the special tokens and more context than the overlap
        settings = {**task.defaults, **spec.finetune}
        for stride, key in (("doc_stride", "max_length"), ("eval_doc_stride", "eval_max_length")):
            if settings[stride] >= settings[key] - 4:
                raise SpecError(f"finetune: qa {stride} {settings[stride]} must be smaller than "
                                f"{key} {settings[key]} minus 4")
    if not spec.languages:
        raise SpecError(f"trial has no target language for task {spec.task}")
    for language in spec.languages:
        language_lists.check_language(language, "target language")
    if "train" not in spec.data:
        raise SpecError(f"task {spec.task}: no training data (data.train)")
    evaluation = spec.data.get("eval", {})
    for language in (language_lists.SOURCE_LANGUAGE, *spec.languages):
        if language not in evaluation:
            raise SpecError(f"task {spec.task}: no evaluation data for language {language!r} (data.{spec.task}.eval.{language})")
    _validate_validation(spec, task)
    if spec.realigns:
        check_aligner(spec.aligner)
        try:
            freeze = parse_freeze_spec(spec.freeze_spec, spec.freeze_embeddings)
        except SpecError:
            raise SpecError(f"unknown strategy {spec.strategy!r}: expected baseline, full, front, back, "
                            f"front:K, back:K or range:A-B, optionally followed by +embeddings") from None
        if num_blocks is None:
            from trainables.models import model_num_blocks

            num_blocks = model_num_blocks(spec.model)
        frozen_positions(freeze, num_blocks)
        _validate_realignment(spec, num_blocks)
    elif spec.aligner not in ("none", "", None):
        raise SpecError(f"the baseline does not realign: aligner must be 'none', got {spec.aligner!r}")
    if check_files:
        _check_sources(spec)
        if spec.realigns and spec.schedule == "before":
            from trainables.realignment.realigned_cache import check_cache_location
            check_cache_location(spec.cache)
    return spec


def _validate_validation(spec: TrialSpec, task) -> None:
    """Validation data: known languages, and Hub sources that have a validation split for
    the language (QA: MLQA's languages; PoS: no PUD treebank), told now rather than after training."""
    import importlib

    validation = spec.data.get("validation") or {}
    if not isinstance(validation, dict):
        raise SpecError(f"task {spec.task}: validation data must map languages to sources, got {validation!r}")
    for language, location in validation.items():
        language_lists.check_language(str(language), f"language in data.{spec.task}.validation")
        if isinstance(location, str) and (location == "hub" or location.startswith("hub:")):
            module = importlib.import_module(task.implementation.partition(":")[0])
            module.hub_dataset(location, language, "validation")


def _validate_realignment(spec: TrialSpec, num_blocks: int) -> None:
    realignment = spec.realignment
    check_section(realignment, REALIGNMENT, "realignment", extra_keys=REALIGNMENT_STRUCTURE)
    languages = realignment.get("languages") or ()
    if not languages:
        raise SpecError("realignment: no language (realignment.languages)")
    for language in languages:
        language_lists.check_language(language, "realignment language")
        if language not in realignment.get("parallel", {}):
            raise SpecError(f"realignment: no parallel data for language {language!r}")
        if spec.aligner == "dico" and language not in realignment.get("dictionaries", {}):
            raise SpecError(f"realignment: aligner 'dico' has no dictionary for language {language!r}")
        if spec.aligner == "pharaoh" and language not in realignment.get("alignments", {}):
            raise SpecError(f"realignment: aligner 'pharaoh' has no alignment file for language {language!r}")
    declared = ALIGNER_SETTINGS.get(spec.aligner, {})
    for key, value in (realignment.get("aligner_settings") or {}).items():
        if key in declared:        # the grid's other aligners' keys are theirs to read
            declared[key].check(value, f"realignment.aligner_settings.{key}")
    if "layer" in realignment:      # a hidden state the model has
        from trainables.realignment.realigner import hidden_state_index

        hidden_state_index(realignment["layer"], num_blocks, spec.model)


def _check_sources(spec: TrialSpec) -> None:
    """Every local file the trial reads must exist (resolved paths only)."""
    from pathlib import Path

    from trainables.errors import DataError

    def check(location: Any) -> None:
        if isinstance(location, dict):
            for value in location.values():
                check(value)
        elif isinstance(location, str) and not (location in ("hub", "muse") or location.startswith("hub:")):
            if not Path(location).exists():
                raise DataError("file or directory not found", location)

    check(spec.data.get("train"))
    check(spec.data.get("eval", {}))
    check(spec.data.get("validation", {}))
    if spec.realigns:
        for key in ("parallel", "dictionaries", "alignments"):
            check(spec.realignment.get(key, {}))
