"""Daily tips on Telegram: /subscribe, /tips, and the broadcast round (bot.broadcast.send_due_tips)
through the real PTB stack against the stand-in, which enforces Telegram's flood limits."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from fakes import FakeBotAPI
from fakes.telegram_bot import BotInThread, telegram_settings

from bot.broadcast import send_due_tips

pytestmark = pytest.mark.timeout(60)


def tips_sent(api: FakeBotAPI, chat: int) -> list[dict]:
    return [m for m in api.messages(chat) if m["text"].startswith("【每日反诈提醒】")]


def test_subscribe_unsubscribe_and_todays_tip_on_demand(api, home, classifier):
    with BotInThread.start(telegram_settings(api, home), classifier, api, tip_tick=False) as bot:
        api.command(4001, "/subscribe", "６:０５")
        assert "每天 06:05" in api.wait_messages(4001)[0]["text"]
        [sub] = bot.store.subscriptions("telegram")
        assert (sub["chat_id"], sub["kind"], sub["tip_time"]) == ("4001", "private", "06:05")
        api.command(4001, "/subscribe", "明天")
        assert "时:分" in api.wait_messages(4001, after=1)[0]["text"]

        api.command(4001, "/tips")
        [tip] = api.wait_messages(4001, after=2)
        assert tip["text"].startswith("【每日反诈提醒】")
        day = datetime.now(UTC).astimezone(bot.store.zone).date().isoformat()
        api.wait_for(lambda: bot.store.tip_send("telegram", "4001", day)["status"] == "sent", what="send recorded")
        # /tips counted as today's send: the round skips this chat.
        report = bot.call(lambda: send_due_tips(bot.store, bot.application.bot_data["fanzha"].tips,
                                                _sender(bot), datetime.now(UTC), force=True))
        assert report.sent == [] and report.skipped == 1
        api.command(4001, "/tips")  # asked again the same day: the same tip
        assert api.wait_messages(4001, after=3)[0]["text"] == tip["text"]

        api.command(4001, "/unsubscribe")
        assert "已取消" in api.wait_messages(4001, after=4)[0]["text"]
        api.command(4001, "/unsubscribe")
        assert "还没有订阅" in api.wait_messages(4001, after=5)[0]["text"]
        assert bot.store.subscriptions("telegram") == []


def _sender(bot: BotInThread):
    from bot.adapters.telegram import TelegramTipSender

    return TelegramTipSender(bot.application.bot)


def test_the_tick_catches_up_on_start_within_telegrams_limits(api, home, classifier):
    """Subscribed chats whose time has passed get today's tip right after start, once each,
    paced by PTB's rate limiter; a blocked chat is unsubscribed, a migrated group followed."""
    settings = telegram_settings(api, home)
    private = [5000 + n for n in range(45)]
    groups = [-6000 - n for n in range(12)]
    blocked, old_group, new_group = 5001, -6001, -1006001
    from bot.storage import Store

    store = Store(settings.db, timezone=settings.timezone)
    for chat in private:
        store.subscribe("telegram", str(chat), "private", "00:00", "Asia/Shanghai")
    for chat in groups:
        store.subscribe("telegram", str(chat), "group", "00:00", "Asia/Shanghai")
    store.set_autowarn("telegram", str(old_group), True)
    store.close()
    api.block(blocked)
    api.migrate(old_group, new_group, announce=False)
    api.flood_limits(per_second=30, group_per_minute=20)

    started = time.monotonic()
    with BotInThread.start(settings, classifier, api) as bot:
        expected = [c for c in private + groups if c not in (blocked, old_group)] + [new_group]
        api.wait_for(lambda: all(tips_sent(api, c) for c in expected), timeout=30, what="a tip in every chat")
        elapsed = time.monotonic() - started
        assert all(len(tips_sent(api, c)) == 1 for c in expected)
        assert tips_sent(api, blocked) == [] and tips_sent(api, old_group) == []

        subscribed = {s["chat_id"] for s in bot.store.subscriptions("telegram")}
        assert str(blocked) not in subscribed and str(old_group) not in subscribed
        assert str(new_group) in subscribed and bot.store.autowarn_enabled("telegram", str(new_group))

        sends = [c for c in api.calls_to("sendMessage") if c.status == 200]
        assert len(sends) == len(expected)
        assert elapsed >= (len(expected) - 30) / 30  # about 30 a second at most
        refused = [c for c in api.calls_to("sendMessage") if c.status == 429]
        assert len(refused) <= 3, "the rate limiter should keep within the flood limits"

        # Another round the same day sends nothing: each chat had today's tip.
        report = bot.call(lambda: send_due_tips(bot.store, bot.application.bot_data["fanzha"].tips,
                                                _sender(bot), datetime.now(UTC)))
        assert report.sent == [] and report.skipped == len(expected)
