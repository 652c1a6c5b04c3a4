"""Screenshots: read offline, chrome dropped, bubbles apart, limits kept, other chats never blocked.

Most tests need only Pillow (hand-made boxes, fake engines). A few read generated screenshots
with the real engine; they need fanzha[ocr] and a CJK font, skip without them on a developer's
machine, and fail on CI (CI=true), where .ci/run installs both: a skip there would hide a
missing install step. The full measurement is bench/ocr_bench.py.
"""

from __future__ import annotations

import asyncio
import io
import os
import struct
import subprocess
import sys
import threading
import time
import types
import zlib

import imagegen
import pytest
from conftest import FANZHA, ROOT

from bot import ocr
from bot.messages import GROUP, IncomingMessage
from bot.ocr import ImageRefused, ImageText, OcrUnavailable, OcrWorker, PictureLimiter, PictureReader
from bot.ocr_layout import TextBox, assemble, join_wrapped

pytestmark = pytest.mark.timeout(60)

Image = pytest.importorskip("PIL.Image", reason="Pillow is needed to make test pictures (pip install pillow)")


def need_real_ocr() -> None:
    """Skip (fail on CI) unless the OCR engine and a CJK font are installed."""
    missing = []
    if not ocr.ocr_available():
        missing.append('rapidocr-onnxruntime (pip install "fanzha[ocr]")')
    if imagegen.find_cjk_font() is None:
        missing.append(f"a CJK font ({imagegen.FONT_HINT})")
    if missing:
        message = "reading real screenshots needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run must install them")
        pytest.skip(message)


def png(width: int, height: int, colour="white") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "PNG")
    return out.getvalue()


def no_text_engine(image):
    return []


# Layout: hand-made boxes as an engine returns them for a 720x1280 chat screenshot ---------------
def box(text, x0, y0, x1, y1):
    return TextBox(text, x0, y0, x1, y1)


CHAT_BOXES = [
    box("16:23", 20, 11, 80, 39),
    box("中国移动4G", 96, 11, 215, 39),
    box("48%", 590, 11, 640, 39),
    box("<微信", 22, 82, 118, 114),
    box("+86 165 0021 8834", 225, 82, 495, 114),
    box("星期二 16:31", 291, 176, 428, 205),
    box("我是市公安局刑侦支队的民警", 137, 260, 552, 296),
    box("，你的身份证涉嫌一起洗钱案", 137, 308, 552, 340),
    box("件，已被冻结。", 137, 352, 345, 386),
    box("怎么可能？我什么都没做", 233, 455, 585, 492),
    box("为了证明你的清白，你必须把", 137, 560, 552, 596),
    box("名下存款全部转到国家安全账", 137, 606, 552, 640),
    box("户。", 137, 650, 190, 694),
    box("O", 25, 1200, 70, 1245),
    box("按住 说话", 250, 1205, 375, 1245),
    box("+", 660, 1205, 690, 1245),
]


def test_layout_drops_phone_and_app_chrome_and_keeps_bubbles_apart():
    layout = assemble(CHAT_BOXES, 720, 1280)
    assert layout.bubbles == (
        "我是市公安局刑侦支队的民警，你的身份证涉嫌一起洗钱案件，已被冻结。",
        "怎么可能？我什么都没做",
        "为了证明你的清白，你必须把名下存款全部转到国家安全账户。",
    )
    assert layout.text.count("\n") == 2
    for chrome in ("16:23", "48%", "中国移动", "微信", "8834", "星期二", "按住"):
        assert chrome not in layout.text
        assert any(chrome in line for line in layout.dropped)


def test_layout_reading_order_does_not_depend_on_the_engines_order():
    assert assemble(list(reversed(CHAT_BOXES)), 720, 1280) == assemble(CHAT_BOXES, 720, 1280)


