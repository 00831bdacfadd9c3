"""What a grid will cost, before it runs: ``alignfreeze plan``.

From a validated experiment, without training, downloading or starting
Ray: the trials; the distinct "before" realignments once trials that
realign the same way share one (the realigned-encoder cache's key,
``realignment_key``); the optimizer steps of each phase; device-hours per
model; and the disk the realigned-encoder cache, the checkpoints and the
results take.

Fine-tuning steps are the trial's own: ceil(training sequences / batch
size) x epochs. A local training file is read with the task's reader and
cut into sequences with the model's tokenizer when it loads without the
network (else its examples are counted and the windows estimated); a Hub
split's size comes from ``trainables.dataset_sizes``. Device time comes
from ``orchestrator.model_costs`` (an estimate unless measured figures are
given) and is an estimate either way.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
from dataclasses import dataclass
from typing import Any

from orchestrator.model_costs import (ADAM_STATE_FACTOR, BYTES_PER_PARAMETER, ModelShape, Throughput,
                                      estimated_throughput, evaluation_seq_per_s, model_shape)
from orchestrator.preflight import is_local
from trainables.errors import SpecError
from trainables.languages import SOURCE_LANGUAGE
from trainables.trial_spec import TrialSpec

# A result file (per-language metrics, provenance) and Ray's per-trial logs
# (result rows, parameters, TensorBoard events): about 0.1 MB a trial, an
# estimate from the files' contents, not a measurement at the paper's size.
RESULT_BYTES_PER_TRIAL = 100_000


@dataclass(frozen=True)
class FinetuneSize:
    """The fine-tuning of one model on one task's training data."""
    model: str
    task: str
    examples: int            # training examples (max_train_examples applied)
    sequences: int           # what the loop batches (QA: windows)
    batch_size: int
    epochs: int
    how: str                 # "Hub table" | "counted" | "examples counted, windows estimated"
    where: str               # the Hub split looked up, or the file read

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.sequences / self.batch_size)

    @property
    def steps(self) -> int:
        return self.steps_per_epoch * self.epochs


@dataclass(frozen=True)
class TrialCost:
    trial_id: str
    model: str
    task: str
    strategy: str
    schedule: str
    finetune_steps: int
    finetune_sequences: int        # sequences x epochs
    realign_steps: int             # 0 for the baseline
    realign_pairs: int             # steps x pairs a batch
    realignment: str | None        # the shared "before" realignment's key; None: none or "during"
    eval_sequences: int
    finetune_s: float
    during_realign_s: float        # realignment inside fine-tuning ("during"): never shared
    eval_s: float


@dataclass(frozen=True)
class Realignment:
    key: str
    model: str
    steps: int
    pairs: int
    trials: int                    # trials that share it
    seconds: float


@dataclass
class ModelCost:
    model: str
    throughput: Throughput
    shape: ModelShape
    trials: int = 0
    realignments: int = 0
    finetune_h: float = 0.0
    realign_h: float = 0.0
    eval_h: float = 0.0

    @property
    def total_h(self) -> float:
        return self.finetune_h + self.realign_h + self.eval_h


@dataclass(frozen=True)
class BudgetComparison:
    """What the "before" realignments would cost with every trial at ``steps`` steps."""
    steps: int
    why: str                       # "--steps" | "mean of the auto steps"
    realignments: int
    realign_h: float
    cache_bytes: int
    current_realignments: int
    current_realign_h: float


@dataclass(frozen=True)
class Disk:
    cache_location: str
    cache_encoders: int
    cache_bytes: int               # one encoder per distinct realignment, parameters x 4 bytes
    checkpoint_bytes: int          # what stays once every result is written (checkpoint.keep): none: 0;
                                   # final: each trial's weights; all: each trial's latest checkpoint
    largest_checkpoint_bytes: int  # one checkpoint (model + Adam state); a running trial holds up to 2
    results_bytes: int
    keep: str = "none"


@dataclass
class Plan:
    name: str
    source: str | None
    trials: list[TrialCost]
    sizes: list[FinetuneSize]
    realignments: list[Realignment]
    models: list[ModelCost]
    steps_setting: list[str]       # the realignment.steps values of the realigned trials
    corpus: dict[str, Any]
    budget: BudgetComparison | None
    disk: Disk
    search: str | None = None      # how a depth search was planned

    @property
    def total_h(self) -> float:
        return sum(m.total_h for m in self.models)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["sizes"] = [{**dataclasses.asdict(s), "steps_per_epoch": s.steps_per_epoch, "steps": s.steps}
                         for s in self.sizes]
        data["models"] = [{**dataclasses.asdict(m), "total_h": m.total_h} for m in self.models]
        data["totals"] = {"trials": len(self.trials),
                          "realigned_trials": sum(1 for t in self.trials if t.realign_steps),
                          "realignments": len(self.realignments),
                          "device_hours": self.total_h}
        return data


