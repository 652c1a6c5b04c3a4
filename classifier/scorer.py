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

_BITS = 21  # code points (plus one) fit in 21 bits, so three of them fit in one uint64


def _code_points(text: str) -> np.ndarray:
    """Each character's code point plus one (so no key part is ever zero), as uint64."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64) + np.uint64(1)


def _combine(columns: list[np.ndarray]) -> np.ndarray:
    """Key of grams whose i-th characters are ``columns[i]``: (c1 << 42) | (c2 << 21) | c3."""
    key = columns[0].copy()
    for column in columns[1:]:
        key = (key << np.uint64(_BITS)) | column
    return key


def gram_keys(text: str, ngram_range: tuple[int, int]) -> np.ndarray:
    """One uint64 per character n-gram of *text*, unique per gram (see :func:`_combine`)."""
    points = _code_points(text)
    low, high = ngram_range
    size = points.size
    blocks = [_combine([points[k : size - n + 1 + k] for k in range(n)]) for n in range(low, min(high, size) + 1)]
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.uint64)


def gram_table(grams: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Sorted gram keys and the position of each gram in *grams*, for :meth:`Scorer._char_block`.

    Built at training time and stored with the model; vectorised per gram length, because a
    Python loop over 100,000 grams costs seconds."""
    keys = np.zeros(len(grams), dtype=np.uint64)
    lengths = np.fromiter(map(len, grams), dtype=np.int64, count=len(grams))
    for n in (int(n) for n in np.unique(lengths)):
        where = np.flatnonzero(lengths == n)
        points = _code_points("".join(grams[i] for i in where)).reshape(-1, n)
        keys[where] = _combine([points[:, k] for k in range(n)])
    order = np.argsort(keys)
    return keys[order], order.astype(np.int64)


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
        self._char_keys = arrays["char_keys"]
        self._char_index = arrays["char_index"] + len(self._words)  # char features follow the words
        self._idf = np.concatenate([arrays["word_idf"], arrays["char_idf"]]).astype(np.float32)
        self._weights = arrays["weights"]
        self._intercept = arrays["intercept"]
        self._beta = float(arrays["beta"][0])
        self.word_analyzer = WordAnalyzer(tokenizer)
        self.char_analyzer = CharAnalyzer(char_ngrams)

    def tokens(self, text: str) -> tuple[list[str], np.ndarray]:
        """The words of normalised *text* and its character grams as integer keys (stage 1)."""
        return self.word_analyzer(text), gram_keys(self.char_analyzer.prepare(text), self.char_analyzer.ngram_range)

    def vector(self, words: list[str], keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices and TF-IDF values of the known features among *words* and gram *keys*
        (each block L2-normalised, as the training pipeline does): stage 2."""
        counts: dict[int, int] = {}
        for word, n in Counter(words).items():
            index = self._words.get(word)
            if index is not None:
                counts[index] = n
        w_idx, w_val = self._weigh(
            np.fromiter(counts, dtype=np.int64, count=len(counts)),
            np.fromiter(counts.values(), dtype=np.int64, count=len(counts)),
        )
        c_idx, c_val = self._char_block(keys)
        return np.concatenate([w_idx, c_idx]), np.concatenate([w_val, c_val])

    def features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Indices and TF-IDF values of normalised *text*'s known features."""
        return self.vector(*self.tokens(text))

    def _char_block(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Character grams as integers, counted by a sort and looked up by binary search in
        # one sorted array: no per-gram Python string is made or hashed, which was most of
        # the serving cost (BENCHMARKS.md).
        if not keys.size or not self._char_keys.size:
            return _EMPTY_IDX, _EMPTY_VAL
        keys = keys.copy()
        keys.sort()  # methods, not np.sort & co: numpy's function wrappers cost more than the work here
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        unique = keys[starts]
        counts = np.diff(np.append(starts, keys.size))
        pos = self._char_keys.searchsorted(unique)
        pos[pos == self._char_keys.size] = 0
        known = self._char_keys[pos] == unique
        return self._weigh(self._char_index[pos[known]], counts[known])

    def _weigh(self, idx: np.ndarray, tf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sublinear TF-IDF, L2-normalised, of distinct feature indices and their counts."""
        if not idx.size:
            return _EMPTY_IDX, _EMPTY_VAL
        values = (np.log(tf.astype(np.float32)) + np.float32(1.0)) * self._idf[idx]
        values /= math.sqrt(float(values @ values))
        return idx, values

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
        # Only the strongest few can be chosen: sort those, not every feature of the message.
        strongest = np.flatnonzero(contribution > 0)
        if strongest.size > 8 * limit:
            strongest = strongest[(-contribution[strongest]).argpartition(8 * limit)[: 8 * limit]]
        chosen: list[str] = []
        for position in strongest[(-contribution[strongest]).argsort()]:
            if len(chosen) == limit:
                break
            term = self._terms[idx[position]].strip()
            if len(term) < 2 or term.startswith("<") or any(term in c for c in chosen):
                continue
            chosen = [c for c in chosen if c not in term] + [term]
        return chosen
