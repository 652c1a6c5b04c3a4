"""The real API's failure modes: blocked users, flood limits, network errors, malformed updates.

Whatever happens, the bot keeps answering the next person, and its logs hold neither message
text nor the token.
"""

from __future__ import annotations

import logging
import time

import pytest

pytestmark = pytest.mark.timeout(40)

REBATE = "兼职刷单，日结佣金，点赞关注一单返5元，先垫付连单任务完成后一起返还本金和佣金"
SECRET_TEXT = "机密测试内容XYZ"


def logged(caplog) -> str:
    return "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)


def test_a_person_who_blocked_the_bot_is_unsubscribed_and_others_still_answered(api, start_bot):
    bot = start_bot()
    bot.store.subscribe("telegram", "3001", "private", "09:00", "Asia/Shanghai")
    api.block(3001)
    api.send(3001, REBATE)
    api.wait_for(lambda: any(c.status == 403 for c in api.calls_to("sendMessage")), what="a 403")
    api.wait_for(lambda: not bot.store.subscriptions("telegram"), what="the blocked chat unsubscribed")
    api.send(3002, REBATE)
    assert "刷单返利" in api.wait_messages(3002)[0]["text"]


@pytest.mark.parametrize("limiter", ["true", "false"])
def test_retry_after_is_waited_out_and_the_reply_still_arrives(api, start_bot, limiter):
    start_bot(telegram_rate_limiter=limiter)
    api.fail("sendMessage", "retry_after", retry_after=1, chat_id=3003)
    started = time.monotonic()
    api.send(3003, REBATE)
    [verdict] = api.wait_messages(3003)
    assert "刷单返利" in verdict["text"]
    attempts = [c for c in api.calls_to("sendMessage") if c.params["chat_id"] == 3003]
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 0.9 and time.monotonic() - started < 10


def test_network_errors_while_polling_are_retried(api, start_bot, caplog):
    start_bot()
    api.fail("getUpdates", "server_error", times=2)
    api.send(3004, REBATE)  # fetched by the long poll already waiting
    api.wait_messages(3004)
    api.wait_for(lambda: [c.status for c in api.calls_to("getUpdates")].count(500) == 2, what="two failed polls")
    api.send(3004, "您好")
    assert "反诈小助手" in api.wait_messages(3004, after=1, timeout=20)[0]["text"]
    assert "polling failed (NetworkError" in logged(caplog)


def test_malformed_updates_are_skipped_without_logging_their_text(api, start_bot, caplog):
    caplog.set_level(logging.INFO)  # what `fanzha telegram` logs
    start_bot()
    chat = {"id": 3005, "type": "private", "first_name": "x"}
    api.push_raw({"update_id": 900, "message": SECRET_TEXT})
    api.push_raw({"update_id": 901, "message": {"message_id": 1, "chat": chat, "text": SECRET_TEXT}})  # no date
    api.push_raw({"update_id": 902, "callback_query": {"id": "q", "data": SECRET_TEXT}})
    api.push_raw({"update_id": 903, "message": {"message_id": 2, "date": 1, "chat": SECRET_TEXT}})
    api.push_raw({"update_id": 904, "brand_new_update_kind": {"text": SECRET_TEXT}})
    api.push_raw({"message": {"text": SECRET_TEXT}})  # no update_id at all
    api.push_raw([SECRET_TEXT])
    weird = {"message_id": 3, "date": 1, "chat": chat, "from": api.user(3005), "text": 12345,
             "entities": [{"type": "mention", "offset": 40, "length": 9}]}
    api.push_raw({"update_id": 905, "message": weird})
    api.push_raw({"update_id": 906, "message": {**weird, "message_id": 4, "text": "", "forward_origin": None}})
    api.send(3006, REBATE)
    assert "刷单返利" in api.wait_messages(3006)[0]["text"]
    api.wait_for(lambda: api.pending_updates() == 0, what="every update confirmed")
    assert len(api.messages(3006)) == 1  # answered once: the bad updates did not stall the offset
    text = logged(caplog)
    assert SECRET_TEXT not in text and api.token not in text
    assert "update 900 could not be read" in text


def test_a_failing_handler_is_logged_without_the_text_and_the_person_gets_an_apology(api, start_bot, caplog):
    def broken_ocr(data: bytes):
        raise RuntimeError(f"OCR crashed on {SECRET_TEXT}")

    start_bot(read_picture=broken_ocr)
    api.send(3007, photo=True)
    [apology] = api.wait_messages(3007)
    assert "出了点问题" in apology["text"] and "96110" in apology["text"]
    text = logged(caplog)
    assert "RuntimeError" in text and SECRET_TEXT not in text
    api.send(3007, REBATE)  # and it goes on answering
    assert "刷单返利" in api.wait_messages(3007, after=1)[0]["text"]


def test_start_up_waits_until_telegram_answers(api, start_bot, caplog):
    api.fail("getMe", "server_error", times=2)
    start_bot()  # returns once polling: getMe was retried with back-off
    assert [c.status for c in api.calls_to("getMe")][:3] == [500, 500, 200]
    assert "cannot reach Telegram (NetworkError); retrying" in logged(caplog)
    api.send(3009, REBATE)
    assert "刷单返利" in api.wait_messages(3009)[0]["text"]
