"""A local model folder checked before any trial: config, weights and tokenizer files present and sound.

``models.model_num_blocks`` (which every grid calls per model at parse
time) calls ``check_model_folder`` for a name that is a local directory,
so that a folder a trial could not load fails ``run FILE --dry-run`` in
one line naming the folder and what is missing. Checked, without loading
a weight or touching the network:

- ``config.json``: a JSON object whose ``model_type`` is one of
  ``models.SUPPORTED_MODEL_TYPES``;
- the weights transformers would load, in its order of preference:
  ``model.safetensors``, ``model.safetensors.index.json``,
  ``pytorch_model.bin``, ``pytorch_model.bin.index.json``; a safetensors
  file's header is parsed and its size must be what the header
  describes (a truncated copy fails here, not in a trial); a zip-format
  ``.bin`` must have its central directory (its end); every shard an
  index names must be present (and sound);
- a tokenizer transformers builds a fast tokenizer from:
  ``tokenizer.json`` (parsed by ``tokenizers``), or the model type's
  vocabulary files (``MODEL_VOCABULARY_FILES``; a SentencePiece model
  only with the ``sentencepiece`` package installed). Without either,
  transformers 5 silently builds a tokenizer of 5 special tokens.

Hub ids and the built-in tiny models are not checked here (no network;
the tiny models are built by this tool). A name written as a path
(``/``, ``./``, ``../``, ``~``) that is no directory is refused as a
missing folder rather than looked up on the Hub.
"""

from __future__ import annotations

import importlib.util
import json
import zipfile
from pathlib import Path
from typing import Any

from trainables.errors import DataError

# The files of a tokenizer transformers can build a fast tokenizer from without tokenizer.json.
MODEL_VOCABULARY_FILES: dict[str, tuple[str, ...]] = {
    "bert": ("vocab.txt",),
    "distilbert": ("vocab.txt",),
    "roberta": ("vocab.json", "merges.txt"),
    "camembert": ("sentencepiece.bpe.model",),
    "xlm-roberta": ("sentencepiece.bpe.model",),
}

# transformers' order of preference for a local folder (modeling_utils: safetensors first).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")

# A safetensors header larger than this is not a header (safetensors itself caps it at 100 MB).
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024

PATH_PREFIXES = ("/", "./", "../", "~")

# folders found sound in this process, by their files' (name, size, mtime): a grid validates
# each trial's spec, and a trial its model, more than once
_SOUND: set[tuple[Any, ...]] = set()


def check_model_folder(name: str, location: str) -> None:
    """Raise a one-line DataError naming the folder if ``location`` (resolved from ``name``)
    is a model folder a trial could not load; do nothing for a Hub id."""
    from trainables.models import SUPPORTED_MODEL_TYPES

    folder = Path(location)
    if not folder.is_dir():
        shown = name if len(name) <= 80 else name[:77] + "..."
        if Path(name).expanduser().exists():
            raise DataError("a model must be a folder (config.json, weights, tokenizer), not a file", shown)
        if name.startswith(PATH_PREFIXES):
            raise DataError("model folder not found", shown)
        return     # a Hub id
    try:
        stamp = (str(folder.resolve()), tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                                                      for p in folder.iterdir() if p.is_file())))
    except OSError as error:
        raise DataError(f"cannot read model folder ({error.strerror or error})", folder) from None
    if stamp in _SOUND:
        return
    config = _json_object(folder / "config.json", "config.json", folder)
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        shown = "no model_type" if model_type is None else f"model_type {str(model_type)[:40]!r}"
        raise DataError(f"config.json has {shown}; supported: {', '.join(SUPPORTED_MODEL_TYPES)}", folder)
    _check_weights(folder)
    _check_tokenizer(folder, model_type)
    _SOUND.add(stamp)


