"""The freezing-depth search space: which end of the encoder to freeze, and how many blocks.

A point is (side, depth): ``depth`` blocks frozen at the ``front`` (lowest
blocks) or the ``back`` (highest) during realignment. Depth 0 freezes
nothing, i.e. full realignment, whatever the side; freezing every block
is the same set of tensors from either side. Points are turned into the
strategy strings the rest of the project reads (``full``, ``front:K``,
``back:K``), one canonical string per distinct frozen set, so that two
suggestions that freeze the same tensors share their trials.

``suggest`` is a define-by-run space for Optuna: it only asks the trial
for values and computes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SIDES: tuple[str, ...] = ("front", "back")
FULL_REALIGNMENT = "full"


@dataclass(frozen=True)
class FreezingDepthSpace:
    sides: tuple[str, ...] = SIDES
    min_depth: int = 0
    max_depth: int | None = None          # None: every block but one

    def depth_range(self, num_blocks: int) -> tuple[int, int]:
        """The searched depths for a model of ``num_blocks`` blocks (inclusive)."""
        high = num_blocks - 1 if self.max_depth is None else self.max_depth
        return self.min_depth, high

    def strategy(self, side: str, depth: int, num_blocks: int) -> str:
        """The canonical strategy of a point."""
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
                strategy = self.strategy(side, depth, num_blocks)
                if strategy not in found:
                    found.append(strategy)
        return found

    def suggest(self, trial: Any, num_blocks: int) -> str:
        """Define-by-run: ask an Optuna trial for a point, return its strategy."""
        low, high = self.depth_range(num_blocks)
        depth = trial.suggest_int("depth", low, high)
        side = trial.suggest_categorical("side", list(self.sides))
        return self.strategy(side, depth, num_blocks)

    def strategy_of_params(self, params: dict[str, Any], num_blocks: int) -> str:
        """The strategy of a stored Optuna trial (its ``params``)."""
        return self.strategy(str(params["side"]), int(params["depth"]), num_blocks)

    def params_of(self, strategy: str) -> dict[str, Any]:
        """Optuna parameters that give ``strategy`` (to enqueue a setting)."""
        if strategy == FULL_REALIGNMENT:
            return {"depth": 0, "side": self.sides[0]}
        side, _, depth = strategy.partition(":")
        return {"depth": int(depth), "side": side}
