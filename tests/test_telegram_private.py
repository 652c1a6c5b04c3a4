"""Private chats with the real Telegram bot (PTB) against the Bot API stand-in on 127.0.0.1.

Updates go in through getUpdates; the tests read what the bot sent back.
"""

from __future__ import annotations

import pytest
from fakes import FakeBotAPI

pytestmark = pytest.mark.timeout(40)

SCAM = "我是公安局民警，你的银行卡涉嫌洗钱，请把钱转到安全账户配合资金清查，不要告诉家人"
REBATE = "兼职刷单，日结佣金，点赞关注一单返5元，先垫付连单任务完成后一起返还本金和佣金"
FORWARDS = ["您好，我是快递理赔专员，您购买的商品在运输途中丢失了", "我们给您双倍赔偿，请下载会议软件开启屏幕共享，我指导您办理退款"]


def buttons(message: dict) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row]


def labels(message: dict) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["text"] for row in rows for b in row]


def check(api: FakeBotAPI, chat: int, text: str = SCAM) -> dict:
    """Send *text* and return the bot's verdict message (the one with the feedback buttons)."""
    before = len(api.messages(chat))
    api.send(chat, text)
    return api.wait_for(
        lambda: next((m for m in api.messages(chat)[before:] if any(b.startswith("fb:") for b in buttons(m))), None),
        what="a verdict with feedback buttons",
    )


def test_start_help_hotline_and_the_command_menu(api, start_bot):
    start_bot()
    assert {c["command"] for c in api.commands["all_private_chats"]} >= {"start", "check", "tips", "forget"}
    assert {c["command"] for c in api.commands["all_group_chats"]} >= {"check", "autowarn", "subscribe"}
    api.command(1001, "/start")
    [welcome] = api.wait_messages(1001)
    assert "反诈小助手" in welcome["text"] and "转发" in welcome["text"]
    api.command(1001, "/help")
    assert "我能帮您" in api.wait_messages(1001, after=1)[0]["text"]
    api.command(1001, "/hotline")
    hotline = api.wait_messages(1001, after=2)[0]["text"]
    assert "96110" in hotline and "110" in hotline and "国家反诈中心" in hotline
    api.command(1001, "/nonsense")
    assert "我能帮您" in api.wait_messages(1001, after=3)[0]["text"]


def test_private_check_answers_with_follow_up_and_feedback_buttons(api, start_bot):
    bot = start_bot()
    verdict = check(api, 1001)
    assert "高风险" in verdict["text"] and "冒充公检法" in verdict["text"] and "96110" in verdict["text"]
    assert "<b>" not in verdict["text"]  # sent as HTML: the markup was parsed, not shown
    [[cid]] = [[b.split(":")[1] for b in buttons(verdict) if b.endswith(":ok")]]
    assert buttons(verdict) == ["q:paid", "q:not_paid", f"fb:{cid}:ok", f"fb:{cid}:bad"]
    assert labels(verdict)[2:] == ["👍 有帮助", "判断有误"]
    # A typed message is answered at once: one reply and no "typing…" request before it
    # (the delayed indicator itself: tests/test_telegram_limits.py).
    assert len(api.messages(1001)) == 1
    assert api.calls_to("sendChatAction") == []
    row = bot.store.consultation(int(cid))
    assert row["label"] == "safe_account" and row["chat_id"] == "1001" and row["platform"] == "telegram"
    assert bot.store.query("SELECT count(*) AS n FROM review_items")[0]["n"] == 0


def test_tapping_already_paid_gives_the_urgent_steps(api, start_bot):
    start_bot()
    verdict = check(api, 1001)
    api.press(verdict, "q:paid")
    urgent = api.wait_messages(1001, after=1)[-1]
    assert "请马上这样做" in urgent["text"] and "110" in urgent["text"]
    api.wait_call("answerCallbackQuery")
    api.wait_for(lambda: "q:paid" not in buttons(api.current(verdict)), what="follow-up buttons removed")
    assert any(b.startswith("fb:") for b in buttons(api.current(verdict)))


def test_forwarded_messages_are_judged_once_as_a_batch(api, start_bot):
    start_bot()
    for text in FORWARDS:
        api.send(1001, text, forward_from="陌生人")
    [verdict] = api.wait_messages(1001)
    assert "2 条消息放在一起看" in verdict["text"] and "高风险" in verdict["text"]
    # "typing…" for each forward while the batch was collected, none for the verdict itself.
    typing = api.calls_to("sendChatAction")
    assert [c.params["chat_id"] for c in typing] == [1001] * len(FORWARDS)
    assert typing[-1].at < api.calls_to("sendMessage")[0].at
    assert len(api.messages(1001)) == 1


def test_a_sticker_asks_for_the_text(api, start_bot):
    # Photos and image documents: tests/test_telegram_pictures.py
    start_bot()
    api.send(1001, sticker={"file_id": "s", "file_unique_id": "s", "type": "regular", "width": 1, "height": 1,
                            "is_animated": False, "is_video": False})
    assert "没有收到文字" in api.wait_messages(1001)[0]["text"]


def test_check_as_a_reply_or_with_text_and_its_usage(api, start_bot):
    start_bot()
    suspicious = api.message(1001, REBATE)
    api.command(1001, "/check", reply_to=suspicious)
    assert "刷单返利" in api.wait_messages(1001)[0]["text"]
    api.command(1001, "/check", SCAM)
    assert "冒充公检法" in api.wait_messages(1001, after=1)[0]["text"]
    api.command(1001, "/check")
    assert "回复" in api.wait_messages(1001, after=2)[0]["text"]