def test_cropped_screenshot_keeps_a_first_line_that_mentions_a_time():
    boxes = [box("请于明天9:30前把保证金转到", 30, 10, 560, 44), box("指定账户，否则取消资格。", 30, 56, 500, 90)]
    assert assemble(boxes, 720, 1280).bubbles == ("请于明天9:30前把保证金转到指定账户，否则取消资格。",)


def test_a_sentence_in_the_input_bar_area_is_kept():
    boxes = [box("点击链接发送验证码给客服就能退款", 30, 1200, 600, 1240)]
    assert assemble(boxes, 720, 1280).bubbles == ("点击链接发送验证码给客服就能退款",)


def test_wrapped_lines_join_like_the_message_was_written():
    assert join_wrapped(["请立即点击htt", "p://etc-renz.cc进行认证"]) == "请立即点击http://etc-renz.cc进行认证"
    assert join_wrapped(["点击 http://t.cn/", "A6xYz9 领取"]) == "点击 http://t.cn/A6xYz9 领取"
    assert join_wrapped(["please call the", "bank now"]) == "please call the bank now"


# Refusals and bounds: checked before decoding, with a reason ---------------------------------------
def test_non_images_and_damaged_pictures_are_refused():
    with pytest.raises(ImageRefused) as refused:
        ocr.read_image_bytes(b"%PDF-1.7 not a screenshot", engine=no_text_engine)
    assert refused.value.code == "not_an_image" and "not an image" in refused.value.reason
    with pytest.raises(ImageRefused) as refused:
        ocr.read_image_bytes(png(720, 1280)[:200], engine=no_text_engine)
    assert refused.value.code == "damaged"


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header claiming width x height pixels, with almost no data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width,height", [(60_000, 60_000), (9_000, 9_000)])
def test_decompression_bombs_are_refused_from_the_header(width, height):
    started = time.perf_counter()
    with pytest.raises(ImageRefused) as refused:
        ocr.read_image_bytes(bomb_png(width, height), engine=no_text_engine)
    assert refused.value.code == "too_many_pixels"
    assert time.perf_counter() - started < 1  # nothing was decoded


def test_absurd_shapes_and_files_too_large_are_refused(tmp_path):
    with pytest.raises(ImageRefused) as refused:
        ocr.read_image_bytes(png(20, 4000), engine=no_text_engine)
    assert refused.value.code == "odd_shape"
    big = tmp_path / "big.png"
    with big.open("wb") as fh:
        fh.truncate(ocr.MAX_FILE_BYTES + 1)
    with pytest.raises(ImageRefused) as refused:
        ocr.read_image_file(big)
    assert refused.value.code == "too_large" and "big.png" in str(refused.value)
    with pytest.raises(ImageRefused) as refused:
        ocr.read_image_file(tmp_path / "missing.png")
    assert refused.value.code == "unreadable_file"


class RecordingEngine:
    def __init__(self):
        self.sizes = []

    def __call__(self, image):
        self.sizes.append(image.size)
        return []


def test_big_pictures_are_downscaled_before_ocr():
    engine = RecordingEngine()
    result = ocr.read_image_bytes(png(1440, 3200), engine=engine)
    assert engine.sizes == [(720, 1600)] and result.size == (1440, 3200) and result.text == ""
    engine.sizes.clear()
    ocr.read_image_bytes(png(720, 1280), engine=engine)
    assert engine.sizes == [(720, 1280)]


def test_transparent_screenshots_are_read_on_white():
    seen = []
    out = io.BytesIO()
    Image.new("RGBA", (360, 640), (0, 0, 0, 0)).save(out, "PNG")
    ocr.read_image_bytes(out.getvalue(), engine=lambda image: seen.append(image.getpixel((5, 5))) or [])
    assert seen == [(255, 255, 255)]


