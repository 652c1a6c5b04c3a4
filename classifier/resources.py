"""Find the project's data files in a source checkout or inside an installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent
_WHEEL_DATA = _PACKAGE / "_data"


def resource_path(relative: str) -> Path:
    """Path of *relative* (e.g. ``intents.yaml``, ``data/corpus``), checkout first."""
    candidate = _CHECKOUT / relative
    if (_CHECKOUT / "pyproject.toml").exists() and candidate.exists():
        return candidate
    return _WHEEL_DATA / relative
