"""One daily-tip round through every configured channel, by hand (``fanzha tips send``).

The running bots send on their own schedule; this is for an operator who wants today's round
out now, or who runs it from cron instead of a long-running process. It goes through the same
:func:`bot.broadcast.send_due_tips` as the ticks, so a chat that already had today's tip (from
a tick, ``/tips`` or an earlier run) is skipped, and a run at the same time as a bot never
posts twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from bot.broadcast import BroadcastReport, send_due_tips
from bot.config import Settings
from bot.storage import Store
from bot.tips import TipLibrary

log = logging.getLogger(__name__)


@dataclass
class ChannelResult:
    platform: str
    chats: int  # subscribed chats on this channel
    report: BroadcastReport | None = None
    problem: str = ""  # why the channel was not used (no token, token refused...)


async def send_round(
    settings: Settings, store: Store, library: TipLibrary, now: datetime, *, force: bool
) -> list[ChannelResult]:
    """Today's tip to every subscribed chat whose time has come (all of them with *force*)."""
    from bot.adapters.wecom import WeComSender, register_configured_groups

    register_configured_groups(settings, store)
    results = []
    telegram_chats = len(store.subscriptions("telegram"))
    if telegram_chats:
        results.append(await _telegram_round(settings, store, library, now, force, telegram_chats))
    wecom_chats = len(store.subscriptions("wecom"))
    if wecom_chats:
        sender = WeComSender.from_settings(settings, store)
        report = await send_due_tips(
            store, library, sender, now, default_time=settings.tip_time, default_zone=settings.timezone, force=force
        )
        results.append(ChannelResult("wecom", wecom_chats, report))
    return results


async def _telegram_round(
    settings: Settings, store: Store, library: TipLibrary, now: datetime, force: bool, chats: int
) -> ChannelResult:
    if not settings.telegram_token:
        return ChannelResult("telegram", chats, problem="FANZHA_TELEGRAM_TOKEN is not set")
    from telegram.error import InvalidToken, TelegramError
    from telegram.ext import ExtBot

    from bot.adapters.telegram import UNLIMITED_TIP_PACE, TelegramTipSender, api_urls, outgoing_limiter
    from bot.adapters.telegram_io import BoundedRequest
    from bot.logs import quiet_noisy_loggers

    quiet_noisy_loggers()  # httpx would log request URLs, and those hold the token
    base_url, file_url = api_urls(settings.telegram_base_url)
    # The same limits as the running bot: 30 messages a second overall, 20 a minute per group,
    # about 1 a second per private chat.
    limiter = outgoing_limiter(settings)
    bot = ExtBot(
        settings.telegram_token,
        base_url=base_url,
        base_file_url=file_url,
        request=BoundedRequest(),
        rate_limiter=limiter,
    )
    try:
        async with bot:
            report = await send_due_tips(
                store,
                library,
                TelegramTipSender(bot),
                now,
                default_time=settings.tip_time,
                default_zone=settings.timezone,
                force=force,
                per_second=0.0 if limiter else UNLIMITED_TIP_PACE,
            )
    except InvalidToken:
        return ChannelResult("telegram", chats, problem="Telegram refused FANZHA_TELEGRAM_TOKEN")
    except TelegramError as exc:
        # Not the exception text: with some errors it carries the request URL, and so the token.
        return ChannelResult("telegram", chats, problem=f"cannot reach the Bot API ({type(exc).__name__})")
    return ChannelResult("telegram", chats, report)
