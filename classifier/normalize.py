"""Undo the disguises scammers put on text before anything reads it.

Scam texts are written to slip past keyword filters: full-width or Chinese-numeral digits,
spaces and emoji between characters, traditional characters, "V信" for 微信. Every later
step (features, red flags, entities) works on the output of :func:`normalize`, so the
classifier sees one spelling of each word.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

#: Longest text (in characters) that is analysed; the rest of a huge paste adds nothing.
MAX_CHARS = 6000

_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\u00ad]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CJK = r"\u3400-\u9fff"
# Symbols and emoji a scammer drops between two Chinese characters ("加 微 信", "返💰利").
_SEPARATORS = (
    r"[\s.\-_·•*#~|/\\^`'\"+=<>()\[\]{}"
    r"\u2000-\u206f\u2190-\u2bff\u3000\u30fb\ufe10-\ufe6f\U0001F000-\U0001FAFF\ufe0f]{1,3}"
)
_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}]){_SEPARATORS}(?=[{_CJK}])")
_BETWEEN_DIGITS = re.compile(r"(?<=\d)[ \-](?=\d)")
_SPACES = re.compile(r"[ \t\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")

_CN_DIGITS = str.maketrans("零〇一二三四五六七八九幺壹贰叁肆伍陆柒捌玖", "001234567891123456789")
# Five or more Chinese numerals in a row are a number written to dodge filters
# (一三八…), never ordinary prose.
_CN_NUMBER_RUN = re.compile(r"[零〇一二三四五六七八九幺壹贰叁肆伍陆柒捌玖]{5,}")

_CONTACT_APPS = [
    (re.compile(r"(?:[vVｖ](?:[xX]|信|芯|❤|心)|薇信|威信|维信|徽信|微芯|微心|溦信|wei信|weixin|wechat)"), "微信"),
    (re.compile(r"(?:扣扣|抠抠|企鹅号|企鹅|扣Q|q扣|(?<![a-z])qq(?![a-z]))", re.IGNORECASE), "QQ"),
]


@lru_cache(maxsize=1)
def _t2s():
    """The OpenCC traditional-to-simplified converter, built once (it costs ~10 ms)."""
    import opencc

    return opencc.OpenCC("t2s")


def normalize(text: str) -> str:
    """Return one canonical spelling of *text* for features, red flags and entities."""
    if not text:
        return ""
    text = text[:MAX_CHARS]
    text = _CONTROL.sub(" ", _INVISIBLE.sub("", text))
    text = unicodedata.normalize("NFKC", text)
    text = _t2s().convert(text).replace("帐", "账")  # OpenCC keeps the 帐户 variant
    text = _CN_NUMBER_RUN.sub(lambda m: m.group(0).translate(_CN_DIGITS), text)
    text = _BETWEEN_CJK.sub("", text)
    text = _BETWEEN_DIGITS.sub("", text)
    for pattern, canonical in _CONTACT_APPS:
        text = pattern.sub(canonical, text)
    text = _SPACES.sub(" ", text)
    text = _BLANK_LINES.sub("\n", text)
    return text.strip()


def has_content(text: str) -> bool:
    """True when *text* has at least one letter, digit or Chinese character to judge."""
    return any(ch.isalnum() for ch in text)


def chinese_share(text: str) -> float:
    """Share of letters in *text* that are Chinese characters (0.0 when there are none)."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for ch in letters if "\u3400" <= ch <= "\u9fff") / len(letters)
