"""The ``simalign`` aligner: word links from the encoder's own representations.

In the role awesome-align played in the original implementation, with no
extra model and no separate environment (the method of SimAlign, Jalili
Sabet et al. 2020, "argmax" variant):

1. each side of a sentence pair goes through the trial's encoder alone;
   a word's vector is the mean of its sub-word vectors (``word_vector:
   mean``, the default) or its first sub-word's vector (``first``, the
   representation the realignment loss uses) at hidden layer ``layer``
   (0 = the embedding output);
2. the cosine similarity of every source word with every target word;
3. a link (i, j) is kept when j is i's most similar target word *and* i is
   j's most similar source word (argmax in both directions, intersected),
   which makes the links one-to-one.

Default layer: 8 for a 12-layer encoder (SimAlign's best layer for mBERT
and XLM-R base), and in general the layer at the same relative depth,
``round(2/3 * number of layers)``: 4 for DistilmBERT, 16 for XLM-R large.

The model runs in eval mode under ``torch.no_grad`` and is given back in
the train/eval mode it came in. Words cut off by the encoder's length
limit, or that its tokenizer maps to no sub-word, get no link. Sentence
pairs with a side without words are skipped and counted.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from trainables.errors import SpecError
from trainables.realignment.pretokenization import contains_word
from trainables.realignment.word_pairs import AlignedPair, Link

logger = logging.getLogger(__name__)

WORD_VECTORS = ("mean", "first")
DEFAULT_SETTINGS: dict[str, Any] = {"layer": None, "word_vector": "mean", "batch_size": 32}


def number_of_layers(model) -> int:
    """Transformer blocks of a BERT-like (``num_hidden_layers``) or DistilBERT-like (``n_layers``) model."""
    config = model.config
    for attribute in ("num_hidden_layers", "n_layers"):
        value = getattr(config, attribute, None)
        if isinstance(value, int):
            return value
    raise SpecError(f"simalign cannot tell the number of layers of a {type(model).__name__}")


def default_layer(num_layers: int) -> int:
    """Layer 8 of 12, and the same relative depth for other encoders."""
    return max(1, round(num_layers * 2 / 3))


def resolved_settings(settings: dict[str, Any] | None, model) -> dict[str, Any]:
    """The full settings of a run for ``model``: defaults filled in, checked."""
    from trainables.settings_schema import ALIGNER_SETTINGS, check_section

    settings = dict(check_section(settings, ALIGNER_SETTINGS["simalign"], "aligner_settings"))
    resolved = {**DEFAULT_SETTINGS, **settings}
    layers = number_of_layers(model)
    if resolved["layer"] is None:
        resolved["layer"] = default_layer(layers)
    layer = resolved["layer"]
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer <= layers:
        raise SpecError(f"simalign layer must be an integer from 0 to {layers} for this encoder, got {layer!r}")
    return resolved


def mutual_argmax_links(similarity) -> list[Link]:
    """Links (i, j) where j is row i's argmax and i is column j's argmax."""
    if similarity.numel() == 0:
        return []
    best_target = similarity.argmax(dim=1)
    best_source = similarity.argmax(dim=0)
    return [(i, int(j)) for i, j in enumerate(best_target.tolist()) if int(best_source[j]) == i]


def _max_length(model, tokenizer) -> int:
    limits = [512]
    for value in (getattr(tokenizer, "model_max_length", None),
                  getattr(model.config, "max_position_embeddings", None)):
        if isinstance(value, int) and value > 0:
            limits.append(value)
    return min(limits)


def word_vectors(model, tokenizer, sentences: Sequence[Sequence[str]], layer: int,
                 word_vector: str = "mean", batch_size: int = 32) -> list[tuple[Any, list[int]]]:
    """For each sentence: (vectors of its encoded words, the indices of those words).

    Call under ``torch.no_grad`` with the model in eval mode.
    """
    import torch

    if not getattr(tokenizer, "is_fast", False):
        raise SpecError("simalign needs a fast (tokenizers-backed) tokenizer to map sub-words to words")
    from trainables.tasks.token_classification import bare_metaspace_id

    device = next(model.parameters()).device
    max_length = _max_length(model, tokenizer)
    bare = bare_metaspace_id(tokenizer)   # a bare SentencePiece "▁" never stands for a word
    result = []
    for start in range(0, len(sentences), batch_size):
        batch = [list(words) for words in sentences[start:start + batch_size]]
        encoding = tokenizer(batch, is_split_into_words=True, truncation=True, max_length=max_length,
                             padding=True, return_tensors="pt")
        output = model(input_ids=encoding["input_ids"].to(device),
                       attention_mask=encoding["attention_mask"].to(device), output_hidden_states=True)
        hidden = output.hidden_states[layer].float()
        for b in range(len(batch)):
            word_ids = encoding.word_ids(b)
            ids = encoding["input_ids"][b].tolist()
            positions: dict[int, list[int]] = {}
            for t, w in enumerate(word_ids):
                if w is not None and ids[t] != bare:
                    positions.setdefault(w, []).append(t)
            present = sorted(positions)
            if not present:
                result.append((hidden.new_zeros((0, hidden.shape[-1])), []))
                continue
            if word_vector == "first":
                vectors = hidden[b, [positions[w][0] for w in present]]
            else:
                vectors = torch.stack([hidden[b, positions[w]].mean(dim=0) for w in present])
            result.append((vectors, present))
    return result


def simalign_links(tokenized: Sequence[tuple[Sequence[str], Sequence[str]]], encoder,
                   settings: dict[str, Any] | None = None) -> list[list[Link]]:
    """One-to-one links of every sentence pair ([] for a skipped pair)."""
    import torch
    import torch.nn.functional as F

    if encoder is None:
        raise SpecError("aligner 'simalign' needs the trial's encoder (model, tokenizer)")
    model, tokenizer = encoder
    settings = resolved_settings(settings, model)
    alignable = [n for n, (src, tgt) in enumerate(tokenized) if contains_word(src) and contains_word(tgt)]
    skipped = len(tokenized) - len(alignable)
    if skipped:
        logger.info("simalign: skipped %d of %d sentence pairs with a side without words",
                    skipped, len(tokenized))
    result: list[list[Link]] = [[] for _ in tokenized]
    if not alignable:
        return result
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            options = dict(layer=settings["layer"], word_vector=settings["word_vector"],
                           batch_size=settings["batch_size"])
            sources = word_vectors(model, tokenizer, [tokenized[n][0] for n in alignable], **options)
            targets = word_vectors(model, tokenizer, [tokenized[n][1] for n in alignable], **options)
            for n, (source_vectors, source_words), (target_vectors, target_words) in zip(
                    alignable, sources, targets):
                if not source_words or not target_words:
                    continue
                similarity = F.normalize(source_vectors, dim=-1) @ F.normalize(target_vectors, dim=-1).T
                result[n] = [(source_words[i], target_words[j]) for i, j in mutual_argmax_links(similarity)]
    finally:
        model.train(was_training)
    return result


def simalign_pairs(request) -> list[AlignedPair]:
    """Aligned pairs of one language's corpus (``aligners`` dispatches ``simalign`` here)."""
    links = simalign_links(request.tokenized, request.encoder, request.settings)
    return [AlignedPair(request.language, tuple(src), tuple(tgt), tuple(kept))
            for (src, tgt), kept in zip(request.tokenized, links) if kept]
