"""Which parameters are frozen during realignment: a pure function of (model, spec).

A layer is a transformer block. Freezing specs:

- ``none``: nothing frozen (full realignment);
- ``front``: the lower half of the blocks, 0 .. L//2-1 (the paper's front);
- ``back``: the upper half, L//2 .. L-1 (the paper's back);
- ``front:K`` / ``back:K``: the K lowest / highest blocks;
- ``range:A-B``: half-open range over positions 0 = embeddings, 1..L = blocks.

``+embeddings`` after a spec (or ``freeze_embeddings: true`` in a trial spec)
freezes the embeddings too. Embeddings, heads and everything outside the
blocks are trainable otherwise, as in the paper.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator

from torch import nn

from trainables.errors import SpecError
from trainables.models import encoder_layout

_SPEC = re.compile(r"^(none|front|back)(?::(\d+))?$|^range:(\d+)-(\d+)$")
EMBEDDINGS_SUFFIX = "+embeddings"


@dataclass(frozen=True)
class FreezeSpec:
    kind: str                    # none | front | back | range
    count: int | None = None     # front:K / back:K
    start: int | None = None     # range:A-B (0 = embeddings, 1..L = blocks)
    end: int | None = None
    embeddings: bool = False

    def __str__(self) -> str:
        if self.kind == "range":
            text = f"range:{self.start}-{self.end}"
        else:
            text = self.kind + (f":{self.count}" if self.count is not None else "")
        return text + (EMBEDDINGS_SUFFIX if self.embeddings else "")


def parse_freeze_spec(text: str, freeze_embeddings: bool = False) -> FreezeSpec:
    """Parse a freezing spec; a malformed one is a one-line SpecError."""
    raw = str(text).strip()
    embeddings = freeze_embeddings
    if raw.endswith(EMBEDDINGS_SUFFIX):
        raw, embeddings = raw[: -len(EMBEDDINGS_SUFFIX)], True
    match = _SPEC.match(raw)
    if not match:
        raise SpecError(f"bad freezing spec {text!r}: expected none, front, back, front:K, back:K "
                        f"or range:A-B, optionally followed by {EMBEDDINGS_SUFFIX}")
    kind, count, start, end = match.groups()
    if kind == "none" and count is not None:
        raise SpecError(f"bad freezing spec {text!r}: 'none' takes no count")
    if kind is None:
        return FreezeSpec("range", start=int(start), end=int(end), embeddings=embeddings)
    return FreezeSpec(kind, count=int(count) if count is not None else None, embeddings=embeddings)


def frozen_positions(spec: FreezeSpec, num_blocks: int) -> tuple[bool, tuple[int, ...]]:
    """(embeddings frozen?, frozen block indices) for a model of ``num_blocks`` blocks.

    A spec that does not fit the model is a SpecError naming both.
    """
    half = num_blocks // 2
    if spec.kind == "none":
        blocks: Iterable[int] = ()
    elif spec.kind in ("front", "back"):
        count = half if spec.count is None else spec.count
        if not 1 <= count <= num_blocks:
            raise SpecError(f"freezing spec {spec}: K={count} outside 1..{num_blocks} "
                            f"for a model of {num_blocks} blocks")
        blocks = range(count) if spec.kind == "front" else range(num_blocks - count, num_blocks)
    else:
        if not (0 <= spec.start < spec.end <= num_blocks + 1):
            raise SpecError(f"freezing spec {spec}: range must satisfy 0 <= A < B <= {num_blocks + 1} "
                            f"(0 = embeddings, 1..{num_blocks} = blocks) for a model of {num_blocks} blocks")
        blocks = [position - 1 for position in range(spec.start, spec.end) if position >= 1]
        if spec.start == 0:
            return True, tuple(blocks)
    return spec.embeddings, tuple(blocks)


def frozen_parameter_names(model: nn.Module, spec: FreezeSpec | str) -> frozenset[str]:
    """Names (as in ``model.named_parameters()``) of the parameters that ``spec`` freezes."""
    if isinstance(spec, str):
        spec = parse_freeze_spec(spec)
    layout = encoder_layout(model)
    embeddings, blocks = frozen_positions(spec, layout.num_blocks)
    frozen_blocks = set(blocks)
    names = set()
    for name, _ in model.named_parameters():
        block = layout.block_of(name)
        if (block is not None and block in frozen_blocks) or (embeddings and layout.is_embedding(name)):
            names.add(name)
    return frozenset(names)


@contextmanager
def frozen(model: nn.Module, names: Iterable[str], prefix: str = "") -> Iterator[None]:
    """Set ``requires_grad=False`` on ``names`` (under ``prefix``) for the block, then restore.

    On exit every parameter of ``model`` requires grad again, so that
    fine-tuning after realignment trains everything.
    """
    names = {prefix + name for name in names}
    parameters = dict(model.named_parameters())
    missing = names - parameters.keys()
    if missing:
        raise ValueError(f"no such parameters: {sorted(missing)[:3]}")
    try:
        for name in names:
            parameters[name].requires_grad_(False)
        yield
    finally:
        for parameter in model.parameters():
            parameter.requires_grad_(True)


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters the optimizer may update: those that require grad."""
    return [p for p in model.parameters() if p.requires_grad]