# ---------------------------------------------------------------------- counting
class _Counter:
    """Fine-tuning and evaluation sizes, each computed once per distinct input."""

    def __init__(self) -> None:
        self.sizes: dict[str, FinetuneSize] = {}
        self.examples: dict[str, list[Any]] = {}
        self.tokenizers: dict[str, Any] = {}
        self.eval_counts: dict[str, int] = {}

    def finetune(self, spec: TrialSpec) -> FinetuneSize:
        from trainables.trial import finetune_settings

        settings = finetune_settings(spec, xlmr=False)   # the XLM-R flag changes the learning rate only
        source = spec.data["train"]
        key = json.dumps([spec.model, spec.task, source, spec.finetune], sort_keys=True, default=str)
        if key in self.sizes:
            return self.sizes[key]
        if is_local(source):
            size = self._counted(spec, source, settings)
        else:
            size = self._from_table(spec, source, settings)
        self.sizes[key] = size
        return size

    def _from_table(self, spec: TrialSpec, source: str, settings) -> FinetuneSize:
        from trainables.dataset_sizes import SEQUENCES_PER_EXAMPLE, hub_train_examples
        from trainables.tasks.registry import get_task

        # the task module's hub_dataset is the one place that knows its Hub layout
        module = importlib.import_module(get_task(spec.task).implementation.partition(":")[0])
        dataset_id, config, split = module.hub_dataset(source, SOURCE_LANGUAGE, "train")
        size = hub_train_examples(spec.task, dataset_id, config, split)
        if size is None:
            where = dataset_id + (f" [{config}]" if config else "") + f" {split}"
            raise SpecError(f"plan: the size of the Hub split {where} ({spec.task} training) is not in "
                            f"trainables/dataset_sizes.py: add it there, or train on local files")
        examples = _limited(size.examples, settings.max_train_examples)
        return FinetuneSize(spec.model, spec.task, examples, round(examples * SEQUENCES_PER_EXAMPLE[spec.task]),
                            settings.batch_size, settings.epochs, "Hub table", size.where)

    def _counted(self, spec: TrialSpec, source: str, settings) -> FinetuneSize:
        from trainables.dataset_sizes import SEQUENCES_PER_EXAMPLE
        from trainables.tasks.registry import get_task

        task = get_task(spec.task).load()
        examples_key = json.dumps([spec.task, source, settings.max_train_examples])
        if examples_key not in self.examples:
            self.examples[examples_key] = task.load_examples(source, SOURCE_LANGUAGE, "train",
                                                             settings.max_train_examples)
        examples = self.examples[examples_key]
        tokenizer = self._tokenizer(spec.model)
        if tokenizer is not None:    # what the trial itself will batch
            sequences, how = len(task.features(examples, tokenizer, settings)), "counted"
        else:
            sequences = round(len(examples) * SEQUENCES_PER_EXAMPLE[spec.task])
            how = "examples counted, windows estimated"
        return FinetuneSize(spec.model, spec.task, len(examples), sequences, settings.batch_size,
                            settings.epochs, how, source)

    def _tokenizer(self, model: str) -> Any:
        """The model's tokenizer from local files only (None without them: no network here)."""
        if model not in self.tokenizers:
            from transformers import AutoTokenizer

            from trainables.models import quiet_transformers, resolve_model_location

            quiet_transformers()
            try:
                self.tokenizers[model] = AutoTokenizer.from_pretrained(
                    resolve_model_location(model), local_files_only=True, trust_remote_code=False)
            except (OSError, ValueError):
                self.tokenizers[model] = None
        return self.tokenizers[model]

    def evaluation(self, spec: TrialSpec) -> int:
        """Evaluation sequences of a trial (English and every target): counted locally, else the table."""
        from trainables.dataset_sizes import EVAL_SEQUENCES_PER_EXAMPLE, eval_examples
        from trainables.tasks.registry import get_task
        from trainables.trial import finetune_settings

        limit = finetune_settings(spec, xlmr=False).max_eval_examples
        total = 0
        for language in (SOURCE_LANGUAGE, *spec.languages):
            source = spec.data["eval"][language]
            if is_local(source):
                key = json.dumps([spec.task, source, language, limit])
                if key not in self.eval_counts:
                    self.eval_counts[key] = len(get_task(spec.task).load().load_examples(
                        source, language, "test", limit))
                count = self.eval_counts[key]
            else:
                count = _limited(eval_examples(spec.task, language), limit)
            total += count
        return round(total * EVAL_SEQUENCES_PER_EXAMPLE[spec.task])


