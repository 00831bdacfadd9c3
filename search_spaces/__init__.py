"""Experiment presets (YAML) shipped with the package."""

from __future__ import annotations

from pathlib import Path

PRESETS_DIR = Path(__file__).resolve().parent


def preset_path(name: str) -> Path:
    """Path of a bundled preset, e.g. ``preset_path("demo")``."""
    from trainables.errors import unknown_name

    path = PRESETS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise unknown_name("preset", name, sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")))
    return path
