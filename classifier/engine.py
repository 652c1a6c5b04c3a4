"""The classifier as the rest of the project sees it: text in, :class:`Verdict` out.

``Classifier.open`` finds the cached model, rebuilds it when its inputs changed (that step
alone needs scikit-learn) and then scores with numpy only, so answering starts fast.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from classifier.corpus import inputs_digest
from classifier.entities import extract_entities
from classifier.hyperparameters import fingerprint
from classifier.knowledge import Knowledge, load_knowledge
from classifier.model_store import ModelError, load_model, read_manifest
from classifier.normalize import MAX_CHARS, normalize
from classifier.red_flags import find_red_flags
from classifier.scorer import Scorer
from classifier.tokens import Tokenizer
from classifier.verdict import Verdict, decide

DEFAULT_BACKEND = "rjieba"


def model_key(knowledge: Knowledge, backend: str, extra: Iterable[Path] = ()) -> str:
    """Identity of a model: its training inputs, its pinned settings and the tokenizer."""
    base = inputs_digest(knowledge, [Path(p) for p in extra])
    return hashlib.sha256(f"{base}:{fingerprint()}:{backend}".encode()).hexdigest()


class Classifier:
    """Classifies messages with the cached model and the knowledge base's red flags."""

    def __init__(self, knowledge: Knowledge, scorer: Scorer, manifest: dict) -> None:
        self.knowledge = knowledge
        self.scorer = scorer
        self.manifest = manifest

    @property
    def model_version(self) -> str:
        return str(self.manifest.get("version", ""))

    @classmethod
    def open(
        cls,
        model_dir: Path,
        *,
        knowledge: Knowledge | None = None,
        backend: str | None = None,
        extra: Iterable[Path] | None = None,
        auto_train: bool = True,
        on_train: Callable[[], None] | None = None,
        force_train: bool = False,
    ) -> Classifier:
        """Load the model in *model_dir*, training it first if absent or stale."""
        knowledge = knowledge or load_knowledge()
        backend = (backend or os.environ.get("FANZHA_TOKENIZER") or DEFAULT_BACKEND).lower()
        manifest = read_manifest(model_dir)
        if extra is None:
            # Keep the reviewed files the last training used, while they exist.
            extra = [Path(p) for p in (manifest or {}).get("extra", []) if Path(p).exists()]
        extra = list(extra)
        key = model_key(knowledge, backend, extra)
        if force_train or manifest is None or manifest.get("key") != key:
            if not auto_train:
                raise ModelError(f"the model in {model_dir} is missing or out of date: run `fanzha train`")
            if on_train:
                on_train()
            from classifier.training import train_model

            train_model(knowledge, model_dir, backend=backend, key=key, extra=extra)
        arrays, vocab, manifest = load_model(model_dir)
        tokenizer = Tokenizer(backend, knowledge.domain_words())
        scorer = Scorer(arrays, vocab, tokenizer, tuple(manifest["char_ngrams"]))
        return cls(knowledge, scorer, manifest)

    def classify(self, text: str) -> Verdict:
        """Verdict for one message (any string; empty text gives an ``uncertain`` verdict)."""
        clean = normalize(text)
        idx, values = self.scorer.features(clean)
        probs = self.scorer.probabilities(idx, values)
        scores = dict(zip(self.scorer.classes, (float(p) for p in probs), strict=True))
        entities = extract_entities(clean)
        reasons = find_red_flags(clean, entities, self.knowledge)
        if not idx.size:
            # Nothing the model knows: it must not guess.
            label, category, is_fraud, confidence, p_fraud, risk = "uncertain", "benign", False, 0.0, 0.0, "low"
        else:
            label, category, is_fraud, confidence, p_fraud, risk = decide(scores, reasons)
        return Verdict(
            label=label,
            category=category,
            is_fraud=is_fraud,
            confidence=confidence,
            fraud_probability=p_fraud,
            risk=risk,
            scores=scores,
            reasons=reasons,
            top_terms=self.scorer.top_terms(idx, values, category),
            entities=entities,
            truncated=len(text) > MAX_CHARS,
            model_version=self.model_version,
        )

    def classify_many(self, texts: Iterable[str]) -> Iterator[Verdict]:
        for text in texts:
            yield self.classify(text)
