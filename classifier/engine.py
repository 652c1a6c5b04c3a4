"""The classifier as the rest of the project sees it: text in, :class:`Verdict` out.

``Classifier.open`` finds the cached model, rebuilds it when its inputs changed (that step
alone needs scikit-learn) and then scores with numpy only, so answering starts fast.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
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
        return self.classify_many([text])[0]

    def classify_many(self, texts: Sequence[str]) -> list[Verdict]:
        """Verdicts for a batch of messages, in order: the model's arithmetic runs once for
        the whole batch, which is what makes ``fanzha classify`` fast."""
        clean = [normalize(text) for text in texts]
        features = self.scorer.features(clean)
        probabilities = self.scorer.probabilities(features).tolist()
        empty = (features.row_sizes() == 0).tolist()
        decisions = []
        for cleaned, probs, nothing_known in zip(clean, probabilities, empty, strict=True):
            scores = dict(zip(self.scorer.classes, probs, strict=True))
            entities = extract_entities(cleaned)
            reasons = find_red_flags(cleaned, entities, self.knowledge)
            # With no feature the model knows, it must not guess.
            decision = ("uncertain", "benign", False, 0.0, 0.0, "low") if nothing_known else decide(scores, reasons)
            decisions.append((decision, scores, entities, reasons))
        top_terms = self.scorer.top_terms(features, [d[0][1] for d in decisions])
        return [
            Verdict(
                label=label,
                category=category,
                is_fraud=is_fraud,
                confidence=confidence,
                fraud_probability=p_fraud,
                risk=risk,
                scores=scores,
                reasons=reasons,
                top_terms=terms,
                entities=entities,
                truncated=len(text) > MAX_CHARS,
                model_version=self.model_version,
            )
            for text, ((label, category, is_fraud, confidence, p_fraud, risk), scores, entities, reasons), terms in zip(
                texts, decisions, top_terms, strict=True
            )
        ]
