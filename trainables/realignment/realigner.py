"""The realignment phase: train the encoder on the contrastive loss, some blocks frozen.

``RealignmentStream`` (``stream``) yields batches of aligned sentence
pairs read lazily from each language's corpus, shuffled through a seeded
buffer and interleaved round-robin, for as many steps as asked; a pair
with no link left once its sides are cut at ``max_length`` sub-words is
dropped, as the reference drops it. ``realign`` runs the "before"
schedule; ``realignment_loss`` is shared with the "during" schedule of
the fine-tuning loop.

Which hidden state is realigned (``layer``): the reference computes the
loss on ``hidden_states[L-1]`` of an L-block encoder, the output of the
penultimate block (its setting -1 is counted over the L blocks, then used
as an index into the L+1 hidden states), so its last block never gets a
realignment gradient. ``penultimate`` (the default) reproduces that;
``last`` is ``hidden_states[L]``; an integer is a hidden-state index,
0 = the embeddings' output.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from trainables.errors import SpecError
from trainables.freezing import frozen, trainable_parameters
from trainables.length_grouping import check_batching
from trainables.optimizers import adam
from trainables.realignment.batches import RealignmentBatch
from trainables.realignment.contrastive_loss import LOSS_REDUCTIONS, ProjectionHead, contrastive_alignment_loss
# the stream lives in its own module; its names stay importable from here
from trainables.realignment.stream import (INTERLEAVINGS, RealignmentStream,  # noqa: F401
                                          check_interleaving, interleave)


LAYER_NAMES = ("penultimate", "last")


def check_layer_setting(layer: Any) -> None:
    """A one-line SpecError unless ``layer`` is 'penultimate', 'last' or an index >= 0."""
    if layer in LAYER_NAMES or (isinstance(layer, int) and not isinstance(layer, bool) and layer >= 0):
        return
    hint = " (the reference's -1 is 'penultimate')" if isinstance(layer, int) and layer < 0 else ""
    raise SpecError(f"realignment.layer must be 'penultimate', 'last' or a hidden-state index "
                    f"(0 = the embeddings), got {layer!r}{hint}")


def hidden_state_index(layer: int | str, num_blocks: int, model: str = "the model") -> int:
    """Index into the ``num_blocks + 1`` hidden states of the state ``layer`` names."""
    check_layer_setting(layer)
    index = {"penultimate": num_blocks - 1, "last": num_blocks}.get(layer, layer)
    if not 0 <= index <= num_blocks:
        raise SpecError(f"realignment.layer {layer!r} is out of range for {model}: hidden-state indices "
                        f"0..{num_blocks} (0 = the embeddings, {num_blocks} = the last of its {num_blocks} blocks)")
    return index


WORD_REPRESENTATIONS = ("first", "sum")


@dataclass(frozen=True)
class RealignSettings:
    steps: int | str = "auto"        # "auto": as many as the fine-tuning's optimizer steps
    learning_rate: float = 2e-5
    xlmr_learning_rate: float = 7.5e-6
    batch_size: int = 16             # sentence pairs
    temperature: float = 0.1
    layer: int | str = "penultimate"  # the reference's; "last", or a hidden-state index (0 = embeddings)
    loss_reduction: str = "queries"  # mean over the 2N queries (reference) | "sentence_pairs": sum / 2B
    word_representation: str = "first"   # first sub-word (the paper) | "sum" of the word's sub-words
    projection: bool = True
    projection_dim: int = 128
    max_length: int = 96             # sub-words per side, special tokens included (reference: 96)
    during_weight: float = 0.1       # "during" schedule: weight of the realignment loss
    max_pairs: int | None = None     # per language; None: all
    interleaving: str = "shortest"   # the reference's: a pass ends with the shortest language | "all_pairs"
    batching: str = "random"        # pairs in stream order (the reference's) | "length_grouped"

    def __post_init__(self) -> None:
        check_layer_setting(self.layer)
        if self.loss_reduction not in LOSS_REDUCTIONS:
            raise SpecError(f"realignment.loss_reduction must be one of {', '.join(LOSS_REDUCTIONS)}, "
                            f"got {self.loss_reduction!r}")
        if self.word_representation not in WORD_REPRESENTATIONS:
            raise SpecError(f"realignment.word_representation must be one of "
                            f"{', '.join(WORD_REPRESENTATIONS)}, got {self.word_representation!r}")
        check_interleaving(self.interleaving)
        check_batching(self.batching, "realignment.batching")


def model_name(encoder: nn.Module) -> str:
    return getattr(getattr(encoder, "config", None), "_name_or_path", "") or type(encoder).__name__


def word_states(encoder: nn.Module, batch: RealignmentBatch, layer: int | str,
                representation: str = "first") -> torch.Tensor:
    """States [N, d] of every word of the batch at hidden state ``layer``.

    ``layer``: 'penultimate', 'last' or a hidden-state index (0 = the
    embeddings); a negative index counts from the end, as in Python
    (for internal callers: a spec cannot say it). ``representation``:
    ``first`` takes a word's first sub-word, ``sum`` adds up all its
    sub-words (as the reference's full-word ranges do).
    """
    output = encoder(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                     output_hidden_states=True)
    hidden_states = output.hidden_states
    if not (isinstance(layer, int) and layer < 0):
        layer = hidden_state_index(layer, len(hidden_states) - 1, model_name(encoder))
    hidden = hidden_states[layer]
    if representation == "first" or batch.word_ends is None:
        return hidden[batch.word_rows, batch.word_positions]
    # every sub-word of every word, gathered in one index, then summed per word
    lengths = batch.word_ends - batch.word_positions
    word = torch.repeat_interleave(torch.arange(len(lengths), device=lengths.device), lengths)
    starts = torch.cumsum(lengths, 0) - lengths
    offset = torch.arange(len(word), device=lengths.device) - starts[word]
    pieces = hidden[batch.word_rows[word], batch.word_positions[word] + offset]
    return hidden.new_zeros((len(lengths), hidden.shape[-1])).index_add_(0, word, pieces)


def realignment_loss(encoder: nn.Module, head: nn.Module | None, batch: RealignmentBatch,
                     settings: RealignSettings) -> torch.Tensor:
    states = word_states(encoder, batch, settings.layer, settings.word_representation)
    if head is not None:
        states = head(states)
    return contrastive_alignment_loss(states, batch.links, batch.num_pairs, settings.temperature,
                                      settings.loss_reduction)


def build_projection_head(encoder: nn.Module, settings: RealignSettings) -> nn.Module | None:
    from trainables.models import hidden_size

    if not settings.projection:
        return None
    init_std = getattr(getattr(encoder, "config", None), "initializer_range", 0.02)
    return ProjectionHead(hidden_size(encoder), settings.projection_dim, init_std)


def realignment_provenance(encoder: nn.Module, settings: RealignSettings,
                           stream: "RealignmentStream | None" = None) -> dict[str, Any]:
    """What a result records about the realignment loss (a SpecError if ``layer`` is out of range)."""
    from trainables.models import encoder_layout

    num_blocks = encoder_layout(encoder).num_blocks
    provenance: dict[str, Any] = {
        "realign_layer": settings.layer,
        "realign_hidden_state": hidden_state_index(settings.layer, num_blocks, model_name(encoder)),
        "realign_loss_reduction": settings.loss_reduction,
        "realign_word_representation": settings.word_representation,
        "realign_max_length": settings.max_length,
    }
    if stream is not None:
        provenance["realign_pairs_without_link"] = dict(stream.pairs_without_link)
    return provenance


def realign(encoder: nn.Module, stream: RealignmentStream, settings: RealignSettings, steps: int,
            frozen_names: frozenset[str], learning_rate: float, device: torch.device,
            autocast_dtype: torch.dtype | None = None, log_every: int = 0,
            resume: dict[str, Any] | None = None,
            on_step: Callable[[int, Callable[[], dict[str, Any]]], None] | None = None,
            curves: Any = None) -> dict[str, Any]:
    """Train ``encoder`` for ``steps`` batches with ``frozen_names`` frozen; all trainable after.

    ``on_step(done, state)`` is called after every optimizer step but the
    last; ``state()`` is what ``resume`` takes to continue from there to the
    same weights as an uninterrupted run: the encoder, the head, Adam's
    state, the random generators, the losses so far, and the step (the
    stream is re-drawn up to it). ``curves``: a ``TrainingCurves``; its
    ``realignment`` run gets the loss, learning rate, gradient norm and
    tokens per second every few steps (read from the device only then).
    """
    from trainables import random_state
    from trainables.training_curves import NO_CURVES, grad_norm

    provenance = realignment_provenance(encoder, settings, stream)   # a bad layer fails before training
    head = build_projection_head(encoder, settings)
    if head is not None:
        head.to(device)
    started = time.perf_counter()
    losses: list[float] = []
    first_step, elapsed = 0, 0.0
    fed = {"real": 0, "padded": 0}      # tokens fed: non-pad ones, and rows x padded length
    # The step losses stay on the device until a checkpoint, a log line or the end reads
    # them: reading each one would wait for the step to finish (a GPU sync per step).
    step_losses = torch.zeros(steps, dtype=torch.float32, device=device)
    read = 0                            # step_losses[:read] are in ``losses``

    def losses_so_far(done: int) -> list[float]:
        nonlocal read
        if done > read:
            losses.extend(step_losses[read:done].tolist())
            read = done
        return losses

    encoder.train()
    with frozen(encoder, frozen_names):
        parameters = trainable_parameters(encoder) + (list(head.parameters()) if head is not None else [])
        optimizer = adam(parameters, learning_rate)
        if resume is not None:
            encoder.load_state_dict(resume["encoder"])
            if head is not None:
                head.load_state_dict(resume["head"])
            optimizer.load_state_dict(resume["optimizer"])
            losses, first_step, elapsed = list(resume["losses"]), resume["step"], resume["elapsed_s"]
            read = first_step
            fed = dict(resume.get("tokens", fed))
            stream.skip(first_step)
            random_state.restore(resume["rng"])
        phase_curves = (curves or NO_CURVES).phase("realignment", steps, first_step)

        def state(done: int) -> dict[str, Any]:
            return {"step": done, "encoder": encoder.state_dict(),
                    "head": head.state_dict() if head is not None else None,
                    "optimizer": optimizer.state_dict(), "losses": list(losses_so_far(done)),
                    "tokens": dict(fed),
                    "elapsed_s": elapsed + time.perf_counter() - started, "rng": random_state.capture()}

        # fp32: no autocast context at all (entering a disabled one still costs every step)
        autocast = (contextlib.nullcontext() if autocast_dtype is None
                    else torch.autocast(device.type, dtype=autocast_dtype))
        for step in range(first_step, steps):
            pairs = stream.next_batch()
            batch = pairs.to(device)
            with autocast:
                loss = realignment_loss(encoder, head, batch, settings)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step_losses[step] = loss.detach()
            fed["real"] += pairs.real_tokens
            fed["padded"] += pairs.padded_tokens
            phase_curves.add(pairs.real_tokens, realignment=step_losses[step])
            if phase_curves.due(step + 1):   # the gradients of this step are still there
                phase_curves.log(step + 1, learning_rate, grad_norm(parameters))
            if log_every and (step + 1) % log_every == 0:
                recent = losses_so_far(step + 1)[-log_every:]
                print(f"realignment step {step + 1}/{steps}: loss {sum(recent) / log_every:.4f}", flush=True)
            if on_step is not None and step + 1 < steps:
                on_step(step + 1, lambda done=step + 1: state(done))
    losses = losses_so_far(steps)
    tail = losses[-max(1, len(losses) // 10):] if losses else [math.nan]
    return {"realign_steps": steps, "realign_loss_first": losses[0] if losses else math.nan,
            "realign_loss_last": sum(tail) / len(tail), "realign_s": elapsed + time.perf_counter() - started,
            "realign_pairs": stream.num_pairs, "tokens": {"realign": fed}, **provenance}