def _limited(size: int, limit: int | None) -> int:
    return size if limit is None else min(size, int(limit))


def _realign_batch(spec: TrialSpec) -> int:
    from trainables.trial import realign_settings

    return realign_settings(spec, xlmr=False).batch_size


def realignment_steps(spec: TrialSpec, finetune_steps: int) -> int:
    """The trial's realignment steps: ``steps: auto`` is its fine-tuning's optimizer steps."""
    if not spec.realigns:
        return 0
    if spec.schedule == "during":       # one realignment batch per fine-tuning step
        return finetune_steps
    steps = spec.realignment.get("steps", "auto")
    return finetune_steps if steps == "auto" else int(steps)


def _with_steps(spec: TrialSpec, steps: int) -> TrialSpec:
    return dataclasses.replace(spec, realignment={**spec.realignment, "steps": steps})


def _shared_keys(specs: list[TrialSpec], steps_of: dict[str, int]) -> dict[str, str]:
    """trial id -> key of its "before" realignment (trials with equal keys share one)."""
    from trainables.realignment.realigned_cache import realignment_key

    return {spec.trial_id: realignment_key(spec, steps_of[spec.trial_id]) for spec in specs}


# ------------------------------------------------------------------------ the plan
def planned_trials(experiment) -> tuple[list[TrialSpec], str | None]:
    """The trials to plan; for a depth search, ``search.trials`` settings per study (every seed)."""
    if experiment.search is None:
        return list(experiment.trials), None
    trials = list(experiment.trials)
    settings = experiment.search.trials
    for by_strategy in experiment.candidates.values():
        for specs in list(by_strategy.values())[:settings]:
            trials.extend(specs)
    note = (f"depth search: {len(experiment.candidates)} study(ies) x at most {settings} settings "
            f"(search.trials), every seed, plus the baselines; planned with the first {settings} "
            f"candidate settings of each study")
    return trials, note


def build_plan(experiment, throughput: dict[str, Throughput] | None = None,
               fixed_steps: int | None = None) -> Plan:
    """The plan of ``experiment``; ``throughput``: measured figures per model (else estimates);
    ``fixed_steps``: the fixed realignment budget to compare with (default: the mean of the auto steps)."""
    from trainables.tasks.registry import TASKS
    from trainables.trial import finetune_settings

    if fixed_steps is not None and fixed_steps < 1:
        raise SpecError(f"--steps must be a positive integer, got {fixed_steps}")
    specs, search_note = planned_trials(experiment)
    counter = _Counter()
    models: dict[str, ModelCost] = {}
    for spec in specs:
        if spec.model not in models:
            shape = model_shape(spec.model)
            measured = (throughput or {}).get(spec.model)
            models[spec.model] = ModelCost(spec.model, measured or estimated_throughput(shape), shape)

    steps_of: dict[str, int] = {}
    costs: list[TrialCost] = []
    before: list[TrialSpec] = []
    for spec in specs:
        cost = models[spec.model]
        size = counter.finetune(spec)
        realign = realignment_steps(spec, size.steps)
        steps_of[spec.trial_id] = realign
        eval_length = finetune_settings(spec, xlmr=False).eval_max_length
        eval_sequences = counter.evaluation(spec)
        during = spec.realigns and spec.schedule == "during"
        pairs = realign * _realign_batch(spec)
        costs.append(TrialCost(
            spec.trial_id, spec.model, spec.task, spec.strategy, spec.schedule, size.steps,
            size.sequences * size.epochs, realign, pairs, None, eval_sequences,
            size.sequences * size.epochs / cost.throughput.finetune_seq_per_s,
            pairs / cost.throughput.realign_pairs_per_s if during else 0.0,
            eval_sequences / evaluation_seq_per_s(cost.throughput, cost.shape, eval_length)))
        if spec.realigns and not during:
            before.append(spec)

    keys = _shared_keys(before, steps_of)
    costs = [dataclasses.replace(c, realignment=keys.get(c.trial_id)) for c in costs]
    realignments = _realignments(before, keys, steps_of, models)
    for cost in costs:
        model = models[cost.model]
        model.trials += 1
        model.finetune_h += cost.finetune_s / 3600
        model.realign_h += cost.during_realign_s / 3600
        model.eval_h += cost.eval_s / 3600
    for realignment in realignments:
        models[realignment.model].realignments += 1
        models[realignment.model].realign_h += realignment.seconds / 3600

    steps_setting = sorted({str(s.realignment.get("steps", "auto")) for s in before})
    budget = _budget(before, steps_of, realignments, models, fixed_steps)
    cache_location = _cache_location(before or specs)
    checkpoint = {m: ADAM_STATE_FACTOR * models[m].shape.parameters * BYTES_PER_PARAMETER for m in models}
    keep = getattr(getattr(experiment, "checkpoint", None), "keep", "none")
    kept = {"none": 0, "final": 1 / ADAM_STATE_FACTOR, "all": 1}[keep]    # of a checkpoint, per trial
    disk = Disk(cache_location, len(realignments), _cache_bytes(realignments, models),
                round(kept * sum(checkpoint[c.model] for c in costs)), max(checkpoint.values(), default=0),
                RESULT_BYTES_PER_TRIAL * len(costs), keep)
    sizes = list({(s.model, s.task, s.where, s.sequences, s.batch_size, s.epochs): s
                  for s in counter.sizes.values()}.values())
    sizes.sort(key=lambda s: (list(TASKS).index(s.task), s.model))
    return Plan(experiment.name, experiment.source, costs, sizes, realignments, list(models.values()),
                steps_setting, _corpus(before), budget, disk, search_note)


