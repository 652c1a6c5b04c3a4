"""The Telegram bot: python-telegram-bot (v22) over the consultation core. All wiring is here.

:func:`build_application` adds every handler, the error handler, the daily-tip tick (the
JobQueue, every minute) and the outgoing rate limiter; :func:`run_telegram` runs it. The
handlers live next door: messages and groups (``telegram_handlers``), commands
(``telegram_commands``), buttons (``telegram_feedback``), the wire (``telegram_io``) and the
process (``telegram_run``, which also has the webhook route for ``fanzha serve``).
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable
from datetime import UTC, datetime

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.adapters import telegram_commands as commands
from bot.adapters import telegram_feedback as feedback
from bot.adapters.telegram_handlers import (
    on_group_message,
    on_migration,
    on_my_membership,
    on_private_message,
    state_of,
)
from bot.adapters.telegram_io import (
    BoundedRequest,
    ChatOrderedProcessor,
    SanitizingRequest,
    TelegramTipSender,
    send_text,
)
from bot.adapters.telegram_limits import FloodLimiter
from bot.adapters.telegram_run import (
    run_bot,
    start_webhook_application,
    stop_application,
    telegram_webhook_route,
)
from bot.adapters.telegram_state import STATE_KEY, TelegramState
from bot.adapters.wecom import WeComTips
from bot.broadcast import send_due_tips
from bot.config import Settings
from bot.consultation import Consultation
from bot.logs import configure_logging, quiet_noisy_loggers
from bot.ocr import ImageText, OcrWorker, PictureReader, read_image_bytes
from bot.storage import Store
from bot.tips import TipLibrary, load_tips

__all__ = [
    "TelegramTipSender",
    "build_application",
    "run_bot",
    "run_telegram",
    "start_webhook_application",
    "stop_application",
    "telegram_webhook_route",
]

log = logging.getLogger("fanzha.telegram")

TIP_TICK_SECONDS = 60
#: The first tick soon after start catches up a send missed while the bot was down.
TIP_FIRST_SECONDS = 2
#: Sends a second when PTB's rate limiter is off (FANZHA_TELEGRAM_RATE_LIMITER=false).
UNLIMITED_TIP_PACE = 20.0
#: Retries of a 429 inside the rate limiter before a send gives up.
RATE_LIMIT_RETRIES = 3


def outgoing_limiter(settings: Settings) -> FloodLimiter | None:
    """Telegram's flood limits for every bot fanzha runs (None only when switched off for a benchmark)."""
    return FloodLimiter(max_retries=RATE_LIMIT_RETRIES) if settings.telegram_rate_limiter else None


def api_urls(base_url: str) -> tuple[str, str]:
    """(base_url, base_file_url) for PTB from ``https://host/bot`` (``/bot`` is added if missing)."""
    base = base_url.rstrip("/")
    if not base.endswith("/bot"):
        base += "/bot"
    return base, base[: -len("/bot")] + "/file/bot"


