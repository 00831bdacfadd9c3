"""The declared schema of the settings a trial reads: each key's type, range and meaning.

One declaration per key. From it come the keys a section accepts, every
value's check (type and range, before anything starts: the experiment file
is parsed in ``orchestrator.experiment``, a spec is checked again in
``trial_spec.validate``), the one-line error (``finetune.epochs must be an
integer from 1 to 1000, got 0``) and the README's key reference
(``alignfreeze keys``). Defaults stay with the code that uses them (the
task's ``defaults``, ``RealignSettings``, each aligner's settings); the
reference reads them from there.

A value is never coerced: ``true`` is not 1, ``"false"`` is not a boolean,
``"abc"`` is not a number, and a number must be finite. Ranges are the
values that make sense, not only those that do not crash: a warm-up ratio
above 1, a dropout of 1, an epoch count of 10^12 are refused.

Choices name the tuple that declares them where they are used
(``module:NAME``), read when a value is checked, so that this module stays
free of the heavy imports those modules bring.
"""

from __future__ import annotations

import importlib
import math
from difflib import get_close_matches
from dataclasses import dataclass
from typing import Any, Iterable

from trainables.errors import SpecError, short, unknown_name

# What "large" means in a range: beyond it a value is a typo, not a setting.
MAX_BATCH = 65_536
MAX_LENGTH = 8_192              # sub-word tokens (the paper's models take 512)
MAX_EPOCHS = 1_000
MAX_STEPS = 10**9
MAX_SEED = 2**32 - 1            # numpy's generators take seeds below 2**32


@dataclass(frozen=True)
class Setting:
    """One key: its type (``integer``, ``number``, ``boolean``, ``choice``, ``string``, or
    ``structure`` for a value its section's parser reads itself), its range, and what it does."""
    key: str
    type: str
    doc: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False          # low itself refused (a learning rate of 0)
    high_open: bool = False
    choices: str | tuple[str, ...] = ()    # the values, or "module:NAME" of the tuple that declares them
    null: str | None = None         # what null means, when null is allowed
    words: tuple[str, ...] = ()     # strings also taken by a number setting ("auto", "penultimate")
    hints: tuple[tuple[Any, str], ...] = ()   # (a wrong value, what to say about it)

    def allowed_choices(self) -> tuple[str, ...]:
        if isinstance(self.choices, str):
            module, _, name = self.choices.partition(":")
            return tuple(getattr(importlib.import_module(module), name))
        return self.choices

    def expected(self) -> str:
        """What the key takes, in words (the error messages and the reference say the same)."""
        if self.type == "boolean":
            text = "true or false"
        elif self.type == "choice":
            text = "one of " + ", ".join(self.allowed_choices())
        elif self.type in ("integer", "number"):
            text = ("an integer" if self.type == "integer" else "a number") + self._range()
        elif self.type == "string":
            text = "a string"
        else:
            text = self.doc
        if self.words:
            text = ", ".join(f"'{word}'" for word in self.words) + " or " + text
        if self.null is not None:
            text += f", or null ({self.null})"
        return text

    def _range(self) -> str:
        def number(value: float) -> str:
            return str(int(value)) if float(value).is_integer() else f"{value:g}"
        if self.low is not None and self.high is not None and not (self.low_open or self.high_open):
            return f" from {number(self.low)} to {number(self.high)}"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {number(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {number(self.high)}")
        return (" " + " and ".join(parts)) if parts else ""

    def check(self, value: Any, where: str) -> None:
        """Raise a one-line SpecError naming ``where`` (``finetune.epochs``) unless ``value`` fits."""
        if self.type == "structure":
            return                                  # read by its section's parser
        if value is None and self.null is not None:
            return
        if isinstance(value, str) and value in self.words:
            return
        if self.type == "choice":
            if not (isinstance(value, str) and value in self.allowed_choices()):
                raise self._wrong(value, where)
        elif not self._fits(value):
            raise self._wrong(value, where)

    def _fits(self, value: Any) -> bool:
        if self.type == "boolean":
            return isinstance(value, bool)
        if self.type == "string":
            return isinstance(value, str) and value.strip() != ""
        if isinstance(value, bool):                 # a YAML true is not the number 1
            return False
        if self.type == "integer" and not isinstance(value, int):
            return False
        if self.type == "number" and not (isinstance(value, (int, float)) and math.isfinite(value)):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))

    def _wrong(self, value: Any, where: str) -> SpecError:
        return _wrong(self, value, where)


