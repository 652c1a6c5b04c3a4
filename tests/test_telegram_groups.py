"""Groups: the bot speaks only when addressed; admins (and only admins) change its settings."""

from __future__ import annotations

import pytest
from fakes import BOT_ID, FakeBotAPI
from fakes.telegram_bot import BotInThread, telegram_settings

pytestmark = pytest.mark.timeout(40)

GROUP = -1001234
SCAM = "我是公安局民警，你的银行卡涉嫌洗钱，请把钱转到安全账户配合资金清查，不要告诉家人"
REBATE = "兼职刷单，日结佣金，点赞关注一单返5元，先垫付连单任务完成后一起返还本金和佣金"
ADMIN, MEMBER = 7001, 7002


@pytest.fixture
def api():
    with FakeBotAPI() as fake:
        fake.set_member_status(GROUP, ADMIN, "administrator")
        yield fake


@pytest.fixture
def bot(api, home, classifier):
    running = BotInThread.start(telegram_settings(api, home), classifier, api, tip_tick=False)
    yield running
    running.stop()


def settle(api: FakeBotAPI, marker: str = "好的，谢谢") -> None:
    """Wait until the bot has handled everything sent so far: a private message is answered last."""
    before = len(api.messages(424242))
    api.send(424242, marker)
    api.wait_messages(424242, after=before)


def reply_containing(api: FakeBotAPI, chat: int, text: str) -> dict:
    return api.wait_for(
        lambda: next((m for m in api.messages(chat) if text in m["text"]), None), what=f"a reply with {text!r}"
    )


def test_introduces_itself_once_when_added(api, bot):
    api.member_update(GROUP, "left", "member")
    [intro] = api.wait_messages(GROUP)
    assert "/check" in intro["text"] and "96110" in intro["text"]
    api.member_update(GROUP, "member", "administrator")  # promoted: no second introduction
    settle(api)
    assert len(api.messages(GROUP)) == 1


def test_everyday_chat_is_ignored_and_only_addressed_messages_are_answered(api, bot):
    api.send(GROUP, "今晚小区停水，大家提前储水", user_id=MEMBER)
    api.send(GROUP, SCAM, user_id=MEMBER)  # even a scam: auto-warning is off
    settle(api)
    assert api.messages(GROUP) == []

    asked = api.mention(GROUP, "", f" 这条是真的吗：{REBATE}", user_id=MEMBER)
    [verdict] = api.wait_messages(GROUP)
    assert "刷单返利" in verdict["text"] and verdict["reply_to_message"]["message_id"] == asked["message_id"]
    # Answered at once, so no "typing…" request spent from the group's 20 messages a minute.
    assert not any(c.params["chat_id"] == GROUP for c in api.calls_to("sendChatAction"))

    api.send(GROUP, "没有", user_id=MEMBER, reply_to=verdict)  # a reply to the bot is addressed to it
    assert "很好" in api.wait_messages(GROUP, after=1)[0]["text"]

    suspicious = api.send(GROUP, SCAM, user_id=MEMBER)
    api.mention(GROUP, user_id=ADMIN, reply_to=suspicious)  # just "@bot" under a suspicious message
    assert "冒充公检法" in api.wait_messages(GROUP, after=2)[0]["text"]


def test_check_as_a_reply_in_a_group_answers_under_the_suspicious_message(api, bot):
    suspicious = api.send(GROUP, REBATE, user_id=MEMBER)
    settle(api)
    api.command(GROUP, "/check", user_id=MEMBER, reply_to=suspicious)
    [verdict] = api.wait_messages(GROUP)
    assert "刷单返利" in verdict["text"]
    assert verdict["reply_to_message"]["message_id"] == suspicious["message_id"]
    api.command(GROUP, "/check@some_other_bot", user_id=MEMBER, reply_to=suspicious)
    settle(api)
    assert len(api.messages(GROUP)) == 1


def test_non_admins_get_a_polite_no(api, bot):
    api.command(GROUP, "/autowarn", "on", user_id=MEMBER)
    assert "只有群管理员" in api.wait_messages(GROUP)[0]["text"]
    api.command(GROUP, "/subscribe", "08:30", user_id=MEMBER)
    api.command(GROUP, "/forget", user_id=MEMBER)
    replies = api.wait_messages(GROUP, count=3)
    assert all("只有群管理员" in r["text"] for r in replies)
    assert not bot.store.autowarn_enabled("telegram", str(GROUP))
    assert bot.store.subscriptions("telegram") == []


