"""Talking to the Bot API safely: sending, keyboards, reading updates, ordering them per chat.

Everything that can go wrong on the wire is decided here, once: a chat that blocked the bot
(403) is unsubscribed, a group that became a supergroup is followed to its new id, a 429 is
waited out, a network error is logged and retried, a malformed update is skipped instead of
stalling the bot. Handlers just call :func:`send_reply` / :func:`send_text`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import BaseUpdateProcessor
from telegram.request import HTTPXRequest

from bot.broadcast import BLOCKED, FAILED, OK, SendResult
from bot.compose import Wording
from bot.messages import Reply
from bot.render import render_telegram
from bot.storage import Store

PLATFORM = "telegram"
log = logging.getLogger("fanzha.telegram")

#: Never wait longer than this for a 429 inside one reply; the next message will get through.
MAX_RETRY_WAIT = 30.0
SEND_ATTEMPTS = 3
#: Scam links in replies must never unfold into a preview card.
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
#: Connections to the Bot API for sending (getUpdates has its own).
#: Sixteen measured best under load here once the classifier got faster (replies a second
#: with 8 / 12 / 16 / 24 / 32: 160 / 224 / 285 / 258 / 204; PTB's 256 was slower still).
#: Fewer leave the bot waiting on round trips, more cost httpcore pool bookkeeping.
BOT_API_CONNECTIONS = 16
#: Daily tips in flight at once (bot.broadcast.send_due_tips): enough to keep 30 a second
#: going over ~50 ms round trips, few enough not to pile up behind the rate limiter.
TIP_CONCURRENCY = 12
#: A reply not sent within this many seconds gets a "typing…" indicator first.
TYPING_DELAY = 0.4


def retry_seconds(exc: RetryAfter) -> float:
    """Seconds Telegram asked us to wait (PTB 22 warns when the int/timedelta type is read)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return float(value.total_seconds() if hasattr(value, "total_seconds") else value)


# Reading updates ------------------------------------------------------------------------------
def readable_updates(items: Any) -> list[dict]:
    """Keep every update PTB can parse; one it cannot becomes an empty update with its id.

    PTB parses a whole getUpdates batch at once: one malformed update makes the batch fail,
    is logged in full (message text included) and is fetched again, forever. Replaced by
    ``{"update_id": n}`` it is confirmed and ignored, and the rest of the batch is answered.
    """
    if not isinstance(items, list):
        return []
    kept: list[dict] = []
    for item in items:
        update_id = item.get("update_id") if isinstance(item, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            log.warning("dropped an update without an id")
            continue
        try:
            Update.de_json(dict(item), None)
        except Exception as exc:
            log.warning("update %s could not be read (%s); skipped", update_id, type(exc).__name__)
            kept.append({"update_id": update_id})
        else:
            kept.append(item)
    return kept


def parse_update(data: Any, bot: Bot) -> Update | None:
    """One update (from a webhook body) as PTB's Update, or None when it is unreadable."""
    readable = readable_updates([data])
    return Update.de_json(readable[0], bot) if readable else None


class SanitizingRequest(HTTPXRequest):
    """The getUpdates connection, with :func:`readable_updates` applied to every batch."""

    async def post(self, url: str, *args: Any, **kwargs: Any) -> Any:
        result = await super().post(url, *args, **kwargs)
        if url.endswith("/getUpdates"):
            return readable_updates(result)
        return result


class BoundedRequest(HTTPXRequest):
    """The Bot API connection pool, with requests beyond its size waiting outside httpx.

    httpcore's pool scans every pooled connection and every queued request on each request
    and each response, so 64 updates in flight over a large pool cost more in that bookkeeping
    than in the requests themselves. A few connections, with the rest waiting their turn
    on a semaphore, keep it cheap; the rate limiter and the round trips set the pace anyway.
    """

    def __init__(self, connection_pool_size: int = BOT_API_CONNECTIONS, **kwargs: Any) -> None:
        super().__init__(connection_pool_size=connection_pool_size, **kwargs)
        self._turns = asyncio.Semaphore(connection_pool_size)

    @property
    def busy(self) -> bool:
        """True while every connection is taken (requests are waiting for a turn)."""
        return self._turns.locked()

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        async with self._turns:
            return await super().do_request(*args, **kwargs)


class ChatOrderedProcessor(BaseUpdateProcessor):
    """Different chats are answered concurrently, one chat's updates strictly in order.

    A 429 wait or a slow send in one chat then never holds up everyone else, while a person
    still gets answers in the order they wrote.
    """

    def __init__(self, max_concurrent_updates: int = 64) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: Counter[int] = Counter()

    async def do_process_update(self, update: object, coroutine) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        key = chat.id
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] += 1
        try:
            async with lock:
                await coroutine
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                self._locks.pop(key, None)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""


