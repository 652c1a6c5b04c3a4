"""Score messages with exported weights: the serving path, with no scikit-learn import.

Calling a scikit-learn pipeline on one message costs 600-900 µs of validation overhead and
importing scikit-learn costs about a second. The arithmetic is tiny: TF-IDF for the few
features a message has, a row gather from the weight matrix, a softmax. This module does
exactly that with numpy, reproducing the pipeline's probabilities (a test checks it).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from classifier.tokens import CharAnalyzer, Tokenizer, WordAnalyzer

_EMPTY_IDX = np.zeros(0, dtype=np.int64)
_EMPTY_VAL = np.zeros(0, dtype=np.float32)


class Scorer:
    """Per-class probabilities of a normalised text, from a model's exported arrays."""

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        vocab: dict[str, list[str]],
        tokenizer: Tokenizer,
        char_ngrams: tuple[int, int],
    ) -> None:
        self.classes: list[str] = list(vocab["classes"])
        self._terms = list(vocab["words"]) + list(vocab["chars"])
        self._words = {t: i for i, t in enumerate(vocab["words"])}
        self._offset = len(self._words)
        self._chars = {t: i + self._offset for i, t in enumerate(vocab["chars"])}
        self._idf = np.concatenate([arrays["word_idf"], arrays["char_idf"]]).astype(np.float32)
        self._weights = arrays["weights"]
        self._intercept = arrays["intercept"]
        self._beta = float(arrays["beta"][0])
        self.word_analyzer = WordAnalyzer(tokenizer)
        self.char_analyzer = CharAnalyzer(char_ngrams)

    def _block(self, tokens: list[str], vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
        # Counting in C first (Counter) and looking up each distinct token once halves the
        # cost of a typical message, whose 1-3 character grams repeat (BENCHMARKS.md).
        counts: dict[int, int] = {}
        for token, n in Counter(tokens).items():
            index = vocab.get(token)
            if index is not None:
                counts[index] = n
        if not counts:
            return _EMPTY_IDX, _EMPTY_VAL
        idx = np.fromiter(counts, dtype=np.int64, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        values = (np.log(tf) + 1.0) * self._idf[idx]
        values /= math.sqrt(float(values @ values))
        return idx, values

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Indices and TF-IDF values of *text*'s known features (each block L2-normalised)."""
        w_idx, w_val = self._block(self.word_analyzer(text), self._words)
        c_idx, c_val = self._block(self.char_analyzer(text), self._chars)
        return np.concatenate([w_idx, c_idx]), np.concatenate([w_val, c_val])

    def probabilities(self, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities (temperature-scaled softmax of SVM margins)."""
        decision = values @ self._weights[idx] + self._intercept if idx.size else self._intercept
        logits = self._beta * decision.astype(np.float64)
        logits -= logits.max()
        exp = np.exp(logits)
        return exp / exp.sum()

    def top_terms(self, idx: np.ndarray, values: np.ndarray, label: str, limit: int = 5) -> list[str]:
        """The words that pushed most towards *label*, longest first where they overlap."""
        if not idx.size:
            return []
        k = self.classes.index(label)
        contribution = values * self._weights[idx, k]
        chosen: list[str] = []
        for position in np.argsort(-contribution):
            if contribution[position] <= 0 or len(chosen) == limit:
                break
            term = self._terms[idx[position]].strip()
            if len(term) < 2 or term.startswith("<") or any(term in c for c in chosen):
                continue
            chosen = [c for c in chosen if c not in term] + [term]
        return chosen