def test_admin_turns_on_auto_warning_and_sets_the_tip_time(api, bot):
    api.command(GROUP, "/autowarn", "on", user_id=ADMIN)
    [on] = api.wait_messages(GROUP)
    assert "已开启自动提醒" in on["text"] and "隐私模式" in on["text"]  # privacy mode still on, bot not admin
    assert bot.store.autowarn_enabled("telegram", str(GROUP))

    scam = api.send(GROUP, SCAM, user_id=MEMBER)
    [warning] = api.wait_messages(GROUP, after=1)
    assert warning["reply_to_message"]["message_id"] == scam["message_id"]
    assert "冒充公检法" in warning["text"] and len(warning["text"]) < 120  # short, never a lecture
    api.send(GROUP, REBATE, user_id=MEMBER)  # the same burst: no second warning
    api.send(GROUP, "大家晚上好", user_id=MEMBER)
    settle(api)
    assert len(api.messages(GROUP)) == 2

    # From here the daily tip may arrive too (07:45 may have passed): look for the replies by content.
    api.command(GROUP, "/subscribe", "7:45", user_id=ADMIN)
    reply_containing(api, GROUP, "每天 07:45")
    [sub] = bot.store.subscriptions("telegram")
    assert sub["chat_id"] == str(GROUP) and sub["tip_time"] == "07:45" and sub["tip_zone"] == "Asia/Shanghai"
    api.command(GROUP, "/subscribe", "25:00", user_id=ADMIN)
    reply_containing(api, GROUP, "时:分")
    api.command(GROUP, "/autowarn", "off", user_id=ADMIN)
    reply_containing(api, GROUP, "已关闭自动提醒")
    assert not bot.store.autowarn_enabled("telegram", str(GROUP))
    admin_lookups = [c for c in api.calls_to("getChatMember") if c.params["user_id"] == ADMIN]
    assert len(admin_lookups) == 1  # cached


def test_an_admin_bot_needs_no_privacy_hint(api, bot):
    api.set_member_status(GROUP, BOT_ID, "administrator")
    api.command(GROUP, "/autowarn", "on", user_id=ADMIN)
    [on] = api.wait_messages(GROUP)
    assert "已开启自动提醒" in on["text"] and "隐私模式" not in on["text"]


def test_settings_follow_a_group_that_became_a_supergroup(api, bot):
    old, new = -4242, -1004242
    api.set_member_status(old, ADMIN, "creator")
    api.chat(old, kind="group")
    api.command(old, "/subscribe", "08:00", user_id=ADMIN)
    api.command(old, "/autowarn", "on", user_id=ADMIN)
    api.wait_messages(old, count=2)
    api.migrate(old, new)
    api.wait_for(lambda: bot.store.chat("telegram", str(new)), what="the chat moved in the database")
    assert bot.store.chat("telegram", str(old)) is None
    moved = bot.store.chat("telegram", str(new))
    assert moved["subscribed"] == 1 and moved["tip_time"] == "08:00" and moved["autowarn"] == 1


def test_removed_from_a_group_it_stops_sending_tips(api, bot):
    api.command(GROUP, "/subscribe", user_id=ADMIN)
    api.wait_messages(GROUP)
    assert bot.store.subscriptions("telegram")
    api.member_update(GROUP, "member", "kicked")
    api.wait_for(lambda: not bot.store.subscriptions("telegram"), what="unsubscribed")


def test_the_check_limit_is_per_member_not_per_group(api, home, classifier):
    settings = telegram_settings(api, home, checks_per_minute="1")
    with BotInThread.start(settings, classifier, api, tip_tick=False):
        api.mention(GROUP, "", f" {REBATE}", user_id=MEMBER)
        api.mention(GROUP, "", f" {SCAM}", user_id=MEMBER)
        first, limited = api.wait_messages(GROUP, count=2)
        assert "刷单返利" in first["text"] and "稍等一分钟" in limited["text"]
        api.mention(GROUP, "", f" {SCAM}", user_id=ADMIN)  # someone else in the same group is still answered
        assert "冒充公检法" in api.wait_messages(GROUP, after=2)[0]["text"]
