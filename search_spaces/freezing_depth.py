"""The freezing-depth search space: which blocks of the encoder to freeze during realignment.

A point is (side, depth[, start]): ``depth`` blocks frozen at the
``front`` (lowest blocks), at the ``back`` (highest), or as a ``window``
of contiguous blocks [start, start + depth). Depth 0 freezes nothing,
i.e. full realignment, whatever the side; freezing every block is the
same set of tensors from either side; a window that touches block 0 is a
front, one that ends at the last block a back. Points are turned into the
strategy strings the rest of the project reads (``full``, ``front:K``,
``back:K``, and ``range:A-B`` for a window, A-B the half-open positions
1..L of its blocks), one canonical string per distinct frozen set, so
that two suggestions that freeze the same tensors share their trials.

``suggest`` is a define-by-run space for Optuna: it only asks the trial
for values and computes nothing. A window's ``start`` has the same range
(0 .. L-1) whatever the depth, so that the sampler sees one fixed
distribution; a start that would run past the last block is moved back
(the window then ends at the last block: a back).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

SIDES: tuple[str, ...] = ("front", "back")
ALL_SIDES: tuple[str, ...] = ("front", "back", "window")
FULL_REALIGNMENT = "full"
_WINDOW = re.compile(r"^range:(\d+)-(\d+)$")


def window_strategy(start: int, depth: int, num_blocks: int) -> str:
    """The canonical strategy freezing blocks [start, start + depth) of ``num_blocks``."""
    if depth == 0:
        return FULL_REALIGNMENT
    if start == 0:
        return f"front:{depth}"
    if start + depth == num_blocks:
        return f"back:{depth}"
    return f"range:{start + 1}-{start + depth + 1}"     # positions: 0 = embeddings, 1..L = blocks


def window_of(strategy: str) -> tuple[int, int] | None:
    """(first block, number of blocks) of a ``range:A-B`` window of blocks, else None."""
    match = _WINDOW.match(strategy)
    if not match or int(match.group(1)) < 1:
        return None
    return int(match.group(1)) - 1, int(match.group(2)) - int(match.group(1))


@dataclass(frozen=True)
class FreezingDepthSpace:
    sides: tuple[str, ...] = SIDES
    min_depth: int = 0
    max_depth: int | None = None          # None: every block but one

    def depth_range(self, num_blocks: int) -> tuple[int, int]:
        """The searched depths for a model of ``num_blocks`` blocks (inclusive)."""
        high = num_blocks - 1 if self.max_depth is None else self.max_depth
        return self.min_depth, high

    def strategy(self, side: str, depth: int, num_blocks: int, start: int = 0) -> str:
        """The canonical strategy of a point."""
        if side == "window":
            return window_strategy(min(start, num_blocks - depth), depth, num_blocks)
        if depth == 0:
            return FULL_REALIGNMENT
        if depth == num_blocks:
            side = SIDES[0]
        return f"{side}:{depth}"

    def strategies(self, num_blocks: int) -> list[str]:
        """Every distinct strategy of the space, shallowest first."""
        low, high = self.depth_range(num_blocks)
        found: list[str] = []
        for depth in range(low, high + 1):
            for side in self.sides:
                starts = range(num_blocks - depth + 1) if side == "window" else (0,)
                for start in starts:
                    strategy = self.strategy(side, depth, num_blocks, start)
                    if strategy not in found:
                        found.append(strategy)
        return found

    def suggest(self, trial: Any, num_blocks: int) -> str:
        """Define-by-run: ask an Optuna trial for a point, return its strategy."""
        low, high = self.depth_range(num_blocks)
        depth = trial.suggest_int("depth", low, high)
        side = trial.suggest_categorical("side", list(self.sides))
        start = trial.suggest_int("start", 0, num_blocks - 1) if side == "window" and depth else 0
        return self.strategy(side, depth, num_blocks, start)

    def strategy_of_params(self, params: dict[str, Any], num_blocks: int) -> str:
        """The strategy of a stored Optuna trial (its ``params``)."""
        return self.strategy(str(params["side"]), int(params["depth"]), num_blocks, int(params.get("start", 0)))

    def params_of(self, strategy: str, num_blocks: int) -> dict[str, Any]:
        """Optuna parameters that give ``strategy`` (to enqueue a setting)."""
        if strategy == FULL_REALIGNMENT:
            return {"depth": 0, "side": self.sides[0]}
        window = window_of(strategy)
        if window is not None:
            return {"depth": window[1], "side": "window", "start": window[0]}
        side, _, depth = strategy.partition(":")
        if side not in self.sides:       # a front/back reached through a window
            return {"depth": int(depth), "side": "window", "start": 0 if side == "front" else num_blocks - int(depth)}
        return {"depth": int(depth), "side": side}


def point_of(strategy: str) -> dict[str, Any]:
    """Side, depth and first frozen block of a canonical strategy, for summaries and plots."""
    if strategy == FULL_REALIGNMENT:
        return {"side": None, "depth": 0, "start": None}
    window = window_of(strategy)
    if window is not None:
        return {"side": "window", "depth": window[1], "start": window[0]}
    side, _, depth = strategy.partition(":")
    return {"side": side, "depth": int(depth), "start": None}
