"""Batch orders: random (the paper's), or grouped by length so that batches carry little padding.

A batch is padded to its longest sequence, so batches of randomly drawn
sentences spend a large share of their compute on padding (2.55 padded
tokens per real one on the bundled PoS slice at batch 32).
``length_grouped`` keeps the randomness and removes most of that padding,
with the recipe of the Hugging Face Trainer's ``group_by_length``
(``transformers.trainer_pt_utils.get_length_grouped_indices``): a random
permutation, cut into windows ("megabatches") of ``WINDOW_BATCHES``
batches, each window sorted by length, longest first, then cut into
batches. Two differences: the window is always ``WINDOW_BATCHES`` batches
(the Trainer shrinks it to a quarter of a small data set, which groups
nothing on a few hundred sentences), and the batches of a window are
then drawn in a random order (the Trainer keeps them longest to shortest,
and swaps the longest sequence into the first batch to meet an
out-of-memory error early), so that the sentence length does not rise
and fall with the step inside each window.

The fine-tuning loop draws an epoch's batches from a generator seeded by
(seed, epoch) (``epoch_batches``); the realignment stream groups each
window of pairs it reads with a generator seeded by (seed, window)
(``grouped_batches``). Either way the batches depend on the seed and the
position only, so a run resumed mid-epoch or mid-stream sees the same
batches.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from trainables.errors import SpecError

BATCHINGS = ("random", "length_grouped")
DEFAULT_BATCHING = "random"      # the reference draws batches in random order (DataLoader shuffle=True)
WINDOW_BATCHES = 50              # the Trainer's largest megabatch (mega_batch_mult 50)


def check_batching(value: Any, where: str) -> str:
    """``value`` if it names a batching, else a one-line SpecError naming ``where``."""
    if value not in BATCHINGS:
        raise SpecError(f"{where} must be one of {', '.join(BATCHINGS)}, got {value!r}")
    return value


def grouped_batches(order: Sequence[int], lengths: Sequence[int], batch_size: int,
                    permutation: Callable[[int], list[int]],
                    window_batches: int | None = None) -> list[list[int]]:
    """``order`` cut into batches of similar ``lengths`` inside windows of ``window_batches`` batches
    (None: ``WINDOW_BATCHES``).

    ``permutation(n)``: a random order of range(n), the order in which a
    window's batches are drawn. The sort is stable: equal lengths keep
    their random order. Only the last window can end with a short batch.
    """
    window = (window_batches or WINDOW_BATCHES) * batch_size
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        ranked = sorted(order[start:start + window], key=lambda i: lengths[i], reverse=True)
        cut = [ranked[i:i + batch_size] for i in range(0, len(ranked), batch_size)]
        batches.extend(cut[i] for i in permutation(len(cut)))
    return batches


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int,
                  batching: str = DEFAULT_BATCHING) -> list[list[int]]:
    """The fine-tuning batches of ``epoch`` (indices into the features), from (seed, epoch) only.

    ``random`` is the order the fine-tuning loop always drew: one
    permutation, cut in consecutive batches.
    """
    import torch     # here: the spec validation imports this module without torch

    check_batching(batching, "finetune.batching")
    generator = torch.Generator().manual_seed(seed * 1009 + epoch)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    if batching == "random":
        return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return grouped_batches(order, lengths, batch_size,
                           lambda n: torch.randperm(n, generator=generator).tolist())


def padding_counts(batches: Sequence[Sequence[int]], lengths: Sequence[int]) -> tuple[int, int]:
    """(real, padded) tokens of ``batches``: padded = rows x the longest row, per batch."""
    real = padded = 0
    for batch in batches:
        sizes = [lengths[i] for i in batch]
        real += sum(sizes)
        padded += len(sizes) * max(sizes)
    return real, padded


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices in batches of ``batch_size``, longest first (evaluation: the least padding).

    The caller puts each prediction back at its index, so the order never
    changes a result.
    """
    ranked = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    return [ranked[i:i + batch_size] for i in range(0, len(ranked), batch_size)]
