"""Build the model from the repo's training files and write it to the model cache."""

from __future__ import annotations

import platform
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from classifier.corpus import load_corpus
from classifier.knowledge import Knowledge
from classifier.model_store import save_model
from classifier.tokens import CHAR_NGRAMS, FEATURE_VERSION, Tokenizer


def train_model(knowledge: Knowledge, model_dir: Path, *, backend: str, key: str, extra: Iterable[Path] = ()) -> dict:
    """Fit the pipeline on the whole corpus, export it and save it; returns the manifest."""
    import numpy
    import sklearn

    from classifier.pipeline import build_pipeline, export_weights

    extra = [Path(p) for p in extra]
    started = time.perf_counter()
    examples = load_corpus(knowledge, extra)
    tokenizer = Tokenizer(backend, knowledge.domain_words())
    pipeline = build_pipeline(tokenizer)
    pipeline.fit([e.text for e in examples], [e.label for e in examples])
    arrays, vocab = export_weights(pipeline)
    manifest = {
        "key": key,
        "version": key[:12],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "tokenizer": tokenizer.backend,
        "feature_version": FEATURE_VERSION,
        "char_ngrams": list(CHAR_NGRAMS),
        "extra": [str(p) for p in extra],
        "examples": dict(sorted(Counter(e.label for e in examples).items())),
        "features": {"words": len(vocab["words"]), "chars": len(vocab["chars"])},
        "train_seconds": round(time.perf_counter() - started, 2),
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "numpy": numpy.__version__,
        },
    }
    save_model(model_dir, arrays, vocab, manifest)
    return manifest
