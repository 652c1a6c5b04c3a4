"""Turn a :class:`Reply` into what each platform shows, within each platform's size limit.

Plain text serves the console and WeChat (passive replies: at most 2,048 bytes); Telegram
gets escaped HTML (at most 4,096 characters a message). Long replies are split between
blocks, or failing that between sentences, never mid-sentence.
"""

from __future__ import annotations

import html
import re

from bot.messages import Block, Reply

TELEGRAM_LIMIT = 4096
WECHAT_LIMIT_BYTES = 2048
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])")


def _plain_block(block: Block) -> str:
    if block.style == "item":
        return f"• {block.text}"
    return block.text


def render_plain(reply: Reply, *, numbered_options: bool = False) -> str:
    """Plain text; with *numbered_options*, quick replies become "回复 1：…" lines (WeChat)."""
    lines = [_plain_block(b) for b in reply.blocks]
    if numbered_options and reply.quick_replies:
        lines += [f"回复 {n}：{q.label}" for n, q in enumerate(reply.quick_replies, 1)]
    return "\n".join(lines)


def _html_block(block: Block) -> str:
    text = html.escape(block.text, quote=False)
    if block.style in ("banner", "heading"):
        return f"<b>{text}</b>"
    if block.style == "item":
        return f"• {text}"
    if block.style in ("note", "quote"):
        return f"<i>{text}</i>"
    return text


def render_telegram(reply: Reply) -> list[str]:
    """Telegram HTML messages, each at most 4,096 characters."""
    return split_parts([_html_block(b) for b in reply.blocks], TELEGRAM_LIMIT, len)


def render_wechat(reply: Reply) -> list[str]:
    """Plain-text WeChat messages, each at most 2,048 bytes of UTF-8."""
    text = render_plain(reply, numbered_options=True)
    return split_parts(text.split("\n"), WECHAT_LIMIT_BYTES, lambda s: len(s.encode("utf-8")))


def split_parts(parts: list[str], limit: int, size) -> list[str]:
    """Join *parts* with newlines into messages no larger than *limit* (by *size*)."""
    messages: list[str] = []
    current = ""
    for part in parts:
        for piece in _fit(part, limit, size):
            candidate = f"{current}\n{piece}" if current else piece
            if size(candidate) <= limit:
                current = candidate
            else:
                messages.append(current)
                current = piece
    if current:
        messages.append(current)
    return messages


def _fit(part: str, limit: int, size) -> list[str]:
    """*part* itself, or its sentences grouped under *limit* (hard cut only inside a
    single sentence longer than the limit, which no reply text is)."""
    if size(part) <= limit:
        return [part]
    pieces: list[str] = []
    current = ""
    for sentence in (s for s in _SENTENCE_END.split(part) if s):
        while size(sentence) > limit:
            cut = len(sentence)
            while size(sentence[:cut]) > limit:
                cut = cut * 3 // 4
            pieces.append(sentence[:cut])
            sentence = sentence[cut:]
        if size(current + sentence) <= limit:
            current += sentence
        else:
            pieces.append(current)
            current = sentence
    if current:
        pieces.append(current)
    return [p for p in pieces if p]
