"""Screenshots on Telegram: photos and image documents are downloaded through the Bot API
stand-in, read by bot.ocr (a scripted engine here, the real one in the last test) and checked.

The scripted engine still goes through the real decoding, size checks and layout of
bot.ocr.read_image_bytes, so a non-image sent as ``image/jpeg`` is refused for real.
"""

from __future__ import annotations

import os
import sys
import time

import imagegen
import pytest
from fakes import FakeBotAPI
from fakes.bot_api_wire import blank_png

from bot import ocr
from bot.ocr_layout import TextBox

pytestmark = pytest.mark.timeout(60)

SCAM_LINES = ("我是市公安局刑侦支队的民警，你的身份证涉嫌洗钱。", "你必须把存款全部转到国家安全账户接受审查，不得告诉任何人。")
REBATE = "兼职刷单，日结佣金，点赞关注一单返5元，先垫付连单任务完成后一起返还本金和佣金"
GROUP, ADMIN, MEMBER = -100777, 7001, 7002
SHOT = blank_png(360, 640)


def scripted_reader(lines: tuple[str, ...] = SCAM_LINES, delay: float = 0.0):
    """bot.ocr.read_image_bytes with an engine that "sees" *lines* in the middle of the screen."""

    def engine(image):
        time.sleep(delay)
        scale = image.width / 360
        return [TextBox(t, 20 * scale, (200 + 90 * i) * scale, 340 * scale, (230 + 90 * i) * scale) for i, t in
                enumerate(lines)]

    return lambda data: ocr.read_image_bytes(data, engine=engine)


@pytest.fixture
def api():
    with FakeBotAPI() as fake:
        fake.set_member_status(GROUP, ADMIN, "administrator")
        yield fake


def test_a_photo_is_read_and_the_reply_says_so_and_quotes_the_key_line(api, start_bot):
    start_bot(scripted_reader())
    sent = api.send(1001, photo=SHOT)
    [verdict] = api.wait_messages(1001)
    text = verdict["text"]
    assert "高风险" in text and "从图片中识别" in text and "我主要依据的是这一句" in text
    quoted = text.split("“", 1)[1].split("”", 1)[0].rstrip("…")
    assert quoted and quoted[:12] in "".join(SCAM_LINES)
    [download] = api.calls_to("getFile")
    assert download.params["file_id"] == sent["photo"][-1]["file_id"]  # the largest size, not the thumbnail
    # Reading a picture always takes a while: "typing…" goes out first, once.
    [typing] = api.calls_to("sendChatAction")
    assert typing.params["action"] == "typing" and typing.params["chat_id"] == 1001
    assert typing.at < download.at < api.calls_to("sendMessage")[0].at


def test_an_image_document_is_read_like_a_photo(api, start_bot):
    start_bot(scripted_reader())
    api.send(1001, document=SHOT, mime_type="image/png")
    [verdict] = api.wait_messages(1001)
    assert "从图片中识别" in verdict["text"] and "冒充公检法" in verdict["text"]
    assert api.calls_to("getFile")[0].params["file_id"].startswith("d")


def test_a_non_image_or_unreadable_picture_gets_a_clear_kind_reply(api, start_bot):
    start_bot(scripted_reader())
    api.send(1001, document=b"%PDF-1.7 this is not a picture", mime_type="image/jpeg")
    [refused] = api.wait_messages(1001)
    assert refused["text"] == "这张图片我处理不了（太大或不是图片）。请把图片里的文字发给我。"
    api.send(1001, document=b"%PDF-1.7", mime_type="application/pdf")  # not a picture at all: no download
    assert "没有收到文字" in api.wait_messages(1001, after=1)[0]["text"]
    assert len(api.calls_to("getFile")) == 1


def test_a_caption_is_checked_with_the_picture_and_alone_when_the_picture_says_nothing(api, start_bot):
    start_bot(scripted_reader(lines=()))
    api.send(1001, photo=SHOT, caption=REBATE)
    [verdict] = api.wait_messages(1001)
    assert "刷单返利" in verdict["text"] and "从图片中识别" not in verdict["text"]
    api.send(1001, photo=SHOT)
    assert "没有我能读的文字" in api.wait_messages(1001, after=1)[0]["text"]


