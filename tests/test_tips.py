"""Tip selection over a simulated year and the once-a-day broadcast bookkeeping."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bot.broadcast import BLOCKED, OK, SendResult, send_due_tips
from bot.storage import Store
from bot.tips import choose_tip, load_tips, parse_tips
from classifier.knowledge import KnowledgeError
from classifier.resources import resource_path


@pytest.fixture(scope="module")
def library():
    return load_tips()


def test_library_is_large_and_valid(library):
    assert len(library.tips) >= 90
    assert sum(1 for t in library.tips if not t.seasons) >= 60
    assert all(20 <= len(t.text) <= 300 for t in library.tips)


def test_no_repeats_until_every_applicable_tip_was_sent(library):
    history: list[str] = []
    day = date(2026, 1, 1)
    for _ in range(365):
        tip = choose_tip(library, history, day, "telegram:1")
        applicable = {t.id for t in library.applicable(day)}
        # Within the current round no id repeats: the last occurrence of this tip is
        # before the point where the previous round completed.
        had: set[str] = set()
        for tip_id in history:
            if tip_id in applicable:
                had.add(tip_id)
                if had >= applicable:
                    had = set()
        assert tip.id not in had
        assert tip.id in applicable
        history.append(tip.id)
        day += timedelta(days=1)
    evergreen = [t.id for t in library.tips if not t.seasons]
    assert set(evergreen) <= set(history)


def test_seasonal_tips_come_first_in_their_season(library):
    day = date(2026, 11, 8)  # shopping festival
    history: list[str] = []
    seasonal = {t.id for t in library.tips if "shopping_festival" in t.seasons}
    picks = []
    for n in range(len(seasonal)):
        tip = choose_tip(library, history, day + timedelta(days=n % 3), "c")
        picks.append(tip.id)
        history.append(tip.id)
    assert set(picks) <= {t.id for t in library.tips if t.seasons}


def test_choice_is_deterministic_per_chat_and_day(library):
    day = date(2026, 3, 3)
    assert choose_tip(library, [], day, "a").id == choose_tip(library, [], day, "a").id
    picks = {choose_tip(library, [], day, f"chat{n}").id for n in range(30)}
    assert len(picks) > 5


def test_invalid_tip_file_is_reported(tmp_path):
    data = {"seasons": {}, "tips": [{"id": "x", "text": "好" * 30, "categories": ["nope"], "seasons": ["winter"]}]}
    with pytest.raises(KnowledgeError) as err:
        parse_tips(data, Path("tips.yaml"))
    assert "unknown category 'nope'" in str(err.value) and "unknown season 'winter'" in str(err.value)


class RecordingSender:
    platform = "telegram"

    def __init__(self, blocked=(), fail_once=()):
        self.sent: list[tuple[str, str]] = []
        self.blocked, self.fail_once = set(blocked), set(fail_once)

    async def send_tip(self, chat_id, text):
        if chat_id in self.blocked:
            return SendResult(BLOCKED)
        if chat_id in self.fail_once:
            self.fail_once.discard(chat_id)
            return SendResult("failed")
        self.sent.append((chat_id, text))
        return SendResult(OK)


def at(hour, minute=0, day=1):
    # 09:00 Asia/Shanghai is 01:00 UTC
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


def test_round_sends_once_per_day_and_catches_up_after_downtime(tmp_path, library):
    store = Store(tmp_path / "f.db")
    for n in range(5):
        store.subscribe("telegram", str(n), "private", "09:00", "Asia/Shanghai")
    sender = RecordingSender()
    assert asyncio.run(send_due_tips(store, library, sender, at(0, 30))).sent == []  # 08:30 local
    # The bot was down at 09:00; it starts at 15:00 local the same day: sent once.
    assert len(asyncio.run(send_due_tips(store, library, sender, at(7))).sent) == 5
    again = asyncio.run(send_due_tips(store, library, sender, at(7, 1)))
    assert again.sent == [] and again.skipped == 5
    assert len(sender.sent) == 5
    # Next day: a new tip for each chat.
    asyncio.run(send_due_tips(store, library, sender, at(1, 0, day=2)))
    assert len(sender.sent) == 10
    for n in range(5):
        first, second = store.tip_history("telegram", str(n))
        assert first != second


def test_blocked_chats_are_unsubscribed_and_failures_retried(tmp_path, library):
    store = Store(tmp_path / "f.db")
    for n in range(3):
        store.subscribe("telegram", str(n), "private", "09:00", "Asia/Shanghai")
    sender = RecordingSender(blocked={"1"}, fail_once={"2"})
    report = asyncio.run(send_due_tips(store, library, sender, at(2)))
    assert report.blocked == ["1"] and report.failed == ["2"] and report.sent == ["0"]
    assert [s["chat_id"] for s in store.subscriptions("telegram")] == ["0", "2"]
    report = asyncio.run(send_due_tips(store, library, sender, at(2, 1)))
    assert report.sent == ["2"]
    assert [c for c, _ in sender.sent] == ["0", "2"]


def test_restart_mid_round_resends_the_same_tip_once(tmp_path, library):
    store = Store(tmp_path / "f.db")
    store.subscribe("telegram", "9", "private", "09:00", "Asia/Shanghai")
    day = "2026-12-01"
    tip = choose_tip(library, [], date(2026, 12, 1), "telegram:9")
    # A crash after the claim, before delivery: the claim stays 'sending'.
    assert store.claim_tip_send("telegram", "9", day, tip.id)
    store.conn.execute("UPDATE tip_sends SET updated_at = '2000-01-01T00:00:00+00:00'")
    sender = RecordingSender()
    report = asyncio.run(send_due_tips(store, library, sender, at(3)))
    assert report.sent == ["9"] and tip.text in sender.sent[0][1]
    assert asyncio.run(send_due_tips(store, library, sender, at(4))).sent == []


def test_tips_yaml_round_trips(library):
    raw = yaml.safe_load(resource_path("data/tips.yaml").read_text(encoding="utf-8"))
    assert len(raw["tips"]) == len(library.tips)


class SlowSender(RecordingSender):
    """Takes a while per send (a round trip) and notes how many sends overlapped."""

    def __init__(self, concurrency=None, **kwargs):
        super().__init__(**kwargs)
        if concurrency is not None:
            self.concurrency = concurrency
        self.in_flight = self.most_in_flight = 0

    async def send_tip(self, chat_id, text):
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.02 if int(chat_id) % 2 else 0.005)  # finishing out of order
        self.in_flight -= 1
        return await super().send_tip(chat_id, text)


def test_a_sender_that_paces_itself_gets_several_sends_at_once_and_each_chat_once(tmp_path, library):
    store = Store(tmp_path / "f.db")
    for n in range(20):
        store.subscribe("telegram", str(n), "private", "09:00", "Asia/Shanghai")
    in_order = [s["chat_id"] for s in store.subscriptions("telegram")]
    sender = SlowSender(concurrency=4, blocked={"3"}, fail_once={"6"})
    report = asyncio.run(send_due_tips(store, library, sender, at(2)))
    assert sender.most_in_flight == 4
    # The report keeps the order of the chats, whatever order the sends finished in.
    assert report.sent == [c for c in in_order if c not in ("3", "6")]
    assert report.blocked == ["3"] and report.failed == ["6"]
    assert sorted(int(c) for c, _ in sender.sent) == [n for n in range(20) if n not in (3, 6)]
    assert "3" not in [s["chat_id"] for s in store.subscriptions("telegram")]
    again = asyncio.run(send_due_tips(store, library, sender, at(2, 1)))
    assert again.sent == ["6"] and again.skipped == 18
    # A tip is still the deterministic pick for the chat and day.
    for n in (0, 7):
        [row] = store.query("SELECT tip_id FROM tip_sends WHERE chat_id = ?", (str(n),))
        assert row["tip_id"] == choose_tip(library, [], date(2026, 12, 1), f"telegram:{n}").id


def test_a_sender_without_a_concurrency_gets_one_send_at_a_time(tmp_path, library):
    store = Store(tmp_path / "f.db")
    for n in range(6):
        store.subscribe("telegram", str(n), "private", "09:00", "Asia/Shanghai")
    sender = SlowSender()
    assert len(asyncio.run(send_due_tips(store, library, sender, at(2))).sent) == 6
    assert sender.most_in_flight == 1


def test_a_send_that_crashes_ends_the_round_after_the_sends_in_flight(tmp_path, library):
    store = Store(tmp_path / "f.db")
    for n in range(10):
        store.subscribe("telegram", str(n), "private", "09:00", "Asia/Shanghai")

    class Crashing(SlowSender):
        async def send_tip(self, chat_id, text):
            if chat_id == "2":
                raise RuntimeError("boom")
            return await super().send_tip(chat_id, text)

    sender = Crashing(concurrency=3)
    with pytest.raises(RuntimeError):
        asyncio.run(send_due_tips(store, library, sender, at(2)))
    started = {c for c, _ in sender.sent}
    assert {"0", "1"} <= started and len(started) < 9  # the round stopped, what had started finished
    finished = {r["chat_id"] for r in store.query("SELECT chat_id FROM tip_sends WHERE status = 'sent'")}
    assert finished == started