def _wrong(setting: Setting, value: Any, where: str) -> SpecError:
    hint = ""
    if isinstance(value, str) and setting.type in ("integer", "number"):
        hint = " (a number, not a string: remove the quotes)" if _numeric(value) else ""
    if isinstance(value, bool) and setting.type != "boolean":
        hint = " (YAML reads yes, no, on, off, true and false as booleans)"
    if isinstance(value, str) and setting.type == "choice":
        close = get_close_matches(value[:200], setting.allowed_choices(), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
    for wrong, text in setting.hints:
        if type(value) is type(wrong) and value == wrong:
            hint = f" ({text})"
    return SpecError(f"{where} must be {setting.expected()}, got {short(value)}{hint}")


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def section(settings: Iterable[Setting]) -> dict[str, Setting]:
    return {setting.key: setting for setting in settings}


def check_section(values: Any, declared: dict[str, Setting], where: str,
                  extra_keys: Iterable[str] = ()) -> dict[str, Any]:
    """``values`` (a mapping) with every key declared (or among ``extra_keys``) and every
    declared value in range; returns it. ``where`` prefixes the messages (``finetune.pos``;
    empty at the top level)."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise SpecError(f"{where} must be a mapping, got {short(values)}")
    allowed = (*declared, *extra_keys)
    for key, value in values.items():
        if key not in allowed:
            raise unknown_name(f"key in {where or 'experiment'}", key, allowed)
        if key in declared:
            declared[key].check(value, f"{where}.{key}" if where else str(key))
    return values


SEED = Setting("seeds", "integer", "random seeds: one trial per seed", 0, MAX_SEED)

# ---------------------------------------------------------------- finetune:
FINETUNE = section([
    Setting("batch_size", "integer", "training examples per optimizer step", 1, MAX_BATCH),
    Setting("learning_rate", "number", "peak learning rate of AdamW, linear warm-up and decay "
            "(XLM-R's default: 7.5e-6)",
            0, 1, low_open=True),
    Setting("epochs", "integer", "passes over the training set", 1, MAX_EPOCHS),
    Setting("max_length", "integer", "sub-word tokens of a training window, special tokens included",
            8, MAX_LENGTH),
    Setting("eval_max_length", "integer", "sub-word tokens of an evaluation window", 8, MAX_LENGTH),
    Setting("warmup_ratio", "number", "share of the optimizer steps spent warming the learning rate up", 0, 1),
    Setting("weight_decay", "number", "AdamW's decoupled weight decay", 0, 1),
    Setting("eval_batch_size", "integer", "examples per evaluation batch", 1, MAX_BATCH),
    Setting("max_train_examples", "integer", "train on the first N examples", 1, None, null="all"),
    Setting("max_eval_examples", "integer", "score the first N examples of each language", 1, None,
            null="all"),
    Setting("doc_stride", "integer", "QA: sub-word overlap of consecutive training windows", 1, MAX_LENGTH),
    Setting("eval_doc_stride", "integer", "QA: overlap of consecutive evaluation windows", 1, MAX_LENGTH),
    Setting("max_answer_length", "integer", "QA: longest answer span predicted, in sub-words", 1, MAX_LENGTH),
    Setting("n_best", "integer", "QA: start and end candidates kept per window", 1, 1_000),
    Setting("span_selection", "choice", "QA: how the answer span is chosen",
            choices="trainables.tasks.qa:SPAN_SELECTIONS"),
    Setting("dropout", "number", "dropout of the encoder and the head", 0, 1, high_open=True,
            null="the architecture's own rate"),
    Setting("clip_grad_norm", "number", "clip the gradient's norm to this", 0, None, low_open=True,
            null="no clipping, as the reference"),
    Setting("zh_segmentation", "choice", "NER: how Chinese WikiANN sentences are re-segmented into words",
            choices="trainables.tasks.zh_resegmentation:SEGMENTATIONS"),
    Setting("batching", "choice", "random batches (the reference's) or batches of similar length",
            choices="trainables.length_grouping:BATCHINGS"),
])

# ------------------------------------------------------------- realignment:
# Keys read by realignment's parser (languages and data locations).
REALIGNMENT_STRUCTURE = section([
    Setting("languages", "structure", "languages realigned with English, in interleaving order "
            "(default: the paper's list)"),
    Setting("parallel", "structure", "parallel data: hub (OPUS-100), a location for every language, "
            "or a mapping language -> location"),
    Setting("dictionaries", "structure", "dico: muse (fetched) or a mapping language -> dictionary file"),
    Setting("alignments", "structure", "pharaoh: a mapping language -> alignment file"),
    Setting("aligner_settings", "structure", "settings of the grid's aligners (see below)"),
])
REALIGNMENT = section([
    Setting("steps", "integer", "realignment optimizer steps", 1, MAX_STEPS,
            words=("auto",)),
    Setting("learning_rate", "number", "realignment learning rate (XLM-R's default: 7.5e-6)", 0, 1,
            low_open=True),
    Setting("batch_size", "integer", "sentence pairs per realignment step", 1, MAX_BATCH),
    Setting("temperature", "number", "temperature of the contrastive loss", 0, 100, low_open=True),
    Setting("layer", "integer", "hidden state realigned (0: the embeddings)", 0, 1_000,
            words=("penultimate", "last"), hints=((-1, "the reference's -1 is 'penultimate'"),)),
    Setting("projection", "boolean", "realign through a projection head (the reference's)"),
    Setting("projection_dim", "integer", "width of the projection head", 1, MAX_BATCH),
    Setting("max_length", "integer", "sub-words per side of a pair, special tokens included", 8, MAX_LENGTH),
    Setting("during_weight", "number", "'during' schedule: weight of the realignment loss", 0, 1_000),
    Setting("max_pairs", "integer", "sentence pairs read per language", 1, None, null="all"),
    Setting("pretokenizer", "choice", "how sentences are cut into words before aligning",
            choices="trainables.realignment.pretokenization:PRETOKENIZERS"),
    Setting("loss_reduction", "choice", "mean over the queries (reference) or sum over the pairs",
            choices="trainables.realignment.contrastive_loss:LOSS_REDUCTIONS"),
    Setting("word_representation", "choice", "a word's state: its first sub-word (paper) or their sum",
            choices="trainables.realignment.realigner:WORD_REPRESENTATIONS"),
    Setting("interleaving", "choice", "when a pass over the languages ends",
            choices="trainables.realignment.stream:INTERLEAVINGS"),
    Setting("batching", "choice", "pairs in stream order (the reference's) or grouped by length",
            choices="trainables.length_grouping:BATCHINGS"),
])

# ------------------------------------------------ realignment.aligner_settings:
ALIGNER_SETTINGS: dict[str, dict[str, Setting]] = {
    "dico": section([
        Setting("symmetric", "boolean", "read each dictionary entry both ways (the reference as it ran)"),
        Setting("lowercase_fallback", "boolean", "look a word up lower-cased when it is missing"),
    ]),
    "pharaoh": {},
    "eflomal": section([
        Setting("symmetrisation", "choice", "how the two directions' links are combined",
                choices="trainables.realignment.eflomal_aligner:SYMMETRISATIONS"),
        Setting("model", "integer", "1 = IBM1, 2 = + HMM, 3 = + fertility", 1, 3),
        Setting("samplers", "integer", "independent samplers averaged", 1, 64),
        Setting("iterations", "number", "factor on eflomal's iteration counts", 0, 100, low_open=True),
        Setting("null_prior", "number", "prior probability of a null link", 0, 1, low_open=True,
                high_open=True),
        Setting("max_pairs", "integer", "sentence pairs eflomal is trained on, per corpus", 1, None),
    ]),
    "simalign": section([
        Setting("layer", "integer", "hidden state whose similarities align", 0, 1_000,
                null="the middle of the model"),
        Setting("word_vector", "choice", "a word's vector from its sub-words",
                choices="trainables.realignment.similarity_aligner:WORD_VECTORS"),
        Setting("batch_size", "integer", "sentence pairs per forward pass", 1, MAX_BATCH),
    ]),
}


def check_aligner_settings(values: Any, aligners: Iterable[str], where: str) -> dict[str, Any]:
    """``aligner_settings`` shared by the grid's ``aligners``: each key must belong to one
    of them, and its value must fit every one of them that has it."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise SpecError(f"{where} must be a mapping, got {short(values)}")
    aligners = [a for a in aligners if a in ALIGNER_SETTINGS]
    known = {key: [a for a in aligners if key in ALIGNER_SETTINGS[a]]
             for key in dict.fromkeys(k for a in aligners for k in ALIGNER_SETTINGS[a])}
    for key, value in values.items():
        if key not in known:
            raise unknown_name(f"setting of aligner {'/'.join(aligners) or 'none'} in {where}", key, known)
        for aligner in known[key]:
            ALIGNER_SETTINGS[aligner][key].check(value, f"{where}.{key}")
    return values


# ---------------------------------------------------------------- checkpoint:
CHECKPOINT = section([
    Setting("every_steps", "integer", "also checkpoint every N optimizer steps of a phase", 1, None,
            null="by time only"),
    Setting("every_minutes", "number", "checkpoint M minutes after the last one", 0, None, low_open=True,
            null="never by time"),
    Setting("keep", "choice", "what a finished trial keeps: nothing, its fine-tuned weights, everything",
            choices="trainables.checkpoint_policy:KEEP_CHOICES"),
])
