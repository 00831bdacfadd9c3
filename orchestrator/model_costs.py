"""What a model costs to train: its size and its throughput on one GPU.

``alignfreeze plan`` turns optimizer steps into device-hours and disk with
these figures. The throughput of the paper's models is an ESTIMATE, not a
measurement: the FLOPs of a training sequence (6 x block parameters x
tokens, plus attention's 12 x blocks x tokens^2 x width) at a sustained 8
TFLOP/s, i.e. about 40% of an A100's 19.5 TFLOP/s fp32 peak (PyTorch's
default, TF32 matmuls off), at the paper's shapes: fine-tuning batches of 32
sequences of 96 sub-words, realignment batches of 16 sentence pairs of 96
sub-words a side (a pair costs two sequences). Batches are padded to their
longest sequence, most sentences are shorter than 96, and the optimizer
step is left out, so real runs differ both ways; bf16 autocast is
typically 2-3x faster. Measured figures replace them: ``--throughput
FILE``, a JSON or YAML mapping ``model: {finetune_seq_per_s: ...,
realign_pairs_per_s: ...}``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainables.errors import DataError, SpecError, short

SUSTAINED_FLOPS = 8e12     # fp32, about 40% of an A100's peak: see the module's docstring
SEQUENCE_LENGTH = 96       # the paper's fine-tuning and realignment length
BYTES_PER_PARAMETER = 4    # fp32 weights
ADAM_STATE_FACTOR = 3      # weights + Adam's two moments in a fine-tuning checkpoint
THROUGHPUT_KEYS = ("finetune_seq_per_s", "realign_pairs_per_s")


@dataclass(frozen=True)
class ModelShape:
    parameters: int          # the whole encoder (embeddings, blocks, pooler): a checkpoint's model
    stored_parameters: int   # without the pooler: what the realigned-encoder cache stores
    block_parameters: int    # the transformer blocks only: what the FLOPs scale with
    blocks: int
    hidden: int


# The paper's models (counted from their configs: BERT/DistilBERT with the
# mBERT vocabulary of 119,547, XLM-R's of 250,002; a pooler is 590,592).
_MBERT = ModelShape(177_853_440, 177_262_848, 85_054_464, 12, 768)
_DISTILMBERT = ModelShape(134_734_080, 134_734_080, 42_527_232, 6, 768)
_XLMR_BASE = ModelShape(278_043_648, 277_453_056, 85_054_464, 12, 768)
PAPER_MODEL_SHAPES: dict[str, ModelShape] = {
    "bert-base-multilingual-cased": _MBERT, "google-bert/bert-base-multilingual-cased": _MBERT,
    "distilbert-base-multilingual-cased": _DISTILMBERT,
    "distilbert/distilbert-base-multilingual-cased": _DISTILMBERT,
    "xlm-roberta-base": _XLMR_BASE, "FacebookAI/xlm-roberta-base": _XLMR_BASE,
}


@dataclass(frozen=True)
class Throughput:
    finetune_seq_per_s: float     # training sequences of 96 sub-words a second, batch 32
    realign_pairs_per_s: float    # sentence pairs of 96 sub-words a side a second, batch 16
    source: str                   # "estimate" or "measured (FILE)"


def training_flops(shape: ModelShape, length: int) -> float:
    """FLOPs of one training sequence (forward and backward) of ``length`` tokens."""
    return 6 * shape.block_parameters * length + 12 * shape.blocks * length ** 2 * shape.hidden


def inference_flops(shape: ModelShape, length: int) -> float:
    """FLOPs of one evaluation sequence (forward only) of ``length`` tokens."""
    return 2 * shape.block_parameters * length + 4 * shape.blocks * length ** 2 * shape.hidden


def estimated_throughput(shape: ModelShape) -> Throughput:
    per_sequence = training_flops(shape, SEQUENCE_LENGTH)
    return Throughput(SUSTAINED_FLOPS / per_sequence, SUSTAINED_FLOPS / (2 * per_sequence), "estimate")


def evaluation_seq_per_s(throughput: Throughput, shape: ModelShape, length: int) -> float:
    """Evaluation sequences a second, scaled from the fine-tuning figure by the FLOPs ratio."""
    return throughput.finetune_seq_per_s * training_flops(shape, SEQUENCE_LENGTH) / inference_flops(shape, length)


def model_shape(name: str) -> ModelShape:
    """The paper's models from the table; any other from its config (no weights loaded)."""
    if name in PAPER_MODEL_SHAPES:
        return PAPER_MODEL_SHAPES[name]
    import torch
    from transformers import AutoConfig, AutoModel

    from trainables.models import BLOCK_CONTAINERS, quiet_transformers, resolve_model_location

    quiet_transformers()
    try:
        config = AutoConfig.from_pretrained(resolve_model_location(name), trust_remote_code=False)
        with torch.device("meta"):      # shapes only: no memory, no initialisation
            model = AutoModel.from_config(config)
    except (OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SpecError(f"plan: cannot read the config of model {name!r}: {first[:200]}") from None
    prefixes = tuple(f"{container}." for container in BLOCK_CONTAINERS)
    blocks = int(getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", 0))
    hidden = int(getattr(config, "hidden_size", None) or getattr(config, "dim", 0))
    return ModelShape(sum(p.numel() for p in model.parameters()),
                      sum(p.numel() for n, p in model.named_parameters() if not n.startswith("pooler.")),
                      sum(p.numel() for n, p in model.named_parameters() if n.startswith(prefixes)),
                      blocks, hidden)


def load_throughput_file(path: str | Path) -> dict[str, Throughput]:
    """Measured throughput per model from a JSON or YAML file; a bad file is a one-line DataError."""
    from orchestrator.safe_yaml import MAX_FILE_BYTES, load_yaml_file

    path = Path(path)
    if path.suffix.lower() != ".json":
        raw: Any = load_yaml_file(path, "throughput file")   # size, alias and duplicate-key caps
    else:
        if not path.is_file():
            raise DataError("throughput file not found", path)
        if path.stat().st_size > MAX_FILE_BYTES:
            raise DataError(f"throughput file is {path.stat().st_size:,} bytes; the limit is {MAX_FILE_BYTES:,}", path)
        try:
            raw = json.loads(path.read_bytes().decode("utf-8-sig"), parse_constant=_no_constant)
        except UnicodeDecodeError:
            raise DataError("not a UTF-8 text file", path) from None
        except json.JSONDecodeError as error:
            raise DataError(f"invalid JSON: {error.msg}", path, error.lineno) from None
        except (ValueError, RecursionError) as error:
            raise DataError(f"invalid JSON: {str(error)[:80] or 'nested too deep'}", path) from None
    if not isinstance(raw, dict) or not raw:
        raise DataError("expected a mapping of model -> {finetune_seq_per_s, realign_pairs_per_s}", path)
    figures = {}
    for model, values in raw.items():
        if not isinstance(values, dict):
            raise DataError(f"model {short(model)}: expected a mapping with {' and '.join(THROUGHPUT_KEYS)}", path)
        unknown = sorted(map(str, set(values) - set(THROUGHPUT_KEYS)))
        if unknown:
            raise DataError(f"model {short(model)}: unknown key {short(unknown[0])} (expected "
                            f"{' and '.join(THROUGHPUT_KEYS)})", path)
        for key in THROUGHPUT_KEYS:
            value = values.get(key)
            if value is None:
                raise DataError(f"model {short(model)}: {key} is missing", path)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise DataError(f"model {short(model)}: {key} must be a positive number, got {short(value)}", path)
        figures[str(model)] = Throughput(float(values["finetune_seq_per_s"]),
                                         float(values["realign_pairs_per_s"]), f"measured ({path.name})")
    return figures


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
