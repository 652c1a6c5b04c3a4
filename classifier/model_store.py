"""Model files are a cache in FANZHA_HOME: arrays (npz, no pickle), vocabulary and a manifest.

The manifest records the hash of everything the model was built from (intents.yaml, the
corpus, reviewed items, feature code version, tokenizer); when any of it changes the cache
is stale and is rebuilt. Only files written by this module are ever loaded, and never with
pickle.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

FORMAT = "fanzha-model/1"
ARRAYS = "weights.npz"
VOCAB = "vocab.json"
MANIFEST = "manifest.json"


class ModelError(RuntimeError):
    """The cached model is missing, stale or unreadable."""


def save_model(directory: Path, arrays: dict[str, np.ndarray], vocab: dict, manifest: dict) -> None:
    """Write the model atomically: a half-written model is never visible to a reader."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".model-", dir=directory.parent))
    try:
        np.savez(staging / ARRAYS, **arrays)
        (staging / VOCAB).write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        (staging / MANIFEST).write_text(
            json.dumps({"format": FORMAT, **manifest}, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        old = directory.with_name(directory.name + ".old")
        if directory.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
        os.replace(staging, directory)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_manifest(directory: Path) -> dict | None:
    """The manifest of the cached model, or None when there is no usable one."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("format") == FORMAT else None


def load_model(directory: Path) -> tuple[dict[str, np.ndarray], dict, dict]:
    """(arrays, vocabulary, manifest) of the cached model; ModelError if unusable."""
    manifest = read_manifest(directory)
    if manifest is None:
        raise ModelError(f"no model in {directory}")
    try:
        with np.load(directory / ARRAYS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        vocab = json.loads((directory / VOCAB).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"model files in {directory} are unreadable: {exc}") from None
    return arrays, vocab, manifest
