"""What the Telegram adapter remembers between updates: in memory, small and short-lived.

The consultation core keeps the conversation (follow-up, forwarded batch, rate limit); this
keeps only what Telegram's way of talking adds: the text of a checked message until the
person says whether it may be kept for review, which group members are admins, and which
forwarded batches are still waiting to be judged. Losing it on restart costs at most one
unanswered consent question; nothing here is ever written to disk.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field

from telegram import Bot
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError

from bot.adapters.telegram_io import PLATFORM
from bot.config import Settings
from bot.consultation import Consultation
from bot.ocr import PictureReader
from bot.storage import Store
from bot.tips import TipLibrary

STATE_KEY = "fanzha"
#: How long the text of a checked message stays in memory waiting for feedback and consent.
DRAFT_SECONDS = 30 * 60
MAX_DRAFTS = 5000
#: getChatMember answers are cached this long: admins change rarely.
ADMIN_CACHE_SECONDS = 5 * 60
#: In a group, at most one automatic warning in this many seconds (one per burst of messages).
WARN_COOLDOWN_SECONDS = 60.0


@dataclass
class Draft:
    chat_id: str
    text: str
    expires: float
    label: str | None = None


class ReviewDrafts:
    """Message text held from a verdict until the person answers the consent question.

    Only a "yes" moves the text to the database (Store.keep_for_review); anything else,
    including silence for DRAFT_SECONDS, forgets it.
    """

    def __init__(self, ttl: float = DRAFT_SECONDS, limit: int = MAX_DRAFTS) -> None:
        self.ttl, self.limit = ttl, limit
        # In order of arrival, which is expiry order (one ttl for all): see prune.
        self._drafts: OrderedDict[int, Draft] = OrderedDict()

    def put(self, consultation_id: int, chat_id: str, text: str, now: float) -> None:
        self.prune(now)
        self._drafts.pop(consultation_id, None)
        while len(self._drafts) >= self.limit:
            self._drafts.popitem(last=False)
        self._drafts[consultation_id] = Draft(chat_id, text, now + self.ttl)

    def get(self, consultation_id: int, chat_id: str, now: float) -> Draft | None:
        draft = self._drafts.get(consultation_id)
        if draft is None or draft.chat_id != chat_id:
            return None
        if draft.expires <= now:
            del self._drafts[consultation_id]
            return None
        return draft

    def pop(self, consultation_id: int, chat_id: str, now: float) -> Draft | None:
        draft = self.get(consultation_id, chat_id, now)
        if draft is not None:
            del self._drafts[consultation_id]
        return draft

    def forget_chat(self, chat_id: str) -> None:
        for key in [k for k, d in self._drafts.items() if d.chat_id == chat_id]:
            del self._drafts[key]

    def prune(self, now: float) -> None:
        """Drop expired drafts. They are at the front, so this stops at the first live one:
        O(1) per message where a full scan made a busy bot quadratic once the cap was hit."""
        drafts = self._drafts
        while drafts:
            key, draft = next(iter(drafts.items()))
            if draft.expires > now:
                return
            del drafts[key]

    def __len__(self) -> int:
        return len(self._drafts)


class AdminCache:
    """Whether a user administers a group, from getChatMember, cached for a few minutes."""

    def __init__(self, ttl: float = ADMIN_CACHE_SECONDS) -> None:
        self.ttl = ttl
        self._known: dict[tuple[int, int], tuple[bool, float]] = {}

    async def is_admin(self, bot: Bot, chat_id: int, user_id: int, now: float) -> bool:
        cached = self._known.get((chat_id, user_id))
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            member = await bot.get_chat_member(chat_id, user_id)
        except TelegramError:
            return False  # not cached: a passing network error must not lock an admin out for minutes
        admin = member.status in (ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR)
        if len(self._known) > 10_000:
            self._known = {k: v for k, v in self._known.items() if v[1] > now}
        self._known[(chat_id, user_id)] = (admin, now + self.ttl)
        return admin


@dataclass
class PendingBatch:
    """Forwarded messages of one chat waiting for the batch window to close."""

    chat_kind: str
    texts: list[str] = field(default_factory=list)
    seq: int = 0


@dataclass
class TelegramState:
    """Everything the handlers need, reached through ``application.bot_data``."""

    settings: Settings
    consultation: Consultation
    store: Store
    tips: TipLibrary
    #: Screenshots: per-chat limit, OCR in a worker thread, the core's answer (bot.ocr).
    pictures: PictureReader
    drafts: ReviewDrafts = field(default_factory=ReviewDrafts)
    admins: AdminCache = field(default_factory=AdminCache)
    batches: dict[str, PendingBatch] = field(default_factory=dict)
    warned_at: dict[str, float] = field(default_factory=dict)
    tip_round: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def wording(self):
        return self.consultation.wording

    def may_warn(self, chat_id: str, now: float) -> bool:
        """At most one automatic warning per burst of messages in a group."""
        last = self.warned_at.get(chat_id)
        if last is not None and now - last < WARN_COOLDOWN_SECONDS:
            return False
        self.warned_at[chat_id] = now
        return True

    def forget_chat(self, chat_id: str) -> None:
        """Drop what is held in memory about a chat (the database is cleared by the caller)."""
        self.drafts.forget_chat(chat_id)
        self.batches.pop(chat_id, None)
        self.warned_at.pop(chat_id, None)
        self.consultation.sessions.forget(f"{PLATFORM}:{chat_id}")
