"""The ``hub`` / ``hub:<dataset id>[:<config>]`` source strings of the NER, NLI and QA tasks.

``hub`` alone means the task's default dataset. ``hub:<id>`` loads ``<id>``
with the task's default config for the language; ``hub:<id>:<config>``
names the config, and ``hub:<id>:-`` asks for none.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainables.errors import DataError


@dataclass(frozen=True)
class HubSource:
    dataset_id: str | None   # None: the task's default dataset
    config: str | None       # meaningful only when ``explicit_config``
    explicit_config: bool


def is_hub(source: str) -> bool:
    return source == "hub" or source.startswith("hub:")


def parse_hub_source(source: str) -> HubSource:
    if source == "hub":
        return HubSource(None, None, False)
    parts = source.split(":")
    if len(parts) not in (2, 3) or parts[0] != "hub" or not parts[1]:
        raise DataError("Hub source must be 'hub', 'hub:<dataset id>' or "
                        "'hub:<dataset id>:<config>'", source)
    if len(parts) == 2:
        return HubSource(parts[1], None, False)
    return HubSource(parts[1], None if parts[2] in ("", "-") else parts[2], True)


def class_names(dataset, column: str) -> list[str] | None:
    """The class names of a ``ClassLabel`` column (or of a sequence of them), else None."""
    feature = dataset.features[column]
    feature = getattr(feature, "feature", feature)
    return list(feature.names) if hasattr(feature, "names") else None