def test_helpful_feedback_is_recorded_and_thanked(api, start_bot):
    bot = start_bot()
    verdict = check(api, 1001)
    cid = buttons(verdict)[-1].split(":")[1]
    api.press(verdict, f"fb:{cid}:ok")
    call = api.wait_call("answerCallbackQuery", lambda c: c.params.get("text"))
    assert "谢谢" in call.params["text"]
    api.wait_for(lambda: not any(b.startswith("fb:") for b in buttons(api.current(verdict))), what="feedback row gone")
    [row] = bot.store.query("SELECT * FROM feedback")
    assert row["consultation_id"] == int(cid) and row["helpful"] == 1


def wrong_verdict_to_consent_question(api: FakeBotAPI, chat: int) -> tuple[str, dict]:
    """Say the verdict was wrong, pick "不是诈骗"; returns (consultation id, the consent question)."""
    verdict = check(api, chat)
    cid = buttons(verdict)[-1].split(":")[1]
    api.press(verdict, f"fb:{cid}:bad")
    picker = api.wait_for(
        lambda: next((m for m in api.messages(chat) if any(b.startswith("fc:") for b in buttons(m))), None),
        what="the category picker",
    )
    assert "哪一类" in picker["text"]
    assert {"刷单返利", "冒充公检法", "虚假投资理财", "不是诈骗"} <= set(labels(picker))
    api.press(picker, f"fc:{cid}:benign")
    question = api.wait_for(
        lambda: next((m for m in api.messages(chat) if any(b.startswith("fk:") for b in buttons(m))), None),
        what="the consent question",
    )
    assert "保存这条消息的文字" in question["text"] and labels(question) == ["同意保存", "不保存"]
    assert "谢谢" in api.current(picker)["text"] and not buttons(api.current(picker))
    return cid, question


def test_wrong_verdict_keeps_the_text_only_after_an_explicit_yes(api, start_bot):
    bot = start_bot()
    cid, question = wrong_verdict_to_consent_question(api, 1001)
    [feedback] = bot.store.query("SELECT * FROM feedback")
    assert feedback["helpful"] == 0 and feedback["corrected_label"] == "benign"
    assert bot.store.query("SELECT count(*) AS n FROM review_items")[0]["n"] == 0  # not before "yes"
    api.press(question, f"fk:{cid}:yes")
    api.wait_for(lambda: "已保存" in api.current(question)["text"], what="the kept confirmation")
    [item] = bot.store.pending_reviews()
    assert item["text"] == SCAM and item["suggested_label"] == "benign" and item["model_label"] == "safe_account"


def test_saying_no_keeps_nothing(api, start_bot):
    bot = start_bot()
    cid, question = wrong_verdict_to_consent_question(api, 1001)
    api.press(question, f"fk:{cid}:no")
    api.wait_for(lambda: "不保存" in api.current(question)["text"], what="the not-kept confirmation")
    assert bot.store.pending_reviews() == []
    api.press(question, f"fk:{cid}:yes")  # a late "yes" on the old buttons finds no text to keep
    api.wait_for(lambda: len(api.calls_to("answerCallbackQuery")) >= 4, what="the late tap answered")
    assert bot.store.pending_reviews() == []


def test_buttons_for_someone_elses_consultation_do_nothing(api, start_bot):
    bot = start_bot()
    verdict = check(api, 1001)
    cid = buttons(verdict)[-1].split(":")[1]
    forged = api.message(1002, "假的")
    forged["reply_markup"] = {"inline_keyboard": [[{"text": "x", "callback_data": f"fb:{cid}:bad"}]]}
    api.press(forged, f"fb:{cid}:bad")
    api.press(forged, "zz:unknown")
    api.wait_for(lambda: len(api.calls_to("answerCallbackQuery")) >= 2, what="both taps answered")
    assert bot.store.query("SELECT count(*) AS n FROM feedback")[0]["n"] == 0
    assert api.messages(1002) == []


def test_forget_deletes_everything_about_the_chat(api, start_bot):
    bot = start_bot()
    verdict = check(api, 1001)
    api.command(1001, "/subscribe")
    api.wait_messages(1001, after=1)
    assert bot.store.chat("telegram", "1001")["subscribed"] == 1
    api.command(1001, "/forget")
    assert "已删除" in api.wait_messages(1001, after=2)[0]["text"]
    assert bot.store.chat("telegram", "1001") is None
    assert bot.store.query("SELECT count(*) AS n FROM consultations WHERE chat_id = '1001'")[0]["n"] == 0
    cid = buttons(verdict)[-1].split(":")[1]
    api.press(verdict, f"fb:{cid}:bad")  # the consultation is gone: the button does nothing
    api.wait_call("answerCallbackQuery")
    assert bot.store.query("SELECT count(*) AS n FROM feedback")[0]["n"] == 0


def test_the_per_person_rate_limit_answers_kindly(api, start_bot):
    start_bot(checks_per_minute=2)
    for n in range(3):
        api.send(1001, f"{REBATE}，第{n}单")
    replies = api.wait_messages(1001, count=3)
    assert "稍等一分钟" in replies[2]["text"]
    assert "刷单返利" in replies[0]["text"] and "刷单返利" in replies[1]["text"]
