"""Turn normalised text into the word and character features the model reads.

Words come from jieba's dictionary and algorithm. The default backend is rjieba (the
jieba-rs binding): the same segmentation about twenty times faster, and its dictionary is
ready in under 0.1 s where jieba needs 0.6 s (see BENCHMARKS.md). ``FANZHA_TOKENIZER=jieba``
switches to the pure-Python original. Both get the domain dictionary (scam vocabulary from
intents.yaml) so that 安全账户 or 刷流水 stay one word.

The analysers are plain callables so that scikit-learn's vectorisers (training) and the
lean scorer (serving) share exactly the same code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

#: Character n-gram lengths used by the model.
CHAR_NGRAMS = (1, 3)
#: Bump when feature extraction or the stored model format changes, so cached models are rebuilt.
FEATURE_VERSION = 2

_DIGITS = re.compile(r"\d+")
_WORD_CHARS = re.compile(r"\w")
_KEEP_PUNCT = set("?？!！¥￥%@")


def digit_class(token: str) -> str:
    """Collapse a number to its length class: 13812345678 and 13987654321 read the same."""
    n = len(token)
    if n >= 11:
        return "<num11+>"
    if n >= 7:
        return "<num7>"
    if n >= 4:
        return "<num4>"
    return "<num>"


_rjieba_default_claimed = False


def _rjieba_engine():
    """An rjieba segmenter of this tokenizer's own.

    Importing rjieba already builds a default segmenter (about 0.1 s, a fifth of the
    start-up budget), reachable through the module's ``cut`` and ``add_word``. The first
    tokenizer in a process takes that one; later ones build their own, so that domain
    words added by one never leak into another.
    """
    global _rjieba_default_claimed
    import rjieba

    if _rjieba_default_claimed:
        return rjieba.Jieba()
    _rjieba_default_claimed = True
    return rjieba


class Tokenizer:
    """A jieba-compatible word segmenter with the domain dictionary loaded."""

    def __init__(self, backend: str | None = None, domain_words: Iterable[str] = ()) -> None:
        self.backend = (backend or os.environ.get("FANZHA_TOKENIZER") or "rjieba").lower()
        if self.backend == "rjieba":
            self._engine = _rjieba_engine()
            for word in domain_words:
                self._engine.add_word(word, 2000, None)
            self._cut = lambda text: self._engine.cut(text, False)
        elif self.backend == "jieba":
            import logging

            import jieba

            logging.getLogger("jieba").setLevel(logging.WARNING)
            self._engine = jieba.Tokenizer()
            for word in domain_words:
                self._engine.add_word(word, 2000)
            self._cut = lambda text: self._engine.lcut(text, HMM=False)
        else:
            raise ValueError(f"unknown tokenizer {self.backend!r}: use 'rjieba' or 'jieba'")

    def cut(self, text: str) -> list[str]:
        """Segment *text* into words (no HMM: new-word guessing adds noise, not recall)."""
        return self._cut(text)


class WordAnalyzer:
    """Words of a normalised text, with numbers reduced to their length class."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    def __call__(self, text: str) -> list[str]:
        out: list[str] = []
        for token in self.tokenizer.cut(text.lower()):
            token = token.strip()
            if not token:
                continue
            if token.isdigit():
                out.append(digit_class(token))
            elif _WORD_CHARS.search(token) or token in _KEEP_PUNCT:
                out.append(token)
        return out


class CharAnalyzer:
    """Character n-grams (1..3) with digits folded to 0, robust to unseen words and typos."""

    def __init__(self, ngram_range: tuple[int, int] = CHAR_NGRAMS) -> None:
        self.ngram_range = ngram_range

    def __call__(self, text: str) -> list[str]:
        text = self.prepare(text)
        low, high = self.ngram_range
        n_chars = len(text)
        grams: list[str] = []
        for n in range(low, high + 1):
            grams.extend(text[i : i + n] for i in range(n_chars - n + 1))
        return [g for g in grams if not g.isspace()]

    @staticmethod
    def prepare(text: str) -> str:
        """The text the grams are cut from: lower case, every digit run folded to one 0."""
        return _DIGITS.sub("0", text.lower())
