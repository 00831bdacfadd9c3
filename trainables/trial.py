"""One AlignFreeze trial, without Ray: realign (optional) -> fine-tune -> evaluate.

``run_trial`` is the whole ML core of an experiment. It checkpoints at
every phase boundary (after realignment, after each fine-tuning epoch)
and inside a phase as ``checkpoint:`` says (``trainables.checkpoint_policy``:
every N optimizer steps, every M minutes) through a callback, and resumes
from such a checkpoint, so that an interrupted trial continues where it
stopped and ends with the same metrics as an uninterrupted one: weights,
optimizer and scheduler states, random generators, the position in the
epoch and in the realignment stream. Given several checkpoints, newest
first, it resumes from the first complete one and warns about the others
(``checkpoint_layout.damage``); with none usable it starts over.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import platform
import random
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from trainables import device_settings, languages as language_lists
from trainables.errors import DataError, SpecError
from trainables.trial_spec import TrialSpec

from trainables.checkpoint_layout import CHECKPOINT_FILE, FINAL_WEIGHTS_FILE, PHASE_FILE, damage, mark_complete
from trainables.checkpoint_policy import CheckpointClock, CheckpointPolicy

logger = logging.getLogger(__name__)

# on_checkpoint(metrics, directory): a phase ended, or a checkpoint inside one was due;
# ``directory`` holds the state.
CheckpointCallback = Callable[[dict[str, Any], Path], None]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy

        numpy.random.seed(seed % 2**32)
    except ImportError:
        pass


def select_device(requested: str) -> torch.device:
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise SpecError("device 'cuda' requested but no GPU is visible to this trial")
        return torch.device("cuda")
    return torch.device("cpu")


def package_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for name in ("alignfreeze", "torch", "transformers", "datasets", "tokenizers", "ray", "seqeval"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB (ru_maxrss: KB on Linux, bytes on macOS)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def process_age_s() -> float | None:
    """Seconds since this process started (Linux: /proc, 10 ms resolution; None elsewhere)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat, open("/proc/uptime", encoding="ascii") as uptime:
            started_ticks = int(stat.read().rpartition(")")[2].split()[19])   # field 22: starttime
            return float(uptime.read().split()[0]) - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


# Timings of a trial's setup, measured again by every call (a resume keeps its own, not the checkpoint's):
# startup_s: from the process's start to the setup of its first trial (the interpreter, torch and the
#   trial's modules imported; in a Tune worker Ray's own start too); absent for a process's later trials;
# model_s: the encoder and tokenizer loaded (with, in a fresh process, the first import of the
#   transformers modules of the model's class: most of it on CPU);
# load_s: the training data read and turned into features.
SETUP_TIMINGS = ("startup_s", "model_s", "load_s")
_process_ran_a_trial = False


@dataclass
class Phase:
    """What a checkpoint says about where the trial stands."""
    name: str            # "start" | "realigning" | "realigned" | "finetuning" | "finetune"
    epoch: int = -1      # last completed fine-tuning epoch
    step: int = 0        # realigning: realignment steps done; finetuning: steps done in epoch ``epoch + 1``

    def describe(self, steps_per_epoch: int, realign_steps: int) -> str:
        """Where the trial stands, in words (``alignfreeze status``, the resume message)."""
        if self.name == "realigning":
            return f"realignment step {self.step}/{realign_steps}"
        if self.name == "finetuning":
            return f"fine-tuning epoch {self.epoch + 2}, step {self.step}/{steps_per_epoch}"
        if self.name == "finetune":
            return f"fine-tuning epoch {self.epoch + 1}"
        return self.name


def finetune_settings(spec: TrialSpec, xlmr: bool):
    from trainables.tasks.base import FinetuneSettings
    from trainables.tasks.registry import get_task

    values = {**get_task(spec.task).defaults, **spec.finetune}
    if xlmr and "learning_rate" not in spec.finetune:
        values["learning_rate"] = values.get("xlmr_learning_rate", values["learning_rate"])
    fields = {f for f in FinetuneSettings.__dataclass_fields__ if f != "extra"}
    extra = {k: v for k, v in values.items() if k not in fields and k != "xlmr_learning_rate"}
    return FinetuneSettings(**{k: v for k, v in values.items() if k in fields}, extra=extra)


