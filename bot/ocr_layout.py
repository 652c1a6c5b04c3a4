"""From OCR boxes to the message a screenshot shows: reading order, bubbles apart, chrome dropped.

An OCR engine returns loose text boxes. Fed to the classifier as they come, a screenshot reads
"19:48 中国移动 4G 65% < 微信 +86 165… 星期二 16:31 我是市公安局… 按住 说话": the clock,
the battery and the input box dilute the message and a wrapped sentence is cut in two. Here
boxes become rows (same height on screen), rows become bubbles (close together and aligned on
the same left edge), and rows that are phone or app chrome are dropped by position *and*
pattern, so a cropped screenshot that starts with message text loses nothing.

Pure geometry and regular expressions: no image library, testable with hand-made boxes.
"""

from __future__ import annotations

import itertools
import re
import statistics
from dataclasses import dataclass, field

#: Android and iOS lay screens out in density-independent points: a phone is ~360 of them wide.
PHONE_WIDTH_DP = 360
#: The status bar sits in this many points at the top; header (title bar) below it.
STATUS_BAR_DP = 40
HEADER_BOTTOM_DP = 92
#: Characters a status-bar row may hold besides its clock, battery and carrier (misread icons).
STATUS_LEFTOVER = 4
#: The input bar (and the home indicator) at the bottom.
INPUT_BAR_DP = 72

_TIME = r"(?:[上下]午|凌晨|早上|晚上)?\s?\d{1,2}[:：]\d{2}"
_DATE = r"(?:\d{4}年)?\d{1,2}月\d{1,2}日|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/]\d{1,2}"
_DAY = r"昨天|前天|今天|星期[一二三四五六日天]|周[一二三四五六日天]"
#: A row that is only a time or date: the status bar clock or a timestamp between bubbles.
TIMESTAMP = re.compile(rf"^\s*(?:(?:{_DATE}|{_DAY})\s*)?(?:{_TIME})?\s*$")
#: Things only a status bar shows: battery, network, carrier, signal and Wi-Fi glyphs.
STATUS_BITS = re.compile(
    r"\d{1,3}\s?%|\b[2345]G\b|\bLTE\b|\bHD\b|VoLTE|Wi-?Fi|中国(?:移动|联通|电信|广电)|\bCMCC\b|"
    r"\bK/s\b|\bB/s\b|无服务|仅限紧急呼叫|" + _TIME,
    re.IGNORECASE,
)
#: Title-bar words and symbols (back arrow, app name, menu dots).
HEADER_CHROME = re.compile(
    r"^\s*(?:[<＜‹〈←]\s*)?(?:微信|信息|短信|消息|返回|聊天信息|通讯录)?\s*(?:\(\d+\))?\s*$|^[·.…⋯]+$"
)
#: Input-bar words: WeChat's voice button and input box, SMS apps' hints, the send key.
INPUT_CHROME = re.compile(
    r"^\s*(?:按住\s?说话|发送|短信/?彩信|短信|信息|彩信|iMessage|文本信息|输入消息|发消息|[+＋⊕☺😊])\s*$", re.IGNORECASE
)
_CJK = re.compile(r"[\u3400-\u9fff]")
#: Symbol-only rows (icons read as text) say nothing to the classifier.
SYMBOLS_ONLY = re.compile(r"^[\W_]{1,3}$")


@dataclass(frozen=True)
class TextBox:
    """One piece of text the OCR engine found, with its box in image pixels."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0

    @property
    def height(self) -> float:
        return max(1.0, self.y1 - self.y0)

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    @classmethod
    def from_quad(cls, quad, text: str, score: float = 1.0) -> TextBox:
        """From the four corner points most engines return."""
        xs = [float(p[0]) for p in quad]
        ys = [float(p[1]) for p in quad]
        return cls(text, min(xs), min(ys), max(xs), max(ys), float(score))


@dataclass
class Row:
    """Boxes side by side on one line of the screen."""

    boxes: list[TextBox] = field(default_factory=list)

    @property
    def x0(self) -> float:
        return min(b.x0 for b in self.boxes)

    @property
    def x1(self) -> float:
        return max(b.x1 for b in self.boxes)

    @property
    def y0(self) -> float:
        return min(b.y0 for b in self.boxes)

    @property
    def y1(self) -> float:
        return max(b.y1 for b in self.boxes)

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def height(self) -> float:
        return statistics.median(b.height for b in self.boxes)

    @property
    def text(self) -> str:
        ordered = sorted(self.boxes, key=lambda b: b.x0)
        out = ordered[0].text.strip()
        for prev, box in itertools.pairwise(ordered):
            gap = box.x0 - prev.x1
            out += (" " if gap > 0.5 * min(prev.height, box.height) else "") + box.text.strip()
        return out


@dataclass(frozen=True)
class Layout:
    """The screenshot's message: bubbles (each one line of text) and what was dropped."""

    bubbles: tuple[str, ...]
    lines: tuple[str, ...]
    dropped: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return "\n".join(self.bubbles)