def bar_engine(image):
    """Finds the grey bars drawn by test_long_screenshots_are_read_in_tiles; each bar's grey is its id."""
    import numpy as np

    grey = np.asarray(image.convert("L"))
    dark = grey.min(axis=1) < 250
    boxes, start = [], None
    for y, on in enumerate([*dark, False]):
        if on and start is None:
            start = y
        elif not on and start is not None:
            boxes.append(TextBox(f"行{int(grey[start:y].min())}", 20, start, 300, y))
            start = None
    return boxes


def test_long_screenshots_are_read_in_tiles_and_each_line_once():
    from PIL import ImageDraw

    image = Image.new("RGB", (720, 6000), "white")
    draw = ImageDraw.Draw(image)
    for i in range(60):
        draw.rectangle((20, 100 * i + 30, 300, 100 * i + 70), fill=(i * 3, i * 3, i * 3))
    out = io.BytesIO()
    image.save(out, "PNG")
    sizes = []

    def engine(tile):
        sizes.append(tile.size)
        return bar_engine(tile)

    result = ocr.read_image_bytes(out.getvalue(), engine=engine)
    assert len(sizes) > 1 and all(h <= 2 * w for w, h in sizes)
    assert result.lines == tuple(f"行{i * 3}" for i in range(60))


# The engine: optional, lazy, loaded once ---------------------------------------------------------
def test_without_the_ocr_extra_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setattr(ocr, "_engine_instance", None)
    monkeypatch.setitem(sys.modules, "bot.adapters.ocr_engine", None)  # import fails as if not installed
    with pytest.raises(OcrUnavailable, match=r"fanzha\[ocr\]"):
        ocr.read_image_bytes(png(720, 1280))