# Sending ------------------------------------------------------------------------------------
def reply_keyboard(reply: Reply, wording: Wording) -> InlineKeyboardMarkup | None:
    """Quick answers (已转账 / 没有) on one row, feedback (有帮助 / 判断有误) on the next."""
    rows: list[list[InlineKeyboardButton]] = []
    if reply.quick_replies:
        rows.append([InlineKeyboardButton(q.label, callback_data=f"q:{q.payload}") for q in reply.quick_replies])
    if reply.feedback_for is not None:
        cid = reply.feedback_for
        rows.append(
            [
                InlineKeyboardButton(wording.say("feedback_helpful_button"), callback_data=f"fb:{cid}:ok"),
                InlineKeyboardButton(wording.say("feedback_wrong_button"), callback_data=f"fb:{cid}:bad"),
            ]
        )
    return InlineKeyboardMarkup(rows) if rows else None


async def send_text(
    bot: Bot,
    store: Store,
    chat_id: int | str,
    text: str,
    *,
    html: bool = False,
    reply_to: int | None = None,
    reply_markup: InlineKeyboardMarkup | None = None,
) -> Message | None:
    """Send one message; None when it could not be delivered (the reason is logged)."""
    kwargs: dict[str, Any] = {
        "parse_mode": ParseMode.HTML if html else None,
        "link_preview_options": NO_PREVIEW,
        "reply_markup": reply_markup,
    }
    if reply_to is not None:
        kwargs["reply_parameters"] = ReplyParameters(reply_to, allow_sending_without_reply=True)
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            return await bot.send_message(chat_id, text, **kwargs)
        except Forbidden:
            log.info("chat %s blocked or removed the bot; unsubscribed", chat_id)
            store.unsubscribe(PLATFORM, str(chat_id))
            return None
        except ChatMigrated as exc:
            log.info("chat %s became supergroup %s; following it", chat_id, exc.new_chat_id)
            store.move_chat(PLATFORM, str(chat_id), str(exc.new_chat_id))
            chat_id = exc.new_chat_id
        except RetryAfter as exc:
            wait = retry_seconds(exc)
            if wait > MAX_RETRY_WAIT or attempt == SEND_ATTEMPTS:
                log.warning("flood limit on chat %s (retry after %ss); reply dropped", chat_id, wait)
                return None
            await asyncio.sleep(wait)
        except BadRequest as exc:
            log.warning("Telegram refused a message to chat %s: %s", chat_id, exc.message)
            return None
        except TimedOut:
            # The message may have arrived; sending it again could duplicate it.
            log.warning("sending to chat %s timed out", chat_id)
            return None
        except NetworkError as exc:
            log.warning("network error sending to chat %s (%s); attempt %d", chat_id, exc.message, attempt)
            await asyncio.sleep(attempt)
    return None