def _json_object(path: Path, what: str, folder: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"model folder without {what}", folder)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataError(f"{what} is not UTF-8 text", folder) from None
    except json.JSONDecodeError as error:
        raise DataError(f"{what} is not valid JSON (line {error.lineno}: {error.msg})", folder) from None
    except OSError as error:
        raise DataError(f"cannot read {what} ({error.strerror or error})", folder) from None
    if not isinstance(value, dict):
        raise DataError(f"{what} is not a JSON object", folder)
    return value


def _check_weights(folder: Path) -> None:
    present = [name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not present:
        raise DataError(f"model folder without weights: expected {WEIGHT_FILES[0]} or {WEIGHT_FILES[2]} "
                        f"(or a sharded index, {WEIGHT_FILES[1]})", folder)
    chosen = present[0]          # what transformers loads
    if chosen.endswith(".index.json"):
        index = _json_object(folder / chosen, chosen, folder)
        weight_map = index.get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise DataError(f"{chosen} has no weight_map", folder)
        for shard in sorted(set(map(str, weight_map.values()))):
            path = folder / shard
            if Path(shard).is_absolute() or ".." in Path(shard).parts or not path.is_file():
                raise DataError(f"shard {shard[:80]!r} named by {chosen} is missing", folder)
            _check_weight_file(path, folder)
    else:
        _check_weight_file(folder / chosen, folder)


def _check_weight_file(path: Path, folder: Path) -> None:
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path.name} is empty", folder)
    if path.suffix == ".safetensors":
        _check_safetensors(path, size, folder)
        return
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic == b"PK\x03\x04":      # torch's zip format (the legacy pickle format is not checked)
        try:
            with zipfile.ZipFile(path):
                pass
        except (zipfile.BadZipFile, OSError):
            raise DataError(f"{path.name} is truncated or damaged (its zip directory cannot be read)",
                            folder) from None


def _check_safetensors(path: Path, size: int, folder: Path) -> None:
    """The header parsed; the tensors it describes must end exactly where the file ends."""
    with path.open("rb") as handle:
        head = handle.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if length < 2 or length > MAX_SAFETENSORS_HEADER or 8 + length > size:
            raise DataError(f"{path.name} is not a safetensors file, or is truncated (no complete header)",
                            folder)
        try:
            header = json.loads(handle.read(length).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            header = None
    if not isinstance(header, dict):
        raise DataError(f"{path.name} is not a safetensors file (its header is not a JSON object)", folder)
    try:
        end = max((int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"),
                  default=0)
    except (TypeError, KeyError, IndexError, ValueError):
        raise DataError(f"{path.name} is not a safetensors file (a tensor without data_offsets)", folder) \
            from None
    expected = 8 + length + end
    if expected != size:
        state = "truncated" if size < expected else "damaged"
        raise DataError(f"{path.name} is {state}: {size} bytes, its header describes {expected}", folder)


def _check_tokenizer(folder: Path, model_type: str) -> None:
    tokenizer_file = folder / "tokenizer.json"
    if tokenizer_file.is_file():
        from tokenizers import Tokenizer

        try:
            Tokenizer.from_file(str(tokenizer_file))
        except Exception as error:   # tokenizers raises its own Exception type for any bad file
            first = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
            raise DataError(f"tokenizer.json cannot be read: {first}", folder) from None
    else:
        needed = MODEL_VOCABULARY_FILES[model_type]
        missing = [name for name in needed if not (folder / name).is_file()]
        if missing:
            raise DataError(f"model folder without a tokenizer: expected tokenizer.json (or "
                            f"{' + '.join(needed)} for {model_type})", folder)
        if any(name.endswith(".model") for name in needed) and importlib.util.find_spec("sentencepiece") is None:
            # transformers converts a SentencePiece model only with the sentencepiece package
            raise DataError(f"model folder without tokenizer.json: its {needed[0]} needs the 'sentencepiece' "
                            f"package, which is not installed", folder)
    for name in ("tokenizer_config.json", "special_tokens_map.json"):   # read by AutoTokenizer when present
        if (folder / name).is_file():
            _json_object(folder / name, name, folder)