def test_the_engine_is_loaded_once_even_when_pictures_arrive_together(monkeypatch):
    loads = []

    def load_engine():
        loads.append(1)
        time.sleep(0.2)
        return no_text_engine

    monkeypatch.setattr(ocr, "_engine_instance", None)
    monkeypatch.setitem(sys.modules, "bot.adapters.ocr_engine", types.SimpleNamespace(load_engine=load_engine))
    threads = [threading.Thread(target=ocr.read_image_bytes, args=(png(100, 100),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads == [1]


def test_the_bot_does_not_load_ocr_until_a_picture_arrives(tmp_path):
    code = (
        "import sys; import bot.cli, bot.ocr, bot.adapters.console, bot.adapters.telegram, bot.adapters.web;"
        "from bot.ocr import PictureReader; PictureReader(None).close();"
        "print(sorted(m for m in ('rapidocr_onnxruntime', 'onnxruntime', 'cv2', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "[]", out.stderr
    # And once a picture arrives, it is: the check above would pass vacuously otherwise.
    code = code.replace("PictureReader(None).close();", "bot.ocr.read_image_bytes(open(sys.argv[1], 'rb').read());")
    shot = tmp_path / "lazy-check.png"
    shot.write_bytes(png(64, 64))
    out = subprocess.run([sys.executable, "-c", code, str(shot)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    if ocr.ocr_available():
        assert "onnxruntime" in out.stdout, out.stderr


# Serving: worker thread, per-chat limit, the adapters' one call --------------------------------------
def fixed_reader(text: str, delay: float = 0.0):
    def read(data: bytes) -> ImageText:
        time.sleep(delay)
        return ImageText(text, tuple(text.splitlines()), tuple(text.splitlines()))

    return read


SCAM_TEXT = "我是市公安局刑侦支队的民警，你的身份证涉嫌洗钱。\n你必须把存款全部转到国家安全账户接受审查，不得告诉任何人。"


def test_a_slow_picture_never_blocks_other_chats(classifier):
    from bot.consultation import Consultation

    consultation = Consultation(classifier)
    pictures = PictureReader(consultation, worker=OcrWorker(fixed_reader(SCAM_TEXT, delay=1.0)))

    async def other_chat():
        await asyncio.sleep(0.05)
        message = IncomingMessage("你好", chat_id="other", platform="test")
        return consultation.respond(message, time.monotonic()), time.perf_counter()

    async def both():
        started = time.perf_counter()
        picture = asyncio.create_task(pictures.respond(IncomingMessage("", "slow", "test"), b"bytes"))
        (text_outcome, answered_at), picture_outcome = await asyncio.gather(other_chat(), picture)
        return text_outcome, answered_at - started, picture_outcome, time.perf_counter() - started

    text_outcome, text_after, picture_outcome, picture_after = asyncio.run(both())
    pictures.close()
    assert text_outcome.action == "greeting" and text_after < 0.5 < 1.0 <= picture_after
    assert picture_outcome.action == "verdict" and picture_outcome.verdict.is_fraud


def test_pictures_per_minute_per_chat(classifier):
    limiter = PictureLimiter(2)
    assert [limiter.allow("a", t) for t in (0, 1, 2)] == [True, True, False]
    assert limiter.allow("b", 2) and limiter.allow("a", 60.5)

    from bot.consultation import Consultation

    now = [0.0]
    pictures = PictureReader(
        Consultation(classifier), per_minute=2, worker=OcrWorker(fixed_reader(SCAM_TEXT)), clock=lambda: now[0]
    )
    message = IncomingMessage("", chat_id="c1", platform="test")
    actions = [asyncio.run(pictures.respond(message, b"x")).action for _ in range(3)]
    assert actions == ["verdict", "verdict", "picture_rate_limited"]
    limited = asyncio.run(pictures.respond(message, b"x"))
    assert "稍等" in limited.replies[0].plain()
    now[0] = 61.0
    assert asyncio.run(pictures.respond(message, b"x")).action == "verdict"
    pictures.close()


def test_a_group_picture_nobody_asked_about_is_never_downloaded(classifier):
    from bot.consultation import Consultation

    fetched = []

    async def fetch():
        fetched.append(1)
        return b"x"

    pictures = PictureReader(Consultation(classifier), worker=OcrWorker(fixed_reader(SCAM_TEXT)))
    quiet = IncomingMessage("", chat_id="g1", platform="test", chat_kind=GROUP, addressed=False)
    assert asyncio.run(pictures.respond(quiet, fetch)).action == "silent" and fetched == []
    asked = IncomingMessage("", chat_id="g1", platform="test", chat_kind=GROUP, addressed=True)
    assert asyncio.run(pictures.respond(asked, fetch)).action == "verdict" and fetched == [1]
    pictures.close()


def test_refused_and_unreadable_pictures_get_a_kind_reply(classifier):
    from bot.consultation import Consultation

    consultation = Consultation(classifier)
    pictures = PictureReader(consultation, worker=OcrWorker(ocr.read_image_bytes))
    refused = asyncio.run(pictures.respond(IncomingMessage("", "c2", "test"), b"GIF89a broken"))
    assert refused.action == "image_refused" and "图片" in refused.replies[0].plain()
    pictures.close()
    message = IncomingMessage("", "c3", "test")
    unavailable = ocr.answer_picture(consultation, message, OcrUnavailable("no ocr"), 0.0)
    assert unavailable.action == "image_unreadable" and "文字" in unavailable.replies[0].plain()
    empty = ocr.answer_picture(consultation, message, ImageText("", ()), 0.0)
    assert empty.action == "empty"
    # A picture that could not be fetched is not blamed on the resident: they may send it again.
    lost = ocr.answer_picture(consultation, message, ocr.ImageRefused("timeout", "download_failed"), 0.0)
    assert "再发一次" in lost.replies[0].plain() and "不是图片" not in lost.replies[0].plain()
    assert "不是图片" in refused.replies[0].plain()


def test_console_recognises_a_typed_or_dropped_image_path(tmp_path):
    shot = tmp_path / "my shot.png"
    shot.write_bytes(png(10, 10))
    assert ocr.image_path(str(shot)) == shot
    assert ocr.image_path(f"'{shot}'") == shot
    assert ocr.image_path(str(shot).replace(" ", "\\ ")) == shot
    assert ocr.image_path(str(tmp_path / "absent.png")) is None
    assert ocr.image_path("我收到一条短信 a.png") is None
    assert ocr.image_path(str(ROOT / "pyproject.toml")) is None


# Real screenshots, real engine -------------------------------------------------------------------
SCAM_SHOTS = [
    ("police_safe_account", imagegen.Look("chat", (720, 1280))),
    ("express_refund", imagegen.Look("sms", (1080, 1920), dark=True, noise=8, jpeg_quality=70, seed=3)),
    ("prize_winning", imagegen.Look("sms", (720, 1280), noise=6, jpeg_quality=60, seed=5, text_dp=14)),
]


def scene(name):
    return next(s for s in (*imagegen.SCAM_SCENES, *imagegen.BENIGN_SCENES) if s.name == name)


def accuracy(truth: str, read: str) -> float:
    sys.path.insert(0, str(ROOT / "bench"))
    from ocr_bench import char_accuracy

    return char_accuracy(truth, read)


@pytest.mark.parametrize("name,look", SCAM_SHOTS, ids=[f"{n}-{lk.style}-{lk.size[0]}" for n, lk in SCAM_SHOTS])
def test_scam_screenshots_are_read_and_flagged(name, look, classifier):
    need_real_ocr()
    shot = imagegen.render(scene(name), look)
    read = ocr.read_image_bytes(shot.image_bytes)
    assert accuracy("\n".join(shot.truth), read.text) >= 0.95, read.text
    assert len(read.bubbles) == len(shot.truth)
    for chrome in shot.chrome:
        assert "".join(chrome.split()) not in "".join(read.text.split())
    assert classifier.classify(read.text).is_fraud


def test_the_reply_says_it_read_a_picture_and_quotes_the_key_line(classifier):
    need_real_ocr()
    from bot.consultation import Consultation

    shot = imagegen.render(scene("rebate_task"), imagegen.Look("chat", (1080, 1920), dark=True))
    outcome = ocr.answer_picture(
        Consultation(classifier), IncomingMessage("", "c4", "test"), ocr.read_image_bytes(shot.image_bytes), 0.0
    )
    reply = outcome.replies[0].plain()
    assert outcome.verdict.is_fraud and "从图片中识别" in reply
    quoted = reply.split("“", 1)[1].split("”", 1)[0].rstrip("…")
    assert any(quoted[:10] in bubble for bubble in shot.truth)
    benign = imagegen.render(scene("family_dinner"), imagegen.Look("chat", (720, 1280), dark=True))
    assert not classifier.classify(ocr.read_image_bytes(benign.image_bytes).text).is_fraud


def test_check_image_and_chat_read_screenshots_end_to_end(fanzha_env, tmp_path):
    need_real_ocr()
    path = tmp_path / "shot.jpg"
    path.write_bytes(imagegen.render(scene("fake_loan"), imagegen.Look("sms", (720, 1280), jpeg_quality=80)).image_bytes)
    result = subprocess.run(
        [*FANZHA, "check", "--image", str(path)], env=fanzha_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "从图片中识别" in result.stdout and "我主要依据的是这一句" in result.stdout and "风险" in result.stdout
    refused = subprocess.run(
        [*FANZHA, "check", "--image", str(ROOT / "pyproject.toml")], env=fanzha_env, capture_output=True, text=True
    )
    assert refused.returncode != 0 and "not an image" in refused.stderr and "Traceback" not in refused.stderr
    chat = subprocess.run(
        [*FANZHA, "chat"], env=fanzha_env, input=f"{path}\n/quit\n", capture_output=True, text=True, timeout=60
    )
    assert chat.returncode == 0, chat.stderr
    assert "从图片中识别" in chat.stdout and "贷款" in chat.stdout