def test_pictures_a_minute_per_chat(api, start_bot):
    start_bot(scripted_reader(), pictures_per_minute="2")
    for _ in range(3):
        api.send(1001, photo=SHOT)
    replies = api.wait_messages(1001, count=3)
    assert ["从图片中识别" in r["text"] for r in replies] == [True, True, False]
    assert "稍等一分钟" in replies[2]["text"]
    assert len(api.calls_to("getFile")) == 2  # the third picture was never downloaded
    api.send(1002, photo=SHOT)  # another chat has its own allowance
    assert "从图片中识别" in api.wait_messages(1002)[0]["text"]


def test_a_slow_picture_never_holds_up_another_chat(api, start_bot):
    start_bot(scripted_reader(delay=2.0))
    api.send(1001, photo=SHOT)
    api.wait_call("getFile")
    api.send(1002, REBATE)
    [text_reply] = api.wait_messages(1002)
    assert "刷单返利" in text_reply["text"] and api.messages(1001) == []  # answered while OCR still runs
    assert "从图片中识别" in api.wait_messages(1001)[0]["text"]


def test_without_the_ocr_extra_a_picture_gets_the_kind_reply(api, monkeypatch, start_bot):
    monkeypatch.setattr(ocr, "_engine_instance", None)
    monkeypatch.setitem(sys.modules, "bot.adapters.ocr_engine", None)  # the import fails as if not installed
    start_bot()  # the real reader
    api.send(1001, photo=SHOT)
    assert api.wait_messages(1001)[0]["text"] == "我暂时看不了图片。请把图片里的文字打出来或复制给我，我帮您看看。"
    api.send(1001, photo=SHOT, caption=REBATE)  # the caption is still checked
    assert "刷单返利" in api.wait_messages(1001, after=1)[0]["text"]


def test_groups_read_a_picture_when_asked_and_never_download_everyday_ones(api, start_bot):
    start_bot(scripted_reader())
    picture = api.send(GROUP, photo=SHOT, user_id=MEMBER)
    api.send(424242, "好的，谢谢")
    api.wait_messages(424242)
    assert api.messages(GROUP) == [] and api.calls_to("getFile") == []  # auto-warning off: not even fetched

    api.command(GROUP, "/check", user_id=MEMBER, reply_to=picture)
    [verdict] = api.wait_messages(GROUP)
    assert "从图片中识别" in verdict["text"] and verdict["reply_to_message"]["message_id"] == picture["message_id"]

    api.command(GROUP, "/autowarn", "on", user_id=ADMIN)
    api.wait_messages(GROUP, after=1)
    scam_picture = api.send(GROUP, photo=SHOT, user_id=MEMBER)
    [warning] = api.wait_messages(GROUP, after=2)
    assert warning["reply_to_message"]["message_id"] == scam_picture["message_id"]
    assert "冒充公检法" in warning["text"] and len(warning["text"]) < 120


def test_a_real_screenshot_is_read_offline_and_flagged(api, start_bot):
    if not ocr.ocr_available() or imagegen.find_cjk_font() is None:
        message = "needs fanzha[ocr] and a CJK font"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    scene = next(s for s in imagegen.SCAM_SCENES if s.name == "police_safe_account")
    shot = imagegen.render(scene, imagegen.Look("chat", (720, 1280), jpeg_quality=85))
    start_bot()  # the real engine
    api.send(1001, document=shot.image_bytes, mime_type="image/jpeg")
    [verdict] = api.wait_messages(1001, timeout=30)
    assert "从图片中识别" in verdict["text"] and "高风险" in verdict["text"]
    quoted = verdict["text"].split("“", 1)[1].split("”", 1)[0].rstrip("…")
    assert any(quoted[:8] in bubble for bubble in shot.truth)


def test_the_checked_picture_text_is_kept_only_after_consent(api, start_bot):
    bot = start_bot(scripted_reader())
    api.send(1001, photo=SHOT)
    [verdict] = api.wait_messages(1001)
    cid = next(b["callback_data"] for row in verdict["reply_markup"]["inline_keyboard"] for b in row
               if b["callback_data"].endswith(":bad")).split(":")[1]
    api.press(verdict, f"fb:{cid}:bad")
    picker = api.wait_messages(1001, after=1)[0]
    api.press(picker, f"fc:{cid}:benign")
    question = api.wait_for(lambda: next((m for m in api.messages(1001) if "保存" in m["text"]), None))
    api.press(question, f"fk:{cid}:yes")
    api.wait_for(lambda: bot.store.pending_reviews(), what="the kept text")
    [item] = bot.store.pending_reviews()
    assert SCAM_LINES[0][:10] in item["text"]
