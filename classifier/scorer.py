"""Score messages with exported weights: the serving path, with no scikit-learn import.

Calling a scikit-learn pipeline on one message costs 600-900 µs of validation overhead and
importing scikit-learn costs about a second. The arithmetic is tiny: TF-IDF for the few
features a message has, a row gather from the weight matrix, a softmax. This module does
exactly that with numpy, reproducing the pipeline's probabilities (a test checks it).

Everything works on a batch of messages at once: numpy's cost is per call, not per element,
so a batch of 256 costs little more than one message in each stage (a single message is a
batch of one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from classifier.tokens import CharAnalyzer, Tokenizer, WordAnalyzer, digit_class

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


@dataclass(frozen=True)
class Tokens:
    """Known word features and every character gram of a batch, each tagged with its row."""

    rows: int
    word_rows: np.ndarray
    word_ids: np.ndarray
    gram_rows: np.ndarray
    gram_keys: np.ndarray


@dataclass(frozen=True)
class Features:
    """TF-IDF rows of a batch in compressed sparse row form: row ``i`` is
    ``indices[indptr[i]:indptr[i + 1]]`` with ``values`` alongside."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return self.indptr.size - 1

    def row_sizes(self) -> np.ndarray:
        return self.indptr[1:] - self.indptr[:-1]


