"""The daily tip to many subscribed Telegram chats, through the real bot and the stand-in.

The bot is built by ``build_application`` with the outgoing rate limiter on (the default,
as in production), and the round is ``send_due_tips`` with ``TelegramTipSender``, exactly
what the bot's minute tick runs. The stand-in enforces Telegram's flood limits. The floor
is chats / 30 seconds; a second round right after must send nothing, and every chat must
have received exactly one message.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import make_home
from bench.standin import TimedBotAPI

PER_SECOND_LIMIT = 30
FIRST_CHAT = 800_000_000


def subscribe_all(store, chats: int) -> float:
    """Subscribe *chats* private chats (tip time 00:00, so all are due); returns seconds taken."""
    started = time.perf_counter()
    for n in range(chats):
        store.subscribe("telegram", str(FIRST_CHAT + n), "private", "00:00", "Asia/Shanghai")
    return time.perf_counter() - started


async def one_round(application, store, tips) -> tuple[float, object]:
    from bot.adapters.telegram_io import TelegramTipSender
    from bot.broadcast import send_due_tips

    settings = application.bot_data["fanzha"].settings
    started = time.monotonic()
    report = await send_due_tips(
        store,
        tips,
        TelegramTipSender(application.bot),
        datetime.now(UTC),
        default_time=settings.tip_time,
        default_zone=settings.timezone,
        per_second=0.0,
    )
    return time.monotonic() - started, report


def broadcast_run(model_dir: Path, classifier, chats: int) -> dict:
    from bot.adapters.telegram import build_application
    from bot.config import Settings
    from bot.consultation import Consultation
    from bot.storage import Store
    from bot.tips import load_tips

    home = make_home("broadcast", model_dir)
    with TimedBotAPI() as api:
        api.flood_limits(per_second=PER_SECOND_LIMIT, group_per_minute=20)
        settings = Settings.from_env(
            {"FANZHA_HOME": str(home), "FANZHA_TELEGRAM_TOKEN": api.token, "FANZHA_TELEGRAM_BASE_URL": api.base_url}
        )
        store = Store(settings.db, timezone=settings.timezone)
        try:
            setup_s = subscribe_all(store, chats)
            tips = load_tips()
            application = build_application(settings, Consultation(classifier, log=store), store, tips=tips)

            async def rounds():
                await application.initialize()
                try:
                    first = await one_round(application, store, tips)
                    second = await one_round(application, store, tips)
                finally:
                    await application.shutdown()
                return first, second

            (seconds, report), (_, again) = asyncio.run(rounds())
        finally:
            store.close()
        counts = [len(api.sent.get(FIRST_CHAT + n, [])) for n in range(chats)]
        floor = chats / PER_SECOND_LIMIT
        return {
            "chats": chats,
            "seconds": seconds,
            "floor_s": floor,
            "over_floor": seconds / floor - 1,
            "sent": len(report.sent),
            "failed": len(report.failed),
            "second_round_sent": len(again.sent),
            "every_chat_exactly_once": all(c == 1 for c in counts),
            "flood_429_from_standin": api.refused_429,
            "subscribe_setup_s": setup_s,
        }


def run(model_dir: Path, classifier, *, chats: int, note=print) -> dict:
    note(f"  broadcast: today's tip to {chats:,} subscribed chats, rate limiter on (floor {chats / 30:.0f}s)")
    return broadcast_run(model_dir, classifier, chats)
