"""In-memory chat state forgets what it should, keeps what it must, and stays bounded."""

from __future__ import annotations

from bot.adapters.telegram_state import ReviewDrafts
from bot.session import IDLE_SECONDS, Sessions


def test_idle_chats_are_forgotten_when_a_new_chat_arrives_and_active_ones_are_kept():
    sessions = Sessions()
    sessions.expect_follow_up("old", "refund_scam", now=0.0)
    sessions.expect_follow_up("busy", "refund_scam", now=0.0)
    sessions.expect_follow_up("busy", "investment", now=IDLE_SECONDS - 10)  # used again later
    sessions.expect_follow_up("new", "romance", now=IDLE_SECONDS + 1)
    assert sessions.active_chats() == 2
    assert sessions.pending_follow_up("old", IDLE_SECONDS + 1) is None
    assert sessions.pending_follow_up("busy", IDLE_SECONDS + 1) == "investment"


def test_a_forwarded_batch_still_waiting_survives_pruning():
    sessions = Sessions(batch_window=4.0)
    sessions.add_to_batch("forwarder", "第一条转发", now=0.0)
    sessions.expect_follow_up("idle", "refund_scam", now=1.0)
    sessions.expect_follow_up("newcomer", "refund_scam", now=IDLE_SECONDS + 10)
    assert sessions.active_chats() == 2
    assert sessions.take_batch("forwarder", now=IDLE_SECONDS + 10) == ["第一条转发"]


def test_drafts_expire_are_capped_oldest_first_and_belong_to_their_chat():
    drafts = ReviewDrafts(ttl=100.0, limit=3)
    for i in range(5):
        drafts.put(i, chat_id=f"c{i}", text=f"消息{i}", now=float(i))
    assert len(drafts) == 3
    assert drafts.get(0, "c0", now=5.0) is None and drafts.get(1, "c1", now=5.0) is None
    assert drafts.get(4, "c4", now=5.0).text == "消息4"
    assert drafts.get(4, "someone-else", now=5.0) is None
    assert drafts.pop(2, "c2", now=5.0).text == "消息2" and drafts.get(2, "c2", now=5.0) is None

    drafts.put(10, chat_id="c10", text="新的", now=103.5)  # 3 expired at 103, 4 lives until 104
    assert len(drafts) == 2 and drafts.get(3, "c3", now=103.5) is None
    assert drafts.get(4, "c4", now=103.5) is not None


def test_a_full_draft_store_keeps_taking_new_drafts():
    drafts = ReviewDrafts(ttl=1e9, limit=1000)
    for i in range(20_000):
        drafts.put(i, chat_id="c", text="x", now=float(i))
    assert len(drafts) == 1000
    assert drafts.get(19_999, "c", now=20_000.0) is not None and drafts.get(18_999, "c", now=20_000.0) is None