class Scorer:
    """Per-class probabilities of normalised texts, from a model's exported arrays."""

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        vocab: dict[str, list[str]],
        tokenizer: Tokenizer,
        char_ngrams: tuple[int, int],
    ) -> None:
        self.classes: list[str] = list(vocab["classes"])
        terms = [t.strip() for t in list(vocab["words"]) + list(vocab["chars"])]
        self._terms = terms
        # Terms a resident can read as a reason: not single characters or number classes.
        readable = (len(t) >= 2 and not t.startswith("<") for t in terms)
        self._readable = np.fromiter(readable, dtype=bool, count=len(terms))
        self._words = {t: i for i, t in enumerate(vocab["words"])}
        self._n_words = len(self._words)
        self._n_features = len(terms)
        self._char_keys = arrays["char_keys"]
        self._char_index = arrays["char_index"] + self._n_words  # char features follow the words
        self._idf = np.concatenate([arrays["word_idf"], arrays["char_idf"]]).astype(np.float32)
        self._weights = arrays["weights"]
        self._intercept = arrays["intercept"]
        self._beta = float(arrays["beta"][0])
        self._cut = tokenizer.cut
        self.word_analyzer = WordAnalyzer(tokenizer)
        self.char_analyzer = CharAnalyzer(char_ngrams)

    # Stage 1 ------------------------------------------------------------------------------
    def tokens(self, texts: Sequence[str]) -> Tokens:
        """The known words of each normalised text and all its character grams as integer keys.

        Equivalent to :class:`WordAnalyzer` followed by a vocabulary lookup (the test against
        the scikit-learn pipeline checks it), without building the analyser's word list:
        tokens it drops (blank, punctuation) are never in the vocabulary anyway.
        """
        get = self._words.get
        word_rows: list[int] = []
        word_ids: list[int] = []
        prepared: list[str] = []
        for row, text in enumerate(texts):
            for token in self._cut(text.lower()):
                index = get(digit_class(token) if token.isdigit() else token)
                if index is not None:
                    word_rows.append(row)
                    word_ids.append(index)
            prepared.append(self.char_analyzer.prepare(text))
        # One string for the whole batch; "\0" (never in normalised text) ends each message,
        # so a gram across two messages contains it and matches nothing in the vocabulary.
        joined = "\0".join(prepared)
        keys = gram_keys(joined, self.char_analyzer.ngram_range)
        lengths = np.fromiter(map(len, prepared), dtype=np.int64, count=len(prepared))
        row_of_position = np.repeat(np.arange(len(prepared), dtype=np.int64), lengths + 1)[: len(joined)]
        low, high = self.char_analyzer.ngram_range
        blocks = [np.arange(len(joined) - n + 1) for n in range(low, min(high, len(joined)) + 1)]
        starts = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int64)
        return Tokens(
            rows=len(texts),
            word_rows=np.array(word_rows, dtype=np.int64),
            word_ids=np.array(word_ids, dtype=np.int64),
            gram_rows=row_of_position[starts],
            gram_keys=keys,
        )

    # Stage 2 ------------------------------------------------------------------------------
    def vector(self, tokens: Tokens) -> Features:
        """Sublinear TF-IDF of the known features, each row's word and character blocks
        L2-normalised separately, as the training pipeline's FeatureUnion does."""
        pos = self._char_keys.searchsorted(tokens.gram_keys)
        pos[pos == self._char_keys.size] = 0
        known = self._char_keys[pos] == tokens.gram_keys if self._char_keys.size else np.zeros(pos.size, dtype=bool)
        rows = np.concatenate([tokens.word_rows, tokens.gram_rows[known]])
        features = np.concatenate([tokens.word_ids, self._char_index[pos[known]]])
        # Count each (row, feature) pair: one sort of row * n_features + feature.
        pairs, counts = np.unique(rows * self._n_features + features, return_counts=True)
        rows, indices = np.divmod(pairs, self._n_features)
        values = (np.log(counts.astype(np.float32)) + np.float32(1.0)) * self._idf[indices]
        block = rows * 2 + (indices >= self._n_words)
        norms = np.sqrt(np.bincount(block, weights=values * values, minlength=2 * tokens.rows))
        values = (values / norms[block]).astype(np.float32)
        indptr = rows.searchsorted(np.arange(tokens.rows + 1))
        return Features(indptr, indices, values)

    def features(self, texts: Sequence[str]) -> Features:
        """TF-IDF rows of normalised *texts* (stages 1 and 2)."""
        return self.vector(self.tokens(texts))

    # Stage 3 ------------------------------------------------------------------------------
    def probabilities(self, features: Features) -> np.ndarray:
        """Calibrated class probabilities, one row per message (temperature-scaled softmax of
        the SVM margins); a row without known features gets the intercept's."""
        decision = np.tile(self._intercept.astype(np.float64), (len(features), 1))
        filled = np.flatnonzero(features.row_sizes())
        if filled.size:
            contribution = features.values[:, None] * self._weights[features.indices]
            decision[filled] += np.add.reduceat(contribution, features.indptr[filled], axis=0)
        logits = self._beta * decision
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def top_terms(self, features: Features, labels: Sequence[str], limit: int = 5) -> list[list[str]]:
        """For each row, the readable terms that pushed most towards its label, longest
        first where they overlap."""
        sizes = features.row_sizes()
        rows = np.repeat(np.arange(len(features)), sizes)
        label_of_row = np.array([self.classes.index(label) for label in labels], dtype=np.int64)
        contribution = features.values * self._weights[features.indices, label_of_row[rows]]
        keep = np.flatnonzero((contribution > 0) & self._readable[features.indices])
        order = keep[np.lexsort((-contribution[keep], rows[keep]))]
        # Overlaps are dropped, so a few more candidates than *limit* are enough: keep each
        # row's strongest 8 * limit (their rank is their place after the row's first).
        ranked = rows[order]
        first = np.flatnonzero(np.concatenate(([True], ranked[1:] != ranked[:-1])))
        rank = np.arange(order.size) - np.repeat(first, np.diff(np.append(first, order.size)))
        order = order[rank < 8 * limit]
        chosen: list[list[str]] = [[] for _ in range(len(features))]
        terms = self._terms
        for row, index in zip(rows[order].tolist(), features.indices[order].tolist(), strict=True):
            picked = chosen[row]
            if len(picked) == limit:
                continue
            term = terms[index]
            if any(term in c for c in picked):
                continue
            chosen[row] = [c for c in picked if c not in term] + [term]
        return chosen
