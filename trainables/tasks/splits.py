"""The splits a trial reads, and the names their files go by in data directories.

A trial trains on ``train``, reports ``test`` and, when the experiment
gives ``data.<task>.validation``, also scores ``validation``: held-out
data a depth search selects on, so that the setting it picks is not
chosen on the test sets it reports. Data sets name that split ``dev``
(UD ``*-ud-dev.conllu``, XNLI ``dev-<lang>``, MLQA ``dev-context-...``),
``val`` (the WikiANN copy) or ``validation`` (Hugging Face).
"""

from __future__ import annotations

from trainables.errors import unknown_name

TRAIN, TEST, VALIDATION = "train", "test", "validation"
SPLITS = (TRAIN, TEST, VALIDATION)

# The file-name stems of each split, tried in this order ("validation" before its prefix "val").
_FILE_NAMES = {TRAIN: ("train",), TEST: ("test",), VALIDATION: ("dev", "validation", "val")}


def split_file_names(split: str) -> tuple[str, ...]:
    """How files of ``split`` are named in a data directory, most common first."""
    if split not in _FILE_NAMES:
        raise unknown_name("data split", split, SPLITS)
    return _FILE_NAMES[split]
