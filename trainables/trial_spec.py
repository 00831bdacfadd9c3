"""The validated description of one trial: everything that determines its result.

A ``TrialSpec`` is plain data (JSON round-trip), so it travels in a Ray
config dict and hashes to a stable key. ``validate`` checks it at the
boundary: an unknown model, task, strategy, aligner or language, a
freezing depth outside the model, or a missing data file is a one-line
error naming the culprit, raised before any training starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from trainables import languages as language_lists
from trainables.artifacts import content_key
from trainables.errors import SpecError, unknown_name

BASELINE = "baseline"
FULL = "full"
SCHEDULES = ("before", "during")
PRECISIONS = ("fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")

# Keys a user may set, with their defaults (also the documentation of the keys).
FINETUNE_KEYS = ("batch_size", "learning_rate", "epochs", "max_length", "eval_max_length", "warmup_ratio",
                 "weight_decay", "eval_batch_size", "max_train_examples", "max_eval_examples",
                 "doc_stride", "eval_doc_stride", "max_answer_length", "n_best", "span_selection",
                 "dropout", "clip_grad_norm", "zh_segmentation")
REALIGN_KEYS = ("steps", "learning_rate", "batch_size", "temperature", "layer", "projection",
                "projection_dim", "max_length", "during_weight", "max_pairs", "pretokenizer",
                "loss_reduction", "word_representation", "interleaving")


@dataclass(frozen=True)
class TrialSpec:
    model: str
    task: str
    strategy: str                         # baseline | full | front | back | front:K | back:K | range:A-B
    seed: int
    languages: tuple[str, ...]            # zero-shot target languages
    data: dict[str, Any]                  # {"train": src, "eval": {lang: src}} (English under "en")
    aligner: str = "none"                 # none for the baseline
    schedule: str = "before"
    freeze_embeddings: bool = False
    realignment: dict[str, Any] = field(default_factory=dict)
    # realignment: {"languages": [...], "parallel": {lang: src}, "dictionaries": {lang: path},
    #               "alignments": {lang: path}, "aligner_settings": {...}, <REALIGN_KEYS>}
    finetune: dict[str, Any] = field(default_factory=dict)   # <FINETUNE_KEYS>
    device: str = "auto"
    precision: str = "fp32"
    cpus: int = 1
    gpus: float = 0.0
    cache: str | None = None              # realigned-encoder cache: a path or a storage URI;
                                          # None: $ALIGNFREEZE_CACHE/realigned

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

    @property
    def key(self) -> str:
        """Stable content key (resources and the cache location excluded: they do not change the result)."""
        identity = self.to_dict()
        for name in ("cpus", "gpus", "device", "cache"):
            identity.pop(name)
        return content_key(identity)

    @property
    def realigns(self) -> bool:
        return self.strategy != BASELINE

    @property
    def freeze_spec(self) -> str:
        return "none" if self.strategy == FULL else self.strategy

    @property
    def trial_id(self) -> str:
        """Readable and unique: model, task, strategy, aligner, schedule, seed, then the key."""
        model = self.model.rstrip("/").split("/")[-1]
        strategy = self.strategy.replace(":", "").replace("+", "-")
        parts = [model, self.task, strategy]
        if self.realigns:
            parts += [self.aligner, self.schedule]
        parts += [f"s{self.seed}", self.key[:8]]
        return "_".join(parts)


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
    if spec.device not in DEVICES:
        raise unknown_name("device", spec.device, DEVICES)
    if not isinstance(spec.seed, int):
        raise SpecError(f"seed must be an integer, got {spec.seed!r}")
    if spec.cpus < 1 or spec.gpus < 0:
        raise SpecError(f"resources: cpus must be >= 1 and gpus >= 0 (got {spec.cpus}, {spec.gpus})")
    for key in spec.finetune:
        if key not in FINETUNE_KEYS:
            raise unknown_name("finetune key", key, FINETUNE_KEYS)
    clip = spec.finetune.get("clip_grad_norm")
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or not clip > 0):
        raise SpecError(f"finetune.clip_grad_norm must be a positive number or null (no clipping), got {clip!r}")
    if spec.task == "qa":
        # the window must hold the question, the special tokens and more context than the overlap
        settings = {**task.defaults, **spec.finetune}
        for stride, key in (("doc_stride", "max_length"), ("eval_doc_stride", "eval_max_length")):
            if settings[stride] >= settings[key] - 4:
                raise SpecError(f"finetune: qa {stride} {settings[stride]} must be smaller than "
                                f"{key} {settings[key]} minus 4")
    for key, allowed in (("span_selection", ("pipeline", "n_best")), ("zh_segmentation", ("none", "jieba"))):
        if key in spec.finetune and spec.finetune[key] not in allowed:
            raise unknown_name(f"finetune.{key}", spec.finetune[key], allowed)
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


def _validate_realignment(spec: TrialSpec, num_blocks: int) -> None:
    realignment = spec.realignment
    allowed = set(REALIGN_KEYS) | {"languages", "parallel", "dictionaries", "alignments", "aligner_settings"}
    for key in realignment:
        if key not in allowed:
            raise unknown_name("realignment key", key, allowed)
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
    if "pretokenizer" in realignment:
        from trainables.realignment.pretokenization import check_pretokenizer
        check_pretokenizer(realignment["pretokenizer"])
    steps = realignment.get("steps", "auto")
    if steps != "auto" and (not isinstance(steps, int) or steps < 1):
        raise SpecError(f"realignment.steps must be 'auto' or a positive integer, got {steps!r}")
    if {"layer", "loss_reduction", "word_representation", "interleaving"} & set(realignment):
        from trainables.realignment.realigner import RealignSettings, hidden_state_index

        hidden_state_index(realignment.get("layer", "penultimate"), num_blocks, spec.model)
        RealignSettings(loss_reduction=realignment.get("loss_reduction", "queries"),   # checks the values
                        word_representation=realignment.get("word_representation", "first"),
                        interleaving=realignment.get("interleaving", "shortest"))


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
    if spec.realigns:
        for key in ("parallel", "dictionaries", "alignments"):
            check(spec.realignment.get(key, {}))
