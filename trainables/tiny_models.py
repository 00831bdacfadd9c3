"""Built-in tiny models for the demo and the tests.

Built from config with a fixed seed and saved once under the cache (a
locked, atomic build), then loaded like any local model directory.

- ``tiny-mbert``: BERT layout, 4 blocks of width 128, the real mBERT
  WordPiece vocabulary (119,547 entries, cased), and a pooler (which the
  sentence-pair head of a BERT model reads, as from mBERT's checkpoint).
- ``tiny-distilmbert``: DistilBERT layout, 2 blocks (half of tiny-mbert),
  same vocabulary.
- ``tiny-xlmr``: XLM-R layout, 4 blocks of width 128, a Unigram
  (SentencePiece-style) tokenizer trained deterministically on the
  bundled multilingual text.
"""

from __future__ import annotations

import os
from pathlib import Path

from trainables.artifacts import cached_directory
from trainables.bundled import bundled_path

MBERT_VOCAB_SIZE = 119_547
TINY_SEED = 1234
# Bump a model's version when its definition below changes: the cache key
# follows, so an old cached build is never loaded in its place.
TINY_VERSIONS = {"tiny-mbert": "v3",        # v3: saved with a pooler, as mBERT is
                 "tiny-distilmbert": "v2", "tiny-xlmr": "v2"}
TINY_MODELS = ("tiny-mbert", "tiny-distilmbert", "tiny-xlmr")
XLMR_VOCAB_SIZE = 8000

_WIDTH = dict(hidden_size=128, num_attention_heads=4, intermediate_size=256)


def tiny_model_dir(name: str) -> Path:
    if name not in TINY_MODELS:
        raise ValueError(f"not a tiny model: {name}")
    builders = {"tiny-mbert": _build_tiny_mbert, "tiny-distilmbert": _build_tiny_distilmbert,
                "tiny-xlmr": _build_tiny_xlmr}
    return cached_directory("tiny-models", f"{name}-{TINY_VERSIONS[name]}", builders[name])


def mbert_tokenizer():
    """The cased mBERT WordPiece tokenizer from the bundled vocabulary.

    ``vocab=`` (not ``vocab_file=``) and ``do_lower_case=False``: the other
    spellings silently give a 5-token or a lowercasing tokenizer.
    """
    from transformers import BertTokenizer

    path = bundled_path("vocab/bert-base-multilingual-cased/vocab.txt")
    tokenizer = BertTokenizer(vocab=str(path), do_lower_case=False, strip_accents=False,
                              tokenize_chinese_chars=True)
    if len(tokenizer) != MBERT_VOCAB_SIZE:
        raise RuntimeError(f"mBERT vocabulary has {len(tokenizer)} entries, expected {MBERT_VOCAB_SIZE}")
    return tokenizer


def _seeded():
    import torch

    torch.manual_seed(TINY_SEED)


def _build_tiny_mbert(directory: Path) -> None:
    from transformers import BertConfig, BertModel

    _seeded()
    config = BertConfig(vocab_size=MBERT_VOCAB_SIZE, num_hidden_layers=4, max_position_embeddings=512,
                        **_WIDTH)
    without_pooler = BertModel(config, add_pooling_layer=False)   # the weights of v2, unchanged
    model = BertModel(config)
    model.load_state_dict(without_pooler.state_dict(), strict=False)   # the pooler keeps its own init
    model.save_pretrained(directory)
    mbert_tokenizer().save_pretrained(directory)


def _build_tiny_distilmbert(directory: Path) -> None:
    from transformers import DistilBertConfig, DistilBertModel

    _seeded()
    config = DistilBertConfig(vocab_size=MBERT_VOCAB_SIZE, n_layers=2, dim=_WIDTH["hidden_size"],
                              n_heads=_WIDTH["num_attention_heads"], hidden_dim=_WIDTH["intermediate_size"],
                              max_position_embeddings=512)
    DistilBertModel(config).save_pretrained(directory)
    mbert_tokenizer().save_pretrained(directory)


def xlmr_training_text() -> list[str]:
    """Every bundled parallel sentence, in a fixed order (both sides)."""
    lines: list[str] = []
    for path in sorted(bundled_path("parallel/tatoeba").iterdir()):
        lines.extend(path.read_text(encoding="utf-8").splitlines())
    table = bundled_path("parallel/pud_parallel_12lang.first200.tsv").read_text(encoding="utf-8")
    for row in table.splitlines()[1:]:
        lines.extend(row.split("\t"))
    return [line.strip() for line in lines if line.strip()]


def train_xlmr_vocabulary(vocab_size: int = XLMR_VOCAB_SIZE) -> list[tuple[str, float]]:
    """A Unigram vocabulary in XLM-R's special-token order, trained deterministically.

    The trainer runs in a fresh process with one thread: with several, the
    pieces kept at the cut-off change between runs.
    The thread count of the tokenizers library is fixed when its pool
    starts, so it cannot be changed from inside a process that already
    used it.
    """
    import json
    import subprocess
    import sys

    env = {**os.environ, "RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    code = ("import json, sys; from trainables.tiny_models import _train_unigram; "
            f"json.dump(_train_unigram({int(vocab_size)}), sys.stdout)")
    output = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    vocab = json.loads(output.stdout)
    # Even single-threaded, scores differ in the 14th digit between runs:
    # round them, and order tied pieces by their text. The trainer appends
    # the characters needed for coverage with a descending ramp of scores in
    # hash-map order: give that tail its ramp in character order instead.
    specials = [(piece, float(score)) for piece, score in vocab[:5]]
    rest = sorted(((piece, round(float(score), 6)) for piece, score in vocab[5:]),
                  key=lambda item: (-item[1], item[0]))
    tail = len(rest)
    while tail > 0 and len(rest[tail - 1][0]) == 1:
        tail -= 1
    ramp = [score for _, score in rest[tail:]]
    characters = sorted(piece for piece, _ in rest[tail:])
    return specials + rest[:tail] + list(zip(characters, ramp))


def _train_unigram(vocab_size: int) -> list[tuple[str, float]]:
    import json

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.Unigram())
    # no normalizer: XLMRobertaTokenizer(vocab=...) applies none either
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")])
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, unk_token="<unk>", shrinking_factor=0.75,
                                      special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                                      max_piece_length=16, n_sub_iterations=2, show_progress=False)
    tokenizer.train_from_iterator(xlmr_training_text(), trainer=trainer)
    return [(piece, float(score)) for piece, score in json.loads(tokenizer.to_str())["model"]["vocab"]]


def xlmr_tokenizer(vocab: list[tuple[str, float]]):
    from transformers import XLMRobertaTokenizer

    return XLMRobertaTokenizer(vocab=vocab)


def _build_tiny_xlmr(directory: Path) -> None:
    from transformers import XLMRobertaConfig, XLMRobertaModel

    tokenizer = xlmr_tokenizer(train_xlmr_vocabulary())
    _seeded()
    config = XLMRobertaConfig(vocab_size=len(tokenizer), num_hidden_layers=4, max_position_embeddings=514,
                              pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                              eos_token_id=tokenizer.eos_token_id, type_vocab_size=1, **_WIDTH)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