def _realignments(before: list[TrialSpec], keys: dict[str, str], steps_of: dict[str, int],
                  models: dict[str, ModelCost]) -> list[Realignment]:
    shared: dict[str, Realignment] = {}
    for spec in before:
        key = keys[spec.trial_id]
        if key in shared:
            shared[key] = dataclasses.replace(shared[key], trials=shared[key].trials + 1)
            continue
        steps = steps_of[spec.trial_id]
        pairs = steps * _realign_batch(spec)
        shared[key] = Realignment(key, spec.model, steps, pairs, 1,
                                  pairs / models[spec.model].throughput.realign_pairs_per_s)
    return list(shared.values())


def _budget(before: list[TrialSpec], steps_of: dict[str, int], realignments: list[Realignment],
            models: dict[str, ModelCost], fixed_steps: int | None) -> BudgetComparison | None:
    """The same "before" realignments at one fixed budget: ``--steps``, else the mean of the auto steps."""
    if not before:
        return None
    auto = [steps_of[s.trial_id] for s in before if s.realignment.get("steps", "auto") == "auto"]
    if fixed_steps is None:
        if not auto:
            return None      # already a fixed budget: nothing to compare unless asked (--steps)
        fixed_steps, why = max(1, round(sum(auto) / len(auto))), "the mean of the auto steps"
    else:
        why = "--steps"
    fixed = [_with_steps(spec, fixed_steps) for spec in before]
    steps = {spec.trial_id: fixed_steps for spec in fixed}
    alternative = _realignments(fixed, _shared_keys(fixed, steps), steps, models)
    return BudgetComparison(fixed_steps, why, len(alternative), sum(r.seconds for r in alternative) / 3600,
                            _cache_bytes(alternative, models),
                            len(realignments), sum(r.seconds for r in realignments) / 3600)


def _cache_bytes(realignments: list[Realignment], models: dict[str, ModelCost]) -> int:
    """One stored encoder (no pooler) per distinct realignment, 4 bytes a parameter."""
    return sum(models[r.model].shape.stored_parameters * BYTES_PER_PARAMETER for r in realignments)


def _cache_location(specs: list[TrialSpec]) -> str:
    from trainables.realignment.realigned_cache import default_location

    locations = sorted({spec.cache or default_location() for spec in specs})
    return ", ".join(locations) if locations else default_location()


def _corpus(before: list[TrialSpec]) -> dict[str, Any]:
    """The realignment corpus: languages and training pairs (OPUS-100 from the table, local files by lines)."""
    from trainables.dataset_sizes import opus100_pairs

    if not before:
        return {}
    spec = before[0]
    realignment = spec.realignment
    max_pairs = realignment.get("max_pairs")
    pairs: dict[str, int] = {}
    for language in realignment.get("languages", ()):
        source = realignment["parallel"][language]
        if isinstance(source, str) and not is_local(source):
            count = opus100_pairs(language)
        else:
            count = _lines(source["source"] if isinstance(source, dict) else source)
        pairs[language] = _limited(count, max_pairs)
    return {"languages": len(pairs), "pairs": sum(pairs.values()), "per_language": pairs,
            "max_pairs": max_pairs}


def _lines(path: str) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())
