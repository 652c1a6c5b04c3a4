"""Outgoing pace on Telegram: the flood limiter (bot.adapters.telegram_limits) and the
"typing…" indicator that is only sent when a reply is slow (bot.adapters.telegram_io).

The limiter is driven directly with real aiolimiter timing (small periods keep it quick);
the end-to-end test runs the real bot against the Bot API stand-in.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from fakes.telegram_bot import BotInThread, telegram_settings
from telegram.error import RetryAfter

from bot.adapters.telegram_io import BoundedRequest, typing_if_slow
from bot.adapters.telegram_limits import FloodLimiter, counts_as_message

pytestmark = pytest.mark.timeout(60)

SCAM = "我是公安局民警，你的银行卡涉嫌洗钱，请把钱转到安全账户配合资金清查，不要告诉家人"


class Wire:
    """Stands in for PTB's request callback: notes what went out and when."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, object, float]] = []
        self.started = time.monotonic()

    def through(self, limiter: FloodLimiter, endpoint: str, chat_id: object) -> asyncio.Future:
        async def callback() -> bool:
            self.sent.append((endpoint, chat_id, time.monotonic() - self.started))
            return True

        return limiter.process_request(callback, (), {}, endpoint, {"chat_id": chat_id}, None)

    def times(self, endpoint: str, chat_id: object | None = None) -> list[float]:
        return [at for e, c, at in self.sent if e == endpoint and (chat_id is None or c == chat_id)]


def test_messages_and_actions_are_told_apart():
    assert counts_as_message("sendMessage") and counts_as_message("sendPhoto") and counts_as_message("copyMessage")
    for endpoint in ("sendChatAction", "editMessageText", "answerCallbackQuery", "getChatMember"):
        assert not counts_as_message(endpoint)


def test_chat_actions_use_none_of_the_overall_budget():
    async def scenario() -> Wire:
        limiter, wire = FloodLimiter(max_retries=0, overall_burst=10, overall_per_second=10), Wire()
        # Five "typing…" first, then ten messages to ten chats: all ten fit in the second's budget.
        await asyncio.gather(*(wire.through(limiter, "sendChatAction", 100 + n) for n in range(5)))
        await asyncio.gather(*(wire.through(limiter, "sendMessage", 100 + n) for n in range(10)))
        return wire

    wire = asyncio.run(scenario())
    assert len(wire.times("sendChatAction")) == 5
    assert len(wire.times("sendMessage")) == 10 and max(wire.times("sendMessage")) < 0.5


def test_a_chat_action_is_dropped_while_messages_use_the_budget_or_a_group_is_full():
    async def scenario() -> tuple[Wire, list[object], FloodLimiter]:
        limiter = FloodLimiter(max_retries=0, overall_burst=4, overall_per_second=4, group_burst=1, group_per_minute=1)
        wire = Wire()
        await asyncio.gather(*(wire.through(limiter, "sendMessage", 200 + n) for n in range(4)))
        busy = await wire.through(limiter, "sendChatAction", 300)  # the second's budget is spent
        await asyncio.sleep(1.1)
        await wire.through(limiter, "sendMessage", -5)  # the group's one message a minute
        in_group = await wire.through(limiter, "sendChatAction", -5)
        with_room = await wire.through(limiter, "sendChatAction", 301)
        return wire, [busy, in_group, with_room], limiter

    wire, answers, limiter = asyncio.run(scenario())
    assert answers == [True, True, True]  # Telegram's answer, so the caller never notices
    assert wire.times("sendChatAction") == wire.times("sendChatAction", 301)  # only the one with room went out
    assert limiter.dropped_chat_actions == 2


def test_no_second_ever_holds_more_than_30_messages():
    async def scenario() -> Wire:
        limiter, wire = FloodLimiter(max_retries=0), Wire()
        await asyncio.gather(*(wire.through(limiter, "sendMessage", 1000 + n) for n in range(75)))
        return wire

    times = sorted(asyncio.run(scenario()).times("sendMessage"))
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    assert 28 <= busiest <= 30  # the pace is the limit, never over it (PTB's own bucket lets 60 through)