async def send_reply(
    bot: Bot, store: Store, wording: Wording, chat_id: int | str, reply: Reply, *, reply_to: int | None = None
) -> Message | None:
    """A core :class:`Reply` as Telegram HTML (split at 4,096 characters), buttons on the last part."""
    parts = render_telegram(reply)
    markup = reply_keyboard(reply, wording)
    sent = None
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        sent = await send_text(
            bot,
            store,
            chat_id,
            part,
            html=True,
            reply_to=reply_to if n == 0 else None,
            reply_markup=markup if last else None,
        )
        if sent is None:
            return None
    return sent


async def show_typing(bot: Bot, chat_id: int | str) -> None:
    """The "typing…" indicator; purely cosmetic, so any failure is ignored."""
    with contextlib.suppress(TelegramError):
        await bot.send_chat_action(chat_id, ChatAction.TYPING)


@contextlib.asynccontextmanager
async def typing_if_slow(bot: Bot, chat_id: int | str, delay: float = TYPING_DELAY) -> AsyncIterator[None]:
    """Show "typing…" only if the work inside (answering and sending) takes over *delay* seconds.

    An instant reply then costs one request instead of two; a slow one (a picture, a wait
    for the rate limiter) still shows that the bot is working. When the Bot API connections
    are all taken, the wait is for the wire, and an indicator would only queue behind the
    replies; it is skipped (as the rate limiter skips it when the message budget is tight).
    A timer, not a task, so a fast answer costs next to nothing; an indicator already on its
    way is let finish.
    """
    loop = asyncio.get_running_loop()
    started: list[asyncio.Task] = []

    def start() -> None:
        request = getattr(bot, "request", None)
        if isinstance(request, BoundedRequest) and request.busy:
            return  # the wire is the holdup: the indicator would arrive with the reply it announces
        started.append(loop.create_task(show_typing(bot, chat_id)))

    timer = loop.call_later(delay, start)
    try:
        yield
    finally:
        timer.cancel()
        if started:
            await started[0]


async def drop_buttons(message: Message | None, prefix: str) -> None:
    """Remove the keyboard rows whose buttons start with *prefix* (a question answered)."""
    if message is None or not isinstance(message, Message) or message.reply_markup is None:
        return
    rows = [
        row
        for row in message.reply_markup.inline_keyboard
        if not any(str(b.callback_data or "").startswith(prefix) for b in row)
    ]
    try:
        await message.edit_reply_markup(InlineKeyboardMarkup(rows) if rows else None)
    except TelegramError as exc:
        log.debug("could not update buttons: %s", exc)


class TelegramTipSender:
    """The daily tip to one Telegram chat, as bot.broadcast expects it.

    Outgoing pace comes from the rate limiter (:class:`~bot.adapters.telegram_limits.FloodLimiter`:
    30 a second overall, 20 a minute per group, about 1 a second per private chat) when it is
    on; a 429 that still comes back is waited out once. Several tips are in flight at once
    (``concurrency``), so the limiter, not each round trip, sets the pace.
    """

    platform = PLATFORM
    concurrency = TIP_CONCURRENCY

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send_tip(self, chat_id: str, text: str) -> SendResult:
        target: int | str = int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id
        for attempt in range(2):
            try:
                await self.bot.send_message(target, text, link_preview_options=NO_PREVIEW)
                return SendResult(OK)
            except Forbidden:
                return SendResult(BLOCKED)
            except ChatMigrated as exc:
                return SendResult(FAILED, moved_to=str(exc.new_chat_id))
            except RetryAfter as exc:
                if attempt or retry_seconds(exc) > 2 * MAX_RETRY_WAIT:
                    return SendResult(FAILED)
                await asyncio.sleep(retry_seconds(exc))
            except BadRequest as exc:
                gone = "chat not found" in exc.message.lower()
                return SendResult(BLOCKED if gone else FAILED)
            except TelegramError as exc:
                log.warning("daily tip to chat %s failed: %s", chat_id, type(exc).__name__)
                return SendResult(FAILED)
        return SendResult(FAILED)
