"""Platform-neutral messages in and replies out. No Telegram or WeChat types cross this line.

Adapters pre-digest platform facts into :class:`IncomingMessage`; the consultation answers
with an :class:`Outcome` that says what to do (reply, warn in a group, stay silent), and the
adapter turns it into API calls via :mod:`bot.render`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from classifier.verdict import Verdict

PRIVATE = "private"
GROUP = "group"


@dataclass(frozen=True)
class IncomingMessage:
    """What a resident sent, as every platform can describe it."""

    text: str
    chat_id: str
    platform: str = "console"
    chat_kind: str = PRIVATE
    user_id: str = ""
    forwarded: bool = False
    #: In a group: the bot was mentioned, replied to, or asked with /check.
    addressed: bool = False
    #: Text read from a picture (OCR), when the message was an image.
    image_text: str | None = None
    #: The message was a picture that could not be read (no OCR, refused image).
    image_unreadable: bool = False
    #: A tapped quick reply (``paid`` / ``not_paid``), instead of typed text.
    quick_reply: str | None = None

    @property
    def chat_key(self) -> str:
        return f"{self.platform}:{self.chat_id}"


@dataclass(frozen=True)
class Block:
    """One part of a reply. ``style`` is banner, heading, text, item, note or quote."""

    text: str
    style: str = "text"


@dataclass(frozen=True)
class QuickReply:
    """A tappable answer (a button on Telegram, a number to send on WeChat)."""

    label: str
    payload: str


@dataclass(frozen=True)
class Reply:
    blocks: tuple[Block, ...]
    quick_replies: tuple[QuickReply, ...] = ()
    #: Offer "helpful / wrong" feedback buttons for the consultation with this id.
    feedback_for: int | None = None

    def plain(self) -> str:
        """The reply as text with no markup (tests and logs-free previews)."""
        from bot.render import render_plain

        return render_plain(self)


@dataclass
class Outcome:
    """What the core decided: ``action`` names the path taken, for tests and storage."""

    action: str
    replies: list[Reply] = field(default_factory=list)
    verdict: Verdict | None = None
    consultation_id: int | None = None
    #: A forwarded message was queued; call ``Consultation.flush`` after this many seconds.
    flush_after: float | None = None
    #: The text read from a picture (OCR), so an adapter can hold it for the review-consent question.
    image_text: str | None = None

    @property
    def silent(self) -> bool:
        return not self.replies