def test_a_private_chat_gets_a_burst_of_two_then_about_one_a_second():
    async def scenario() -> Wire:
        # 5 a second keeps this quick; a roomy overall budget keeps it out of the way.
        limiter, wire = FloodLimiter(max_retries=0, private_per_second=5, overall_burst=30, overall_per_second=30), Wire()
        await asyncio.gather(
            *(wire.through(limiter, "sendMessage", 7) for _ in range(5)),
            *(wire.through(limiter, "sendMessage", 8) for _ in range(2)),
            *(wire.through(limiter, "sendMessage", -9) for _ in range(3)),  # groups have their own limit
        )
        return wire

    wire = asyncio.run(scenario())
    seven = wire.times("sendMessage", 7)
    assert len(seven) == 5 and seven[1] < 0.1  # the burst
    assert seven[4] - seven[1] >= 3 / 5 - 0.05  # then one every 0.2 s
    assert max(wire.times("sendMessage", 8)) < 0.1 and max(wire.times("sendMessage", -9)) < 0.1


def test_a_retry_after_is_still_waited_out_and_retried():
    async def scenario() -> tuple[object, list[float]]:
        limiter, tries = FloodLimiter(max_retries=2), []

        async def callback() -> dict:
            tries.append(time.monotonic())
            if len(tries) == 1:
                raise RetryAfter(1)
            return {"message_id": 1}

        result = await limiter.process_request(callback, (), {}, "sendMessage", {"chat_id": 5}, None)
        return result, tries

    result, tries = asyncio.run(scenario())
    assert result == {"message_id": 1} and len(tries) == 2 and tries[1] - tries[0] >= 1.0


class TypingBot:
    """Records "typing…" requests, the only thing typing_if_slow asks of a bot."""

    def __init__(self) -> None:
        self.actions: list[tuple[object, str, float]] = []

    async def send_chat_action(self, chat_id: object, action: str) -> bool:
        self.actions.append((chat_id, action, time.monotonic()))
        return True


def test_typing_is_shown_only_when_the_reply_is_slow():
    async def scenario(work: float) -> tuple[TypingBot, float]:
        bot = TypingBot()
        async with typing_if_slow(bot, 42, delay=0.1):  # type: ignore[arg-type]
            await asyncio.sleep(work)
        done = time.monotonic()
        await asyncio.sleep(0.2)  # a cancelled timer never fires later
        return bot, done

    fast, _ = asyncio.run(scenario(0.01))
    assert fast.actions == []
    slow, done = asyncio.run(scenario(0.3))
    [(chat, action, at)] = slow.actions
    assert chat == 42 and action == "typing" and at < done


def test_no_typing_while_every_connection_is_taken():
    """Then the holdup is the wire itself: an indicator would only arrive with the reply."""

    async def scenario() -> TypingBot:
        bot = TypingBot()
        bot.request = BoundedRequest(connection_pool_size=1)  # type: ignore[attr-defined]
        # Another reply holds the only connection while this one is being answered.
        async with bot.request._turns, typing_if_slow(bot, 42, delay=0.05):  # type: ignore[arg-type]
            await asyncio.sleep(0.2)
        return bot

    assert asyncio.run(scenario()).actions == []


def test_a_private_chat_is_answered_about_once_a_second_with_typing_for_the_reply_that_waits(api, home, classifier):
    settings = telegram_settings(api, home)  # the rate limiter is on by default
    with BotInThread.start(settings, classifier, api, tip_tick=False):
        for n in range(3):
            api.send(1001, f"{SCAM}（第{n + 1}条）")
        replies = api.wait_messages(1001, count=3)
    assert len(replies) == 3
    sends = [c.at for c in api.calls_to("sendMessage")]
    assert sends[1] - sends[0] < 0.5  # a burst of two
    assert sends[2] - sends[0] >= 0.9  # then about one a second
    # Only the third reply waited long enough to need "typing…", and it came before it.
    [typing] = api.calls_to("sendChatAction")
    assert typing.params["chat_id"] == 1001 and sends[1] < typing.at < sends[2]