def build_application(
    settings: Settings,
    consultation: Consultation,
    store: Store,
    *,
    tips: TipLibrary | None = None,
    read_picture: Callable[[bytes], ImageText] | None = None,
) -> Application:
    """The PTB application with every handler, the error handler, the tip tick and limits.

    *read_picture* (tests) replaces OCR: image bytes in, :class:`ImageText` out. The real
    engine is loaded on the first picture, never before.
    """
    quiet_noisy_loggers()
    base_url, file_url = api_urls(settings.telegram_base_url)
    builder = (
        Application.builder()
        .token(settings.telegram_token)
        .base_url(base_url)
        .base_file_url(file_url)
        .get_updates_request(SanitizingRequest(connection_pool_size=1))
        .request(BoundedRequest())
        .concurrent_updates(ChatOrderedProcessor())
    )
    limiter = outgoing_limiter(settings)
    if limiter is not None:
        builder = builder.rate_limiter(limiter)
    application = builder.build()
    pictures = PictureReader(
        consultation, per_minute=settings.pictures_per_minute, worker=OcrWorker(read_picture or read_image_bytes)
    )
    application.bot_data[STATE_KEY] = TelegramState(settings, consultation, store, tips or load_tips(), pictures)

    new = filters.UpdateType.MESSAGE
    private, groups = filters.ChatType.PRIVATE, filters.ChatType.GROUPS
    for name, callback in (
        ("start", commands.cmd_start),
        ("help", commands.cmd_help),
        ("check", commands.cmd_check),
        ("hotline", commands.cmd_hotline),
        ("tips", commands.cmd_tips),
        ("subscribe", commands.cmd_subscribe),
        ("unsubscribe", commands.cmd_unsubscribe),
        ("forget", commands.cmd_forget),
        ("autowarn", commands.cmd_autowarn),
    ):
        application.add_handler(CommandHandler(name, callback, filters=new & (private | groups)))
    application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, on_migration))
    application.add_handler(ChatMemberHandler(on_my_membership, ChatMemberHandler.MY_CHAT_MEMBER))
    application.add_handler(CallbackQueryHandler(feedback.on_quick_reply, pattern=feedback.QUICK_PATTERN))
    application.add_handler(CallbackQueryHandler(feedback.on_feedback, pattern=feedback.FEEDBACK_PATTERN))
    application.add_handler(CallbackQueryHandler(feedback.on_category, pattern=feedback.CATEGORY_PATTERN))
    application.add_handler(CallbackQueryHandler(feedback.on_keep, pattern=feedback.KEEP_PATTERN))
    application.add_handler(CallbackQueryHandler(feedback.on_stale_button))
    everyday = new & ~filters.COMMAND & ~filters.StatusUpdate.ALL
    application.add_handler(MessageHandler(new & private & filters.COMMAND, commands.on_unknown_command))
    application.add_handler(MessageHandler(everyday & private, on_private_message))
    application.add_handler(MessageHandler(everyday & groups, on_group_message))
    application.add_error_handler(on_error)
    application.job_queue.run_repeating(tip_tick, TIP_TICK_SECONDS, first=TIP_FIRST_SECONDS, name="daily-tips")
    return application


async def tip_tick(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Every minute: send today's tip to each subscribed chat whose time has come (once a day)."""
    state = state_of(context)
    if state.tip_round.locked():
        return  # the previous round is still sending; it will cover this minute too
    settings = state.settings
    async with state.tip_round:
        report = await send_due_tips(
            state.store,
            state.tips,
            TelegramTipSender(context.bot),
            datetime.now(UTC),
            default_time=settings.tip_time,
            default_zone=settings.timezone,
            per_second=0.0 if settings.telegram_rate_limiter else UNLIMITED_TIP_PACE,
        )
    if report.sent or report.blocked or report.failed:
        log.info(
            "daily tips: %d sent, %d unsubscribed (blocked or removed), %d failed (retried next minute)",
            len(report.sent),
            len(report.blocked),
            len(report.failed),
        )


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log what broke (never the message text or the token) and apologise in private chats."""
    error = context.error
    update_id = update.update_id if isinstance(update, Update) else None
    if isinstance(error, TelegramError):
        log.warning("update %s: Telegram error %s: %s", update_id, type(error).__name__, error.message)
    elif error is not None:
        where = "".join(traceback.format_tb(error.__traceback__))
        log.error("update %s failed with %s:\n%s", update_id, type(error).__name__, where)
    if isinstance(update, Update) and update.effective_chat and update.effective_chat.type == "private":
        state = state_of(context)
        try:
            await send_text(context.bot, state.store, update.effective_chat.id, state.wording.say("error"))
        except Exception:  # the apology is best effort; the error is logged already
            log.debug("could not apologise for update %s", update_id)


def run_telegram(settings: Settings, consultation: Consultation, store: Store) -> None:
    """``fanzha telegram``: run until SIGTERM/SIGINT (long polling, or a webhook if configured)."""
    configure_logging(settings)
    application = build_application(settings, consultation, store)
    # WeCom group robots get their daily tip from this process too (and from `fanzha serve`:
    # every send is claimed in the database first, so running both never posts twice).
    wecom = WeComTips.from_settings(settings, store, application.bot_data[STATE_KEY].tips)
    application.job_queue.run_repeating(wecom.job, TIP_TICK_SECONDS, first=TIP_FIRST_SECONDS, name="wecom-tips")
    asyncio.run(run_bot(application, settings, webhook_url=settings.telegram_webhook_url))
