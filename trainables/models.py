"""Encoders and tokenizers: Hub ids, local directories and the built-in tiny models.

A layer here is a transformer block. Two layouts are supported: BERT
(``encoder.layer.<i>``: mBERT, XLM-R) and DistilBERT
(``transformer.layer.<i>``); the embeddings are ``embeddings.*``. Any
other layout is refused with a clear error rather than guessed. A local
model folder's ``config.json`` must name one of ``SUPPORTED_MODEL_TYPES``
(checked with its weights and tokenizer files by ``model_folders`` when a
grid is parsed, before any trial).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from trainables.errors import SpecError

BLOCK_CONTAINERS = ("encoder.layer", "transformer.layer")

# config.model_type of the encoders with one of those layouts whose tokenizer files are known
# (model_folders.MODEL_VOCABULARY_FILES); a local folder of another type is refused before a trial.
SUPPORTED_MODEL_TYPES = ("bert", "camembert", "distilbert", "roberta", "xlm-roberta")


@dataclass(frozen=True)
class EncoderLayout:
    block_prefix: str          # "encoder.layer" or "transformer.layer"
    num_blocks: int
    embeddings_prefix: str = "embeddings"

    def block_of(self, parameter_name: str) -> int | None:
        """Block index of a parameter (``None`` outside the blocks)."""
        prefix = self.block_prefix + "."
        if not parameter_name.startswith(prefix):
            return None
        return int(parameter_name[len(prefix):].split(".", 1)[0])

    def is_embedding(self, parameter_name: str) -> bool:
        return parameter_name.startswith(self.embeddings_prefix + ".")


def encoder_layout(encoder: nn.Module) -> EncoderLayout:
    """Where the blocks of ``encoder`` are; an unknown layout is a SpecError."""
    modules = dict(encoder.named_modules())
    for prefix in BLOCK_CONTAINERS:
        blocks = modules.get(prefix)
        if isinstance(blocks, nn.ModuleList) and "embeddings" in modules:
            return EncoderLayout(prefix, len(blocks))
    raise SpecError(f"unsupported encoder layout ({type(encoder).__name__}): expected blocks at "
                    f"{' or '.join(BLOCK_CONTAINERS)} and an 'embeddings' module")


def is_xlmr(encoder: nn.Module) -> bool:
    return getattr(getattr(encoder, "config", None), "model_type", "") == "xlm-roberta"


def hidden_size(encoder: nn.Module) -> int:
    config = encoder.config
    return getattr(config, "hidden_size", None) or config.dim


def dropout_rate(encoder: nn.Module) -> float:
    """Dropout before a new head, as the Hugging Face token-classification heads take it.

    BERT / XLM-R: ``classifier_dropout`` when set, else ``hidden_dropout_prob``;
    DistilBERT: ``dropout``. (Sentence-pair heads: see ``tasks.nli``.)
    """
    config = encoder.config
    for name in ("classifier_dropout", "hidden_dropout_prob", "dropout"):
        value = getattr(config, name, None)
        if value is not None:
            return float(value)
    return 0.1


def initializer_range(encoder: nn.Module) -> float:
    return float(getattr(encoder.config, "initializer_range", None) or 0.02)


def initialise_new_head(head: nn.Module, std: float) -> nn.Module:
    """Initialise a new head's linear layers as Hugging Face does a head absent from a checkpoint.

    Weights from N(0, std) (``initializer_range``), biases zero: what
    ``*ForTokenClassification`` / ``*ForSequenceClassification`` /
    ``*ForQuestionAnswering`` give their new layers, so the reference's
    heads start from the same distribution.
    """
    for module in head.modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return head


def resolve_model_location(name: str) -> str:
    """A local directory for built-in and local models, the Hub id otherwise."""
    from trainables.tiny_models import TINY_MODELS, tiny_model_dir

    if name in TINY_MODELS:
        return str(tiny_model_dir(name))
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    return name


def load_encoder(name: str, pooler: bool = False) -> tuple[nn.Module, Any]:
    """(encoder without task head, fast tokenizer) for a model name, in train mode.

    ``pooler``: keep a BERT model's pretrained pooler (dense + tanh on
    [CLS]), which ``BertForSequenceClassification`` classifies from; a
    checkpoint without its weights is refused rather than given a random
    one. Otherwise no pooler is loaded: token and span heads read the hidden
    states, and the XLM-R and DistilBERT sequence classifiers use none.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    quiet_transformers()
    location = resolve_model_location(name)
    try:
        config = AutoConfig.from_pretrained(location, trust_remote_code=False)
        keep_pooler = pooler and config.model_type == "bert"
        extra = ({"add_pooling_layer": keep_pooler} if config.model_type in ("bert", "xlm-roberta") else {})
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=False)
        encoder, loading = _pretrained_with_sdpa(AutoModel, location, extra)
    except (OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SpecError(f"cannot load model {name!r}: {first[:200]}") from None
    if keep_pooler and any(key.startswith("pooler.") for key in loading.get("missing_keys", ())):
        raise SpecError(f"model {name!r} has no pretrained pooler weights (pooler.dense.*), which the "
                        f"sentence-pair head of a BERT model classifies from")
    encoder_layout(encoder)   # refuse unknown layouts before any training
    if not getattr(tokenizer, "is_fast", False):
        raise SpecError(f"model {name!r} has no fast tokenizer (needed for word alignment)")
    encoder.train()   # from_pretrained returns eval mode
    return encoder, tokenizer


# PyTorch's fused scaled-dot-product attention (flash / memory-efficient kernels on
# CUDA): what transformers picks by default for BERT, DistilBERT and XLM-R, asked
# for by name so that a change of that default cannot slow trials down unnoticed.
ATTENTION = "sdpa"


def _pretrained_with_sdpa(auto_class: Any, location: str, extra: dict[str, Any]) -> tuple[nn.Module, Any]:
    """(model, loading info) with ``ATTENTION``; an architecture without it loads with its default."""
    try:
        return auto_class.from_pretrained(location, trust_remote_code=False, output_loading_info=True,
                                          attn_implementation=ATTENTION, **extra)
    except ValueError as error:
        if not any(word in str(error) for word in (ATTENTION, "scaled_dot_product_attention")):
            raise
        return auto_class.from_pretrained(location, trust_remote_code=False, output_loading_info=True, **extra)


def attention_implementation(encoder: nn.Module) -> str:
    """The attention kernels ``encoder`` runs ("sdpa", "eager", ...), as transformers resolved them."""
    return str(getattr(getattr(encoder, "config", None), "_attn_implementation", None) or "unknown")


def quiet_transformers() -> None:
    """No progress bars or load reports in trial logs."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


# Blocks of the paper's Hub models, for validating a grid where their configs
# cannot be fetched (no network, nothing cached).
PAPER_MODEL_BLOCKS: dict[str, int] = {
    "bert-base-multilingual-cased": 12,
    "google-bert/bert-base-multilingual-cased": 12,
    "distilbert-base-multilingual-cased": 6,
    "distilbert/distilbert-base-multilingual-cased": 6,
    "xlm-roberta-base": 12,
    "FacebookAI/xlm-roberta-base": 12,
}


@functools.lru_cache(maxsize=None)
def _config(location: str) -> Any:
    """``location``'s config, or the error reading it: read once a process (a Hub id retries for
    a while when the network is down; ``model_num_blocks`` and ``model_max_tokens`` share it)."""
    from transformers import AutoConfig

    quiet_transformers()
    try:
        return AutoConfig.from_pretrained(location, trust_remote_code=False)
    except (OSError, ValueError) as error:
        return error


def model_max_tokens(name: str) -> int | None:
    """The longest input ``name`` takes, in sub-word tokens (its position embeddings; XLM-R keeps
    two for padding), from its config; None when the config cannot be read here (a Hub id offline)."""
    config = _config(resolve_model_location(name))
    if isinstance(config, Exception):
        return None
    positions = getattr(config, "max_position_embeddings", None)
    if not positions:
        return None
    return int(positions) - (2 if getattr(config, "model_type", "") in ("xlm-roberta", "roberta", "camembert")
                             else 0)


def model_num_blocks(name: str) -> int:
    """Number of transformer blocks, from the model's config only (no weights loaded).

    A local model folder is checked first (``model_folders``): config,
    weights and tokenizer files, so that a grid on a broken folder fails
    before its first trial.
    """
    from trainables.model_folders import check_model_folder
    from trainables.tiny_models import TINY_MODELS

    location = resolve_model_location(name)
    if name not in TINY_MODELS:
        check_model_folder(name, location)
    config = _config(location)
    if isinstance(config, Exception):
        error = config
        if name in PAPER_MODEL_BLOCKS:     # a dry run of the paper's grid validates offline
            return PAPER_MODEL_BLOCKS[name]
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SpecError(f"unknown model {name!r}: {first[:200]}") from None
    blocks = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", None)
    if not blocks:
        raise SpecError(f"model {name!r}: cannot tell its number of blocks from its config")
    return int(blocks)
