"""Loading from the Hugging Face Hub, with failures turned into one clear line.

Without network (or with HF_HUB_OFFLINE=1) a Hub id fails; the message
says which id and that a local path works too.
"""

from __future__ import annotations

from typing import Any

from trainables.errors import DataError


def load_hub_split(dataset_id: str, config: str | None, split: str, streaming: bool = False) -> Any:
    """One split of a Hub dataset (``datasets.load_dataset``; ``streaming``: an IterableDataset)."""
    try:
        import datasets

        if streaming:
            return datasets.load_dataset(dataset_id, config, split=split, streaming=True)
        return datasets.load_dataset(dataset_id, config, split=split)
    except Exception as error:  # network, offline mode, unknown config: all one story
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        where = f"{dataset_id}" + (f" (config {config})" if config else "")
        raise DataError(f"cannot load Hub dataset {where}, split {split}: {first[:200]}; "
                        f"give a local path instead") from None