def realign_settings(spec: TrialSpec, xlmr: bool):
    from trainables.realignment.realigner import RealignSettings

    values = {k: v for k, v in spec.realignment.items() if k in RealignSettings.__dataclass_fields__}
    settings = RealignSettings(**values)
    if xlmr and "learning_rate" not in spec.realignment:
        settings = RealignSettings(**{**values, "learning_rate": settings.xlmr_learning_rate})
    return settings


class TrialRunner:
    """Runs one trial; holds its state between phases."""

    def __init__(self, spec: TrialSpec, log: Callable[[str], None] = print, curves: Any = None,
                 on_progress: Callable[[dict[str, Any]], None] | None = None):
        from trainables.training_curves import NO_CURVES

        self.spec = spec
        self.log = log
        self.on_progress = on_progress     # after every step: where the trial stands (the caller throttles it)
        self.curves = curves or NO_CURVES    # a TrainingCurves: the trial's TensorBoard curves
        self.timings: dict[str, float] = {}
        self.stats: dict[str, Any] = {}

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        from trainables.models import encoder_layout, is_xlmr, load_encoder
        from trainables.tasks.registry import get_task

        global _process_ran_a_trial
        if not _process_ran_a_trial:
            _process_ran_a_trial = True
            age = process_age_s()
            if age is not None:
                self.timings["startup_s"] = max(0.0, age - (time.perf_counter() - self.started))
        spec = self.spec
        torch.set_num_threads(max(1, spec.cpus))   # never more threads than the trial's CPUs
        self.device = select_device(spec.device)
        self.autocast_dtype = device_settings.autocast_dtype(spec.precision)
        seed_everything(spec.seed)
        self.task = get_task(spec.task).load()
        started = time.perf_counter()
        self.encoder, self.tokenizer = load_encoder(spec.model, pooler=self.task.pretrained_pooler)
        self.encoder.to(self.device)
        self.timings["model_s"] = time.perf_counter() - started
        self.acceleration = device_settings.configure(self.device, spec.precision, spec.compile, self.encoder)
        self.num_blocks = encoder_layout(self.encoder).num_blocks
        self.xlmr = is_xlmr(self.encoder)
        self.settings = finetune_settings(spec, self.xlmr)
        self.realign = realign_settings(spec, self.xlmr)
        started = time.perf_counter()
        train = self.task.load_examples(spec.data["train"], language_lists.SOURCE_LANGUAGE, "train",
                                        self.settings.max_train_examples)
        self.features = self.task.features(train, self.tokenizer, self.settings)
        if not self.features:
            raise SpecError(f"task {spec.task}: the training data gives no training example")
        self.steps_per_epoch = math.ceil(len(self.features) / self.settings.batch_size)
        self.finetune_steps = self.steps_per_epoch * self.settings.epochs
        self.timings["load_s"] = time.perf_counter() - started

    def _progress(self, phase: str, step: int = 0, steps: int = 0, epoch: int = 0, epochs: int = 0) -> None:
        """``progress_*`` scalars for the driver's live view (``orchestrator.progress.progress_of``)."""
        if self.on_progress is not None:
            self.on_progress({"progress_phase": phase, "progress_step": step, "progress_steps": steps,
                              "progress_epoch": epoch, "progress_epochs": epochs})

    def _realignment_steps(self) -> int:
        steps = self.realign.steps
        return self.finetune_steps if steps == "auto" else int(steps)

    def _frozen_names(self) -> frozenset[str]:
        from trainables.freezing import frozen_parameter_names, parse_freeze_spec

        return frozen_parameter_names(self.encoder, parse_freeze_spec(self.spec.freeze_spec,
                                                                       self.spec.freeze_embeddings))

    def _realignment_stream(self):
        from trainables.realignment.corpus import language_corpora
        from trainables.realignment.pretokenization import DEFAULT_PRETOKENIZER, segmenter_load_seconds
        from trainables.realignment.realigner import RealignmentStream

        realignment = self.spec.realignment
        started, segmenters_before = time.perf_counter(), segmenter_load_seconds()
        corpora = language_corpora(
            realignment["languages"], realignment["parallel"], self.spec.aligner,
            dictionaries=realignment.get("dictionaries"), alignments=realignment.get("alignments"),
            aligner_settings=realignment.get("aligner_settings"), max_pairs=self.realign.max_pairs,
            encoder=(self.encoder, self.tokenizer), progress=self.log,
            pretokenizer=realignment.get("pretokenizer", DEFAULT_PRETOKENIZER))
        # dictionaries read; eflomal / simalign links found in (or computed into) the alignment cache
        self.timings["corpora_s"] = time.perf_counter() - started
        stream = RealignmentStream(corpora, self.tokenizer, self.realign, self.spec.seed)

        def on_first_batch() -> None:
            # from the trial's start (``run``) to its first realignment batch; kept across a resume
            self.timings.setdefault("first_step_s", time.perf_counter() - self.started)
            # the zh / ja / th segmenters this process loaded for it (0 when loaded before)
            self.timings.setdefault("segmenters_s", segmenter_load_seconds() - segmenters_before)
        stream.on_first_batch = on_first_batch
        # the corpora opened and the stream built (its shuffle buffer filled: pairs read and aligned)
        self.timings["align_s"] = time.perf_counter() - started
        self.stats["realignment_corpus"] = stream.report    # its counts grow as the stream reads
        return stream

    # ------------------------------------------------------------ checkpoints
    def _save(self, directory: Path, phase: Phase, state: dict[str, Any]) -> None:
        from trainables import random_state
        from trainables.artifacts import atomic_directory

        with atomic_directory(directory) as tmp:
            torch.save({"spec_key": self.spec.key, "phase": phase.name, "epoch": phase.epoch,
                        "step": phase.step, "rng": random_state.capture(), "stats": self.stats, "timings": self.timings,
                        **state}, tmp / CHECKPOINT_FILE)
            (tmp / PHASE_FILE).write_text(json.dumps({
                "trial_id": self.spec.trial_id, "phase": phase.name, "epoch": phase.epoch,
                "epochs": self.settings.epochs, "step": phase.step,
                "position": phase.describe(*((self.steps_per_epoch, self._realignment_steps())
                                             if phase.step else (0, 0))),   # totals: inside a phase only
                "saved": datetime.now(timezone.utc).isoformat(timespec="seconds")}), encoding="utf-8")
            mark_complete(tmp)    # last: a copy without it, or cut short, is no checkpoint

    def _load(self, directory: Path) -> dict[str, Any]:
        # Tensors go straight to the trial's device; the generator states are
        # plain bytes (``random_state``), which no map_location moves.
        state = torch.load(Path(directory) / CHECKPOINT_FILE, map_location=self.device, weights_only=False)
        if state["spec_key"] != self.spec.key:
            raise SpecError(f"checkpoint {directory} belongs to another trial spec")
        return state

    def _resume_state(self, resume_from: Path | Sequence[Path] | None) -> dict[str, Any] | None:
        """The state of the first complete checkpoint of ``resume_from`` (newest first), or None."""
        candidates = [resume_from] if isinstance(resume_from, (str, Path)) else list(resume_from or ())
        damaged = []
        for index, directory in enumerate(candidates):
            problem = damage(directory)
            if problem is None:
                try:
                    state = self._load(directory)
                except SpecError:
                    raise
                except Exception as error:   # a state that passed its marker but does not load
                    problem = f"unreadable: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            if problem is None:
                if damaged:
                    state["stats"] = {**state["stats"], "damaged_checkpoints": damaged}
                return state
            damaged.append({"checkpoint": str(directory), "problem": problem})
            fallback = ("falling back to the previous one" if index + 1 < len(candidates)
                        else "no earlier checkpoint: the trial starts from the beginning")
            message = f"WARNING: checkpoint {directory} of {self.spec.trial_id} is not usable ({problem}); {fallback}"
            logger.warning(message)
            self.log(message)
        if damaged:
            self.stats["damaged_checkpoints"] = damaged
        return None

    # ------------------------------------------------------------------- run
    def run(self, resume_from: Path | Sequence[Path] | None = None, checkpoint_root: Path | None = None,
            on_checkpoint: CheckpointCallback | None = None, policy: CheckpointPolicy | None = None,
            final_weights: Path | None = None) -> dict[str, Any]:
        """Run (or resume) the trial and return its result.

        ``resume_from``: a checkpoint directory, or several, newest first.
        ``final_weights``: a directory to write the fine-tuned model to
        (``model.safetensors``, with its completion marker).
        """
        from trainables.checkpoint_layout import working_directory

        total_started = self.started = time.perf_counter()
        self._setup()
        self.clock = CheckpointClock(policy or CheckpointPolicy())
        state = self._resume_state(resume_from)
        phase = Phase(state["phase"], state["epoch"], state.get("step", 0)) if state else Phase("start")
        if state:
            self.stats.update(state["stats"])
            position = phase.describe(self.steps_per_epoch, self._realignment_steps())
            self.stats["resumed_from"] = phase.name + {"finetune": f" epoch {phase.epoch + 1}",
                                                       "finetuning": f" epoch {phase.epoch + 2} step {phase.step}",
                                                       "realigning": f" step {phase.step}"}.get(phase.name, "")
            self.timings.update({k: v for k, v in state["timings"].items() if k not in SETUP_TIMINGS})
            self.log(f"resuming {self.spec.trial_id}: " + {
                "finetune": f"{phase.epoch + 1} fine-tuning epoch(s) done, continuing at epoch {phase.epoch + 2}",
                "finetuning": f"{position} done, continuing there",
                "realigning": f"{position} done, continuing the realignment",
            }.get(phase.name, "realignment done, starting fine-tuning"))
        own_root = checkpoint_root is None
        checkpoint_root = Path(checkpoint_root or working_directory())
        try:
            return self._run_phases(phase, state, checkpoint_root, on_checkpoint, total_started, final_weights)
        finally:
            self.curves.close()
            if own_root:   # nobody else will read checkpoints this call made up a place for
                shutil.rmtree(checkpoint_root, ignore_errors=True)

    def _run_phases(self, phase: Phase, state: dict[str, Any] | None, checkpoint_root: Path,
                    on_checkpoint: CheckpointCallback | None, total_started: float,
                    final_weights: Path | None) -> dict[str, Any]:
        def checkpoint(name: str, phase: Phase, state: dict[str, Any], metrics: dict[str, Any]) -> None:
            directory = checkpoint_root / name
            self._save(directory, phase, state)
            self.clock.saved()
            if on_checkpoint is not None:
                on_checkpoint({"phase": phase.name, "epoch": phase.epoch, "step": phase.step, **metrics}, directory)

        frozen_names = self._frozen_names() if self.spec.realigns else frozenset()
        if self.spec.realigns and self.spec.schedule == "before" and phase.name in ("start", "realigning"):
            self._realign_before(frozen_names, state if phase.name == "realigning" else None, checkpoint)
            phase = Phase("realigned")
            checkpoint("realigned", phase, {"encoder": self.encoder.state_dict()},
                       {k: v for k, v in self.stats.items() if isinstance(v, (int, float))})
        elif state is not None and phase.name == "realigned":
            self.encoder.load_state_dict(state["encoder"])
        if self.spec.realigns and self.spec.schedule == "during":
            self.stats["realignment_cache"] = {"key": None, "hit": False,
                                               "reason": "schedule 'during' realigns inside fine-tuning"}
        self.stats.setdefault("realign_steps", 0)

        model = self._finetune(phase, state, frozen_names, checkpoint)
        if final_weights is not None:
            self._save_final_weights(model, final_weights)
        started = time.perf_counter()
        self._progress("evaluating")
        evaluation = self._evaluate(model)
        self.timings["evaluate_s"] = time.perf_counter() - started
        validation: dict[str, dict[str, float]] = {}
        if self.spec.data.get("validation"):     # held-out data a search selects on, never the test sets
            started = time.perf_counter()
            validation = self._evaluate(model, "validation")
            self.timings["validate_s"] = time.perf_counter() - started
        # wall time of this call (after a resume, the phases before it are in realign_s / finetune_s)
        self.timings["total_s"] = time.perf_counter() - total_started
        result = self._result(evaluation, validation)
        self._curve_evaluation(result)
        return result

    def _curve_evaluation(self, result: dict[str, Any]) -> None:
        """The evaluation's per-language scores and averages, at the fine-tuning's last step."""
        from trainables.training_curves import evaluation_scalars

        english = {language_lists.SOURCE_LANGUAGE: result["english"]}
        values = evaluation_scalars("test", {**english, **result["metrics"]}, result["average"])
        if "english_validation" in result or "validation" in result:
            scored = {**({language_lists.SOURCE_LANGUAGE: result["english_validation"]}
                         if "english_validation" in result else {}), **result.get("validation", {})}
            values.update(evaluation_scalars("validation", scored, result.get("validation_average")))
        self.finetune_curves.scalars(self.finetune_steps, values)

    def _save_final_weights(self, model, directory: Path) -> None:
        from safetensors.torch import save_model

        from trainables.artifacts import atomic_directory

        with atomic_directory(directory) as tmp:
            save_model(model, str(tmp / FINAL_WEIGHTS_FILE),
                       metadata={"trial_id": self.spec.trial_id, "spec_key": self.spec.key})
            (tmp / PHASE_FILE).write_text(json.dumps({"trial_id": self.spec.trial_id, "phase": "done"}),
                                          encoding="utf-8")
            mark_complete(tmp, FINAL_WEIGHTS_FILE)

    def _realign_before(self, frozen_names: frozenset[str], resume: dict[str, Any] | None = None,
                        checkpoint: Callable[..., None] | None = None) -> None:
        """The "before" realignment, from the shared cache when another trial computed it;
        ``resume``: a mid-realignment checkpoint's state to continue from (on a cache miss)."""
        from trainables.realignment.realigned_cache import (RealignedCache, load_or_realign,
                                                             realignment_identity)
        from trainables.realignment.realigner import realign
        from trainables.artifacts import content_key

        spec, steps = self.spec, self._realignment_steps()
        identity = realignment_identity(spec, steps)
        key = content_key(identity)

        def compute() -> dict[str, Any]:
            stream = self._realignment_stream()
            # Reseeded here, so the realignment's random streams (dropout, the
            # projection head) depend on its key only, never on the task loaded before.
            seed_everything(spec.seed)
            self.log(f"realigning {spec.model} for {steps} steps, frozen: {spec.freeze_spec} "
                     f"({len(frozen_names)} tensors)" + (f", from step {resume['realignment']['step']}"
                                                         if resume else ""))

            def on_step(done: int, state: Callable[[], dict[str, Any]]) -> None:
                self._progress("realigning", done, steps)
                if checkpoint is not None and self.clock.due(done):
                    checkpoint("realigning", Phase("realigning", step=done), {"realignment": state()},
                               {"realign_step": done})

            stats = realign(self.encoder, stream, self.realign, steps, frozen_names,
                            self.realign.learning_rate, self.device, self.autocast_dtype,
                            resume=resume["realignment"] if resume else None, on_step=on_step,
                            curves=self.curves)
            return {**stats, "realignment_corpus": self.stats.get("realignment_corpus")}

        started = time.perf_counter()
        stats, hit = load_or_realign(
            RealignedCache(spec.cache), key, self.encoder, compute, log=self.log,
            meta={"identity": identity, "model": spec.model, "strategy": spec.freeze_spec,
                  "aligner": spec.aligner, "steps": steps, "computed_by": spec.trial_id,
                  "host": platform.node()})
        stats = dict(stats)
        computed_s = stats.pop("realign_s", None)
        self.timings["realign_s"] = computed_s if not hit else time.perf_counter() - started
        self.stats.update(stats)
        self.stats["realignment_cache"] = {"key": key, "hit": hit}

    # -------------------------------------------------------------- finetune
    def _finetune(self, phase: Phase, state: dict[str, Any] | None, frozen_names: frozenset[str],
                  checkpoint: Callable[..., None]):
        from transformers import get_linear_schedule_with_warmup

        from trainables import random_state
        from trainables.device_settings import to_device
        from trainables.freezing import frozen
        from trainables.length_grouping import DEFAULT_BATCHING, epoch_batches
        from trainables.optimizers import adam
        from trainables.realignment.realigner import (build_projection_head, realignment_loss,
                                                       realignment_provenance)
        from trainables.training_curves import grad_norm

        spec, settings = self.spec, self.settings
        # The head's initialisation depends on the seed only, not on whether
        # realignment ran: baseline and realigned trials start from the same head.
        torch.manual_seed(spec.seed + 1)
        dropout = spec.finetune.get("dropout")   # None: the architecture's own rate for this head
        model = self.task.build_model(self.encoder, None if dropout is None else float(dropout)).to(self.device)
        device_settings.compile_model(model, spec.compile)
        during = spec.realigns and spec.schedule == "during"
        projection = build_projection_head(self.encoder, self.realign) if during else None
        if projection is not None:
            projection.to(self.device)
        parameters = list(model.parameters()) + (list(projection.parameters()) if projection else [])
        optimizer = adam(parameters, settings.learning_rate, settings.weight_decay, decoupled=True)
        scheduler = get_linear_schedule_with_warmup(
            optimizer, int(settings.warmup_ratio * self.finetune_steps), self.finetune_steps)
        stream = self._realignment_stream() if during else None
        if during:
            self.stats["realign_steps"] = self.finetune_steps
            self.stats.update(realignment_provenance(self.encoder, self.realign, stream))
        first_epoch, first_step, epoch_losses = 0, 0, []
        if state is not None and phase.name in ("finetune", "finetuning"):
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if projection is not None:
                projection.load_state_dict(state["projection"])
            random_state.restore(state["rng"])
            first_epoch = phase.epoch + 1
            if phase.name == "finetuning":    # inside an epoch: its remaining batches, its losses so far
                first_step, epoch_losses = phase.step, list(state["epoch_losses"])
            if stream is not None:
                stream.skip(first_epoch * self.steps_per_epoch + first_step)

        def training_state() -> dict[str, Any]:
            return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    **({"projection": projection.state_dict()} if projection is not None else {})}

        # Tokens fed, per phase (real, and as padded into batches): in the stats, so a
        # checkpoint carries the counts of the steps it holds and a resumed run adds up the same.
        tokens = self.stats.setdefault("tokens", {})
        fed = tokens.setdefault("finetune", {"real": 0, "padded": 0})
        fed_realign = tokens.setdefault("realign", {"real": 0, "padded": 0})
        lengths = [len(feature["input_ids"]) for feature in self.features]
        # fp32: no autocast context at all (entering a disabled one still costs every step)
        autocast = self._autocast if self.autocast_dtype is not None else contextlib.nullcontext
        # the curves' step axis: the fine-tuning's optimizer steps, 1 .. finetune_steps
        curves = self.finetune_curves = self.curves.phase(
            "finetune", self.finetune_steps, first_epoch * self.steps_per_epoch + first_step)
        self.log(f"fine-tuning {spec.task} for {settings.epochs} epochs x {self.steps_per_epoch} steps"
                 + (f", realignment during (weight {self.realign.during_weight})" if during else "")
                 + (f", {settings.batching} batches" if settings.batching != DEFAULT_BATCHING else ""))
        started = time.perf_counter()
        model.train()
        for epoch in range(first_epoch, settings.epochs):
            # The epoch's batches depend on (seed, epoch) only: a resumed run sees the same ones.
            batches = epoch_batches(lengths, settings.batch_size, spec.seed, epoch, settings.batching)
            done_before = first_step if epoch == first_epoch else 0
            losses = epoch_losses if epoch == first_epoch else []
            # The step losses stay on the device until a checkpoint or the epoch's end reads
            # them: reading each one would wait for the step to finish (a GPU sync per step).
            step_losses = torch.zeros(len(batches), dtype=torch.float32, device=self.device)

            def epoch_losses_so_far(steps_done: int) -> list[float]:
                return losses + step_losses[done_before:steps_done].tolist()

            for step in range(done_before, len(batches)):
                indices = batches[step]
                sizes = [lengths[i] for i in indices]
                batch = to_device(self.task.collate([self.features[i] for i in indices],
                                                    self.tokenizer.pad_token_id), self.device)
                # from the trial's start to its first fine-tuning batch; kept across a resume
                if "first_finetune_step_s" not in self.timings:
                    self.timings["first_finetune_step_s"] = time.perf_counter() - self.started
                with autocast():
                    loss = self.task.loss(model(**batch), batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if stream is not None:
                    pairs = stream.next_batch()
                    # The realignment loss must not update the frozen blocks; the
                    # task loss above already put its gradient on them.
                    with frozen(self.encoder, frozen_names):
                        with autocast():
                            extra = realignment_loss(self.encoder, projection, pairs.to(self.device),
                                                     self.realign)
                        (self.realign.during_weight * extra).backward()
                    fed_realign["real"] += pairs.real_tokens
                    fed_realign["padded"] += pairs.padded_tokens
                norm = None
                if settings.clip_grad_norm is not None:   # the reference clips nothing
                    norm = torch.nn.utils.clip_grad_norm_(parameters, settings.clip_grad_norm)
                global_step = epoch * self.steps_per_epoch + step + 1
                # the learning rate this step uses (the scheduler's step below sets the next one)
                learning_rate = optimizer.param_groups[0]["lr"] if curves.due(global_step) else None
                optimizer.step()
                scheduler.step()
                step_losses[step] = loss.detach()
                real = sum(sizes)
                fed["real"] += real
                fed["padded"] += len(sizes) * max(sizes)
                self._progress("finetuning", step + 1, len(batches), epoch + 1, settings.epochs)
                curves.add(real + (pairs.real_tokens if stream is not None else 0), task=step_losses[step],
                           **({"realignment": extra} if stream is not None else {}))
                if learning_rate is not None:    # a logging step; its gradients are still there
                    curves.log(global_step, learning_rate, norm if norm is not None else grad_norm(parameters))
                if step + 1 < len(batches) and self.clock.due(global_step):
                    self.timings["finetune_s"] = (self.timings.get("finetune_s", 0.0)
                                                  + time.perf_counter() - started)
                    started = time.perf_counter()
                    checkpoint("finetuning", Phase("finetuning", epoch - 1, step + 1),
                               {**training_state(), "epoch_losses": epoch_losses_so_far(step + 1)},
                               {"finetune_step": epoch * self.steps_per_epoch + step + 1})
            losses = epoch_losses_so_far(len(batches))
            epoch_loss = sum(losses) / len(losses)
            self.stats["train_loss"] = epoch_loss
            self.timings["finetune_s"] = self.timings.get("finetune_s", 0.0) + time.perf_counter() - started
            started = time.perf_counter()
            self.log(f"epoch {epoch + 1}/{settings.epochs}: train loss {epoch_loss:.4f}")
            checkpoint("finetune", Phase("finetune", epoch), training_state(),
                       {"epoch_loss": epoch_loss, "training_iteration_epoch": epoch + 1})
        return model

    # -------------------------------------------------------------- evaluate
    def _autocast(self):
        """The training precision's autocast context (a no-op in fp32): fine-tuning, realignment
        during fine-tuning and evaluation all run under it."""
        return torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                              enabled=self.autocast_dtype is not None)

    def _evaluate(self, model, split: str = "test") -> dict[str, dict[str, float]]:
        """Metrics per language on ``split``'s data (``test``: ``data.eval``, English first)."""
        results = {}
        sources = self.spec.data["eval"] if split == "test" else self.spec.data.get(split, {})
        for language in (language_lists.SOURCE_LANGUAGE, *self.spec.languages):
            if language not in sources:
                continue
            examples = self.task.evaluation_examples(sources[language], language, self.settings, split)
            try:
                with self._autocast():
                    results[language] = self.task.evaluate(model, self.tokenizer, examples, self.settings,
                                                           self.device)
            except DataError as error:   # e.g. nothing to score: name the language and the split
                raise DataError(f"{language} ({split} data): {error}") from None
        return results

    def _result(self, evaluation: dict[str, dict[str, float]],
                validation: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
        targets = {language: evaluation[language] for language in self.spec.languages}
        metrics = self.task.definition.metrics
        average = {m: sum(targets[l][m] for l in targets) / len(targets) for m in metrics}
        return {
            "trial_id": self.spec.trial_id,
            "status": "completed",
            "spec": self.spec.to_dict(),
            "metrics": targets,
            "average": average,
            "english": evaluation[language_lists.SOURCE_LANGUAGE],
            **validation_result(validation or {}, self.spec.languages, metrics),
            "provenance": {
                "spec_key": self.spec.key,
                "seed": self.spec.seed,
                "versions": package_versions(),
                "device": str(self.device) + (f" ({torch.cuda.get_device_name()})"
                                              if self.device.type == "cuda" else ""),
                "threads": torch.get_num_threads(),
                "hostname": platform.node(),
                "pid": os.getpid(),
                "num_blocks": self.num_blocks,
                "finetune_steps": self.finetune_steps,
                "train_features": len(self.features),
                "timings": dict(self.timings),
                "acceleration": self.acceleration,
                "peak_rss_mb": peak_rss_mb(),
                **{k: v for k, v in self.stats.items()},
            },
        }


def validation_result(validation: dict[str, dict[str, float]], targets: Sequence[str],
                      metrics: Sequence[str]) -> dict[str, Any]:
    """The result's validation keys: per target language that has validation data, their
    mean (what a search selects on) and English's; none without validation data."""
    scored = {language: validation[language] for language in sorted(targets) if language in validation}
    result: dict[str, Any] = {}
    if scored:
        result["validation"] = scored
        result["validation_average"] = {m: sum(scores[m] for scores in scored.values()) / len(scored)
                                        for m in metrics}
        result["validation_languages"] = list(scored)
    if language_lists.SOURCE_LANGUAGE in validation:
        result["english_validation"] = validation[language_lists.SOURCE_LANGUAGE]
    return result


def run_trial(spec: TrialSpec, resume_from: Path | Sequence[Path] | None = None,
              checkpoint_root: Path | None = None, on_checkpoint: CheckpointCallback | None = None,
              log: Callable[[str], None] = print, policy: CheckpointPolicy | None = None,
              final_weights: Path | None = None, curves: Any = None,
              on_progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run one trial from a validated spec; see ``TrialRunner.run``. ``curves``: a
    ``trainables.training_curves.TrainingCurves`` the trial writes its TensorBoard curves to."""
    return TrialRunner(spec, log, curves, on_progress).run(resume_from, checkpoint_root, on_checkpoint, policy,
                                                           final_weights)