def assemble(boxes: list[TextBox], width: int, height: int) -> Layout:
    """Boxes from one screenshot of *width* x *height* pixels -> its message, in reading order."""
    rows = group_rows([b for b in boxes if b.text.strip()])
    kept, dropped = drop_chrome(rows, width, height)
    bubbles = group_bubbles(kept)
    return Layout(
        bubbles=tuple(join_wrapped([r.text for r in bubble]) for bubble in bubbles),
        lines=tuple(r.text for r in kept),
        dropped=tuple(r.text for r in dropped),
    )


def group_rows(boxes: list[TextBox]) -> list[Row]:
    """Boxes that overlap vertically by at least half the smaller one's height share a row."""
    rows: list[Row] = []
    for box in sorted(boxes, key=lambda b: (b.cy, b.x0)):
        row = rows[-1] if rows else None
        if row is not None:
            overlap = min(row.y1, box.y1) - max(row.y0, box.y0)
            if overlap >= 0.5 * min(row.height, box.height):
                row.boxes.append(box)
                continue
        rows.append(Row([box]))
    return rows


def drop_chrome(rows: list[Row], width: int, height: int) -> tuple[list[Row], list[Row]]:
    """Split rows into message rows and phone/app chrome (status bar, title bar, input bar)."""
    dp = width / PHONE_WIDTH_DP
    status = [r for r in rows if r.cy < STATUS_BAR_DP * dp and _is_status_bar(r.text)]
    header_bottom = (max(r.y1 for r in status) + (HEADER_BOTTOM_DP - STATUS_BAR_DP) * dp) if status else 0.0
    kept: list[Row] = []
    dropped: list[Row] = []
    for row in rows:
        text = row.text
        chrome = (
            row in status
            or row.cy < header_bottom
            or (row.cy < HEADER_BOTTOM_DP * dp and HEADER_CHROME.match(text) is not None)
            or (row.cy > height - INPUT_BAR_DP * dp and _is_input_chrome(row))
            or TIMESTAMP.match(text) is not None
            or SYMBOLS_ONLY.match(text) is not None
        )
        (dropped if chrome else kept).append(row)
    return kept, dropped


def _is_status_bar(text: str) -> bool:
    """Status-bar bits and little else (a message line mentioning 9:30 has words around it)."""
    if not STATUS_BITS.search(text):
        return False
    rest = STATUS_BITS.sub("", text)
    return len(re.sub(r"[\W_]", "", rest)) <= STATUS_LEFTOVER


def _is_input_chrome(row: Row) -> bool:
    """Input-bar words, with at most icons misread as a letter or two beside them (a sentence is a message)."""
    words = [_without_icons(b.text) for b in row.boxes]
    return any(words) and all(not w or INPUT_CHROME.match(w) for w in words)


def _without_icons(text: str) -> str:
    """Drop the one- or two-character Latin/symbol tokens icons become in OCR ("O", "+", "©")."""
    return " ".join(t for t in text.split() if len(t) > 2 or _CJK.search(t))


def group_bubbles(rows: list[Row]) -> list[list[Row]]:
    """Consecutive rows form one bubble when close together and starting at the same left edge.

    Inside a bubble, lines are about a quarter of a line height apart and left-aligned; between
    bubbles there is padding twice over plus a margin, and left and right bubbles start at
    different x.
    """
    if not rows:
        return []
    line = statistics.median(r.height for r in rows)
    bubbles: list[list[Row]] = [[rows[0]]]
    for prev, row in itertools.pairwise(rows):
        gap = row.y0 - prev.y1
        aligned = abs(row.x0 - prev.x0) <= 0.8 * line
        # Detected boxes of one font vary by a third in height ("费。" vs a full line); a name
        # label or a heading differs more.
        size = statistics.median(r.height for r in bubbles[-1])
        similar = 0.6 <= row.height / size <= 1.6
        if gap <= 0.75 * line and aligned and similar:
            bubbles[-1].append(row)
        else:
            bubbles.append([row])
    return bubbles


#: The line so far ends in an English word that stands alone (not glued to Chinese, as in a URL or id).
_ENGLISH_WORD_END = re.compile(r"(?:^|\s)[A-Za-z]+$")
_URLISH = re.compile(r"^\S*(?:://|www\.|\.[a-z]{2,}\b|/)", re.IGNORECASE)


def join_wrapped(lines: list[str]) -> str:
    """Undo the phone's line wrapping: Chinese, URLs and ids join directly, English words with a space."""
    out = ""
    for line in lines:
        line = line.strip()
        if not out:
            out = line
            continue
        space = _ENGLISH_WORD_END.search(out) and line[:1].isascii() and line[:1].isalpha()
        space = space and not _URLISH.match(line) and not _URLISH.match(out.rsplit(" ", 1)[-1])
        out += (" " if space else "") + line
    return out
