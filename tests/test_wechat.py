"""The WeChat Official Account endpoint, driven the way WeChat's servers drive it: real HTTP
requests to a running app, signed with the token, encrypted with wechatpy in safe mode."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.etree import ElementTree

import httpx
import imagegen
import pytest
import uvicorn
from conftest import FANZHA
from fakes.bot_api_wire import blank_png
from wechatpy.crypto import WeChatCrypto

from bot import ocr
from bot.adapters.web import build_app
from bot.adapters.wechat import WeChatEndpoint, fit_passive, sign, text_reply_xml
from bot.config import Settings, host_list
from bot.consultation import Consultation
from bot.messages import Block, QuickReply, Reply
from bot.ocr_layout import TextBox
from bot.session import Sessions
from bot.storage import Store

pytestmark = pytest.mark.timeout(60)

TOKEN = "fanzha-test-token"
APPID = "wx0123456789abcdef"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")
ACCOUNT = "gh_fanzha_test"
SCAM = "我是公安局民警，你的银行卡涉嫌洗钱，请把钱转到安全账户配合资金清查，不要告诉家人"


# WeChat's side of the conversation -------------------------------------------------------
def _cdata(text: str) -> str:
    return f"<![CDATA[{text}]]>"


def push_xml(follower: str, msg_type: str, msg_id: str | None = None, **fields: str) -> str:
    """The XML WeChat POSTs for a message or an event."""
    parts = [
        f"<ToUserName>{_cdata(ACCOUNT)}</ToUserName>",
        f"<FromUserName>{_cdata(follower)}</FromUserName>",
        f"<CreateTime>{int(time.time())}</CreateTime>",
        f"<MsgType>{_cdata(msg_type)}</MsgType>",
    ]
    parts += [f"<{k}>{_cdata(v)}</{k}>" for k, v in fields.items()]
    if msg_id:
        parts.append(f"<MsgId>{msg_id}</MsgId>")
    return "<xml>" + "".join(parts) + "</xml>"


@dataclass
class WeChatSide:
    """Builds requests as WeChat's servers do and reads the passive replies."""

    base_url: str
    token: str = TOKEN

    def signed(self, timestamp: int | None = None, **extra: str) -> dict[str, str]:
        ts, nonce = str(timestamp if timestamp is not None else int(time.time())), os.urandom(6).hex()
        return {"signature": sign(self.token, ts, nonce), "timestamp": ts, "nonce": nonce, **extra}

    def post(self, body: str | bytes, params: dict[str, str] | None = None, **kw) -> httpx.Response:
        params = params if params is not None else self.signed(openid="o-follower")
        data = body.encode() if isinstance(body, str) else body
        kw.setdefault("timeout", 10)
        return httpx.post(f"{self.base_url}/wechat", params=params, content=data, **kw)

    def send(self, xml: str) -> dict[str, str]:
        """Plain mode: POST and return the reply's fields ({} for "success")."""
        response = self.post(xml)
        assert response.status_code == 200, response.status_code
        return reply_fields(response)

    def send_encrypted(self, xml: str) -> dict[str, str]:
        """Safe mode: encrypt like WeChat, POST, check and decrypt our encrypted reply."""
        crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
        params = self.signed(openid="o-follower", encrypt_type="aes")
        wrapped = _fields(crypto.encrypt_message(xml, params["nonce"], params["timestamp"]))
        params["msg_signature"] = wrapped["MsgSignature"]
        body = f"<xml><ToUserName>{_cdata(ACCOUNT)}</ToUserName><Encrypt>{_cdata(wrapped['Encrypt'])}</Encrypt></xml>"
        response = self.post(body, params)
        assert response.status_code == 200, response.status_code
        if response.text == "success":
            return {}
        outer = _fields(response.text)
        assert "Content" not in outer, "a safe-mode reply must be encrypted"
        inner = crypto.decrypt_message(response.text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"])
        return _fields(inner)


def _fields(xml: str) -> dict[str, str]:
    return {child.tag: child.text or "" for child in ElementTree.fromstring(xml)}


def reply_fields(response: httpx.Response) -> dict[str, str]:
    if response.text == "success":
        return {}
    assert len(response.content) < 8 * 1024
    fields = _fields(response.text)
    assert fields["MsgType"] == "text"
    assert len(fields["Content"].encode("utf-8")) <= 2048
    return fields


# The app under test ------------------------------------------------------------------------
@contextlib.contextmanager
def running(app) -> Iterator[str]:
    """Serve *app* with uvicorn on a free 127.0.0.1 port in a thread; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@dataclass
class Harness:
    wechat: WeChatSide
    store: Store
    consultation: Consultation
    endpoint: WeChatEndpoint

    def consultations(self, follower: str) -> int:
        rows = self.store.query(
            "SELECT COUNT(*) AS n FROM consultations WHERE platform = 'wechat' AND chat_id = ?", (follower,)
        )
        return rows[0]["n"]


@pytest.fixture(scope="module")
def harness(classifier, tmp_path_factory) -> Iterator[Harness]:
    store = Store(tmp_path_factory.mktemp("wechat") / "fanzha.db")
    consultation = Consultation(classifier, log=store, sessions=Sessions(4.0, 12), hash_key=b"test")
    endpoint = WeChatEndpoint(consultation, store, token=TOKEN, appid=APPID, aes_key=AES_KEY)
    with running(build_app(consultation, store, wechat=endpoint)) as url:
        yield Harness(WeChatSide(url), store, consultation, endpoint)
    store.close()


def follower() -> str:
    return "o" + os.urandom(8).hex()


def msg_id() -> str:
    return str(int.from_bytes(os.urandom(7), "big"))


# Verification and signatures ---------------------------------------------------------------
def test_server_verification_echoes_echostr(harness):
    params = harness.wechat.signed(echostr="4867302745981236")
    response = httpx.get(f"{harness.wechat.base_url}/wechat", params=params)
    assert response.status_code == 200 and response.text == "4867302745981236"


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "0" * 40},
        {"signature": None},
        {"nonce": "another-nonce"},
        {"timestamp": None},
        {"echostr": None},
    ],
)
def test_verification_with_a_bad_or_missing_signature_is_403_and_nothing_else(harness, change):
    params = harness.wechat.signed(echostr="123")
    for key, value in change.items():
        if value is None:
            params.pop(key)
        else:
            params[key] = value
    response = httpx.get(f"{harness.wechat.base_url}/wechat", params=params)
    assert response.status_code == 403 and response.content == b""


def test_a_signature_made_with_another_token_is_refused(harness):
    someone_else = WeChatSide(harness.wechat.base_url, token="guessed-token")
    who = follower()
    response = someone_else.post(push_xml(who, "text", msg_id(), Content=SCAM))
    assert response.status_code == 403 and response.content == b""
    assert harness.consultations(who) == 0


@pytest.mark.parametrize("age", [305, 3600, -305, -86400])  # a few seconds of slack for a busy machine
def test_old_and_future_timestamps_are_refused_even_when_correctly_signed(harness, age):
    params = harness.wechat.signed(timestamp=int(time.time()) - age, echostr="1")
    assert httpx.get(f"{harness.wechat.base_url}/wechat", params=params).status_code == 403
    who = follower()
    params.pop("echostr")
    response = harness.wechat.post(push_xml(who, "text", msg_id(), Content=SCAM), params)
    assert response.status_code == 403 and response.content == b""
    assert harness.consultations(who) == 0


def test_a_timestamp_within_five_minutes_is_accepted(harness):
    params = harness.wechat.signed(timestamp=int(time.time()) - 240, echostr="ok")
    assert httpx.get(f"{harness.wechat.base_url}/wechat", params=params).text == "ok"


# Messages ----------------------------------------------------------------------------------
def test_a_text_message_gets_the_consultation_as_a_passive_reply(harness):
    who = follower()
    reply = harness.wechat.send(push_xml(who, "text", msg_id(), Content=SCAM))
    assert reply["ToUserName"] == who and reply["FromUserName"] == ACCOUNT
    assert abs(int(reply["CreateTime"]) - time.time()) < 60
    content = reply["Content"]
    assert "高风险" in content and "96110" in content
    assert "回复 1：" in content and "回复 2：" in content
    assert harness.consultations(who) == 1


def test_safe_mode_message_and_reply_are_encrypted(harness):
    who = follower()
    reply = harness.wechat.send_encrypted(push_xml(who, "text", msg_id(), Content=SCAM))
    assert reply["ToUserName"] == who and "高风险" in reply["Content"]
    assert harness.consultations(who) == 1


def test_safe_mode_with_a_wrong_msg_signature_is_403(harness):
    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
    wrapped = _fields(crypto.encrypt_message(push_xml(follower(), "text", msg_id(), Content=SCAM), "n", "1"))
    body = f"<xml><Encrypt>{_cdata(wrapped['Encrypt'])}</Encrypt></xml>"
    for extra in ({"msg_signature": "f" * 40}, {"msg_signature": wrapped["MsgSignature"]}, {}):
        # The last two: a signature over another timestamp and nonce, and none at all.
        params = harness.wechat.signed(encrypt_type="aes", **extra)
        response = harness.wechat.post(body, params)
        assert response.status_code == 403 and response.content == b""


def test_safe_mode_message_for_another_app_is_refused(harness):
    other = WeChatCrypto(TOKEN, AES_KEY, "wxsomeoneelse0000")
    params = harness.wechat.signed(encrypt_type="aes")
    wrapped = _fields(other.encrypt_message(push_xml(follower(), "text", msg_id(), Content=SCAM), "n", "1"))
    params["msg_signature"] = sign(TOKEN, params["timestamp"], params["nonce"], wrapped["Encrypt"])
    response = harness.wechat.post(f"<xml><Encrypt>{_cdata(wrapped['Encrypt'])}</Encrypt></xml>", params)
    assert response.status_code == 403


def test_a_retried_msgid_is_answered_once_and_counted_once(harness):
    who, mid = follower(), msg_id()
    xml = push_xml(who, "text", mid, Content=SCAM)
    first = harness.wechat.send(xml)
    again = harness.wechat.send(xml)
    assert again["Content"] == first["Content"]
    # WeChat's retries can also overlap the first attempt.
    who2, mid2 = follower(), msg_id()
    xml2 = push_xml(who2, "text", mid2, Content=SCAM)
    results: list[dict[str, str]] = []
    threads = [threading.Thread(target=lambda: results.append(harness.wechat.send(xml2))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(results) == 3 and len({r["Content"] for r in results}) == 1
    assert harness.consultations(who) == 1 and harness.consultations(who2) == 1
    # Safe mode retries are the same MsgId too.
    who3, mid3 = follower(), msg_id()
    xml3 = push_xml(who3, "text", mid3, Content=SCAM)
    assert harness.wechat.send_encrypted(xml3)["Content"] == harness.wechat.send_encrypted(xml3)["Content"]
    assert harness.consultations(who3) == 1


def test_a_retry_after_a_restart_gets_no_second_answer(harness):
    who, mid = follower(), msg_id()
    xml = push_xml(who, "text", mid, Content=SCAM)
    assert "高风险" in harness.wechat.send(xml)["Content"]
    # A new process: the reply cache is gone, the database still knows the MsgId.
    endpoint = WeChatEndpoint(harness.consultation, harness.store, token=TOKEN)
    with running(build_app(harness.consultation, harness.store, wechat=endpoint)) as url:
        response = WeChatSide(url).post(xml)
    assert response.status_code == 200 and response.text == "success"
    assert harness.consultations(who) == 1


def test_numbered_answers_are_understood(harness):
    paid, not_paid = follower(), follower()
    for who in (paid, not_paid):
        assert "回复 1：" in harness.wechat.send(push_xml(who, "text", msg_id(), Content=SCAM))["Content"]
    urgent = harness.wechat.send(push_xml(paid, "text", msg_id(), Content="1"))["Content"]
    assert urgent.startswith(harness.consultation.wording.say("urgent_heading")) and "110" in urgent
    calm = harness.wechat.send(push_xml(not_paid, "text", msg_id(), Content="2"))["Content"]
    assert calm == harness.consultation.wording.say("not_paid_reply")


def test_voice_with_recognition_is_checked_like_text(harness):
    who = follower()
    reply = harness.wechat.send(push_xml(who, "voice", msg_id(), MediaId="m1", Format="amr", Recognition=SCAM + "。"))
    assert "高风险" in reply["Content"]
    assert harness.consultations(who) == 1
    unheard = harness.wechat.send(push_xml(who, "voice", msg_id(), MediaId="m2", Format="amr", Recognition=""))
    assert unheard["Content"] == harness.consultation.wording.say("voice_unrecognized")
    no_field = harness.wechat.send(push_xml(who, "voice", msg_id(), MediaId="m3", Format="amr"))
    assert no_field["Content"] == harness.consultation.wording.say("voice_unrecognized")


# Pictures: fetched from PicUrl (a local server here), read by bot.ocr -----------------------
SCAM_LINES = ("我是市公安局刑侦支队的民警，你的身份证涉嫌洗钱。", "你必须把存款全部转到国家安全账户接受审查，不得告诉任何人。")


def scripted_reader(lines: tuple[str, ...] = SCAM_LINES, delay: float = 0.0, gate: threading.Event | None = None):
    """bot.ocr.read_image_bytes (real decoding and checks) with an engine that "sees" *lines*."""

    def engine(image):
        time.sleep(delay)
        if gate is not None:
            gate.wait(20)
        return [TextBox(t, 20, 200 + 90 * i, 340, 230 + 90 * i) for i, t in enumerate(lines)]

    return lambda data: ocr.read_image_bytes(data, engine=engine)


@contextlib.contextmanager
def picture_server(files: dict[str, bytes]) -> Iterator[str]:
    """Serves *files* on 127.0.0.1 (as WeChat's PicUrl host would); yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = files.get(self.path.lstrip("/"))
            self.send_response(200 if data is not None else 404)
            self.send_header("Content-Length", str(len(data or b"")))
            self.end_headers()
            self.wfile.write(data or b"")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def picture_endpoint(harness: Harness, **kw) -> Iterator[WeChatSide]:
    kw.setdefault("picture_hosts", ("127.0.0.1",))  # the picture server stands in for qpic.cn
    endpoint = WeChatEndpoint(harness.consultation, harness.store, token=TOKEN, **kw)
    with running(build_app(harness.consultation, harness.store, wechat=endpoint)) as url:
        yield WeChatSide(url)


SHOT = blank_png(360, 640)


def test_an_image_is_read_and_the_reply_quotes_what_it_relied_on(harness):
    with picture_server({"shot.png": SHOT}) as pics, picture_endpoint(harness, read_picture=scripted_reader()) as side:
        who = follower()
        reply = side.send(push_xml(who, "image", msg_id(), PicUrl=f"{pics}/shot.png", MediaId="m"))["Content"]
    assert "高风险" in reply and "从图片中识别" in reply and "我主要依据的是这一句" in reply
    quoted = reply.split("“", 1)[1].split("”", 1)[0].rstrip("…")
    assert quoted and quoted[:12] in "".join(SCAM_LINES)
    assert harness.consultations(who) == 1


def test_a_picture_that_cannot_be_fetched_or_is_no_picture_gets_a_kind_reply(harness):
    refused = harness.consultation.wording.say("image_refused")
    retry = harness.consultation.wording.say("image_retry")  # the fetch failed: not the resident's fault
    files = {"doc.jpg": b"%PDF-1.7 not a picture"}
    expected = {"doc.jpg": refused, "missing.jpg": retry, "file:///etc/passwd": refused, "": refused}
    with picture_server(files) as pics, picture_endpoint(harness, read_picture=scripted_reader()) as side:
        for name, answer in expected.items():
            url = f"{pics}/{name}" if name.endswith(".jpg") else name
            reply = side.send(push_xml(follower(), "image", msg_id(), PicUrl=url, MediaId="m"))
            assert reply["Content"] == answer, url


def test_a_picture_address_off_wechats_hosts_is_never_fetched(harness):
    fetched: list[str] = []

    def fetch(url: str) -> bytes:
        fetched.append(url)
        return SHOT

    refused = harness.consultation.wording.say("image_refused")
    inside = ["http://169.254.169.254/latest/meta-data", "http://127.0.0.1:6379/", "http://qpic.cn.evil.example/a.png"]
    with picture_endpoint(
        harness, read_picture=scripted_reader(), fetch_picture=fetch, picture_hosts=host_list("qpic.cn")
    ) as side:
        for url in inside:
            assert side.send(push_xml(follower(), "image", msg_id(), PicUrl=url, MediaId="m"))["Content"] == refused
        assert fetched == []
        reply = side.send(
            push_xml(follower(), "image", msg_id(), PicUrl="http://mmbiz.qpic.cn/mmbiz_png/x/0", MediaId="m")
        )
    assert fetched == ["http://mmbiz.qpic.cn/mmbiz_png/x/0"] and "96110" in reply["Content"]


def test_picture_hosts_come_from_the_settings(tmp_path):
    settings = Settings.from_env(
        {"FANZHA_HOME": str(tmp_path), "FANZHA_WECHAT_PICTURE_HOSTS": " QPIC.cn, ,img.example. "}
    )
    assert settings.picture_hosts == ("qpic.cn", "img.example")
    assert Settings.from_env({"FANZHA_HOME": str(tmp_path)}).picture_hosts == ("qpic.cn", "weixin.qq.com")


def test_without_the_ocr_extra_an_image_gets_the_kind_reply(harness, monkeypatch):
    monkeypatch.setattr(ocr, "_engine_instance", None)
    monkeypatch.setitem(sys.modules, "bot.adapters.ocr_engine", None)  # the import fails as if not installed
    with picture_server({"shot.png": SHOT}) as pics, picture_endpoint(harness) as side:
        reply = side.send(push_xml(follower(), "image", msg_id(), PicUrl=f"{pics}/shot.png", MediaId="m"))
    assert reply["Content"] == harness.consultation.wording.say("image_unsupported")


def test_pictures_a_minute_per_follower(harness):
    reader = scripted_reader()
    with picture_server({"shot.png": SHOT}) as pics, picture_endpoint(
        harness, read_picture=reader, pictures_per_minute=2
    ) as side:
        who = follower()
        replies = [
            side.send(push_xml(who, "image", msg_id(), PicUrl=f"{pics}/shot.png", MediaId="m"))["Content"]
            for _ in range(3)
        ]
        other = side.send(push_xml(follower(), "image", msg_id(), PicUrl=f"{pics}/shot.png", MediaId="m"))
    assert ["从图片中识别" in r for r in replies] == [True, True, False]
    assert replies[2] == harness.consultation.wording.say("rate_limited")
    assert "从图片中识别" in other["Content"]


def test_a_slow_picture_never_holds_up_another_follower(harness):
    with picture_server({"shot.png": SHOT}) as pics, picture_endpoint(
        harness, read_picture=scripted_reader(delay=2.0)
    ) as side:
        slow: list[dict[str, str]] = []
        xml = push_xml(follower(), "image", msg_id(), PicUrl=f"{pics}/shot.png", MediaId="m")
        thread = threading.Thread(target=lambda: slow.append(side.send(xml)))
        thread.start()
        time.sleep(0.3)
        started = time.monotonic()
        quick = side.send(push_xml(follower(), "text", msg_id(), Content=SCAM))
        assert time.monotonic() - started < 1.5 and "高风险" in quick["Content"]
        assert not slow  # the picture is still being read
        thread.join(20)
    assert "从图片中识别" in slow[0]["Content"]


def test_a_real_screenshot_is_read_offline_and_flagged(harness):
    if not ocr.ocr_available() or imagegen.find_cjk_font() is None:
        if os.environ.get("CI"):
            pytest.fail("needs fanzha[ocr] and a CJK font")
        pytest.skip("needs fanzha[ocr] and a CJK font")
    scene = next(s for s in imagegen.SCAM_SCENES if s.name == "express_refund")
    shot = imagegen.render(scene, imagegen.Look("sms", (720, 1280), jpeg_quality=80))
    with picture_server({"shot.jpg": shot.image_bytes}) as pics, picture_endpoint(harness) as side:
        reply = side.send(push_xml(follower(), "image", msg_id(), PicUrl=f"{pics}/shot.jpg", MediaId="m"))
    assert "从图片中识别" in reply["Content"] and "风险" in reply["Content"]


def test_other_message_kinds_and_events(harness):
    wording = harness.consultation.wording
    location = harness.wechat.send(push_xml(follower(), "location", msg_id(), Location_X="23.1", Location_Y="113.3"))
    assert location["Content"] == wording.say("no_text_content")
    assert harness.wechat.send(push_xml(follower(), "event", Event="CLICK", EventKey="menu")) == {}
    link = harness.wechat.send(
        push_xml(
            follower(),
            "link",
            msg_id(),
            Title="刷单返利日赚300",
            Description="先垫付，做完任务返佣金",
            Url="http://t.cn/abc",
        )
    )
    assert "诈骗" in link["Content"]


def test_subscribe_welcomes_and_unsubscribe_forgets_the_follower(harness):
    who = follower()
    welcome = harness.wechat.send(push_xml(who, "event", Event="subscribe"))
    assert welcome["Content"] == harness.consultation.wording.say("wechat_welcome")
    harness.wechat.send(push_xml(who, "text", msg_id(), Content=SCAM))
    assert harness.consultations(who) == 1 and harness.store.chat("wechat", who) is not None
    assert harness.wechat.send_encrypted(push_xml(who, "event", Event="unsubscribe")) == {}
    assert harness.consultations(who) == 0 and harness.store.chat("wechat", who) is None


# Hostile and broken input ------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        "",
        "not xml at all",
        "<xml><ToUserName>x</ToUserName>",
        "<root><FromUserName>a</FromUserName></root>",
        "<xml><Content>no sender</Content></xml>",
        b"\xff\xfe<xml/>",
    ],
)
def test_malformed_xml_is_400(harness, body):
    response = harness.wechat.post(body)
    assert response.status_code == 400 and response.content == b""


def test_safe_mode_without_encrypt_field_is_refused(harness):
    params = harness.wechat.signed(encrypt_type="aes")
    params["msg_signature"] = sign(TOKEN, params["timestamp"], params["nonce"], "")
    assert harness.wechat.post("<xml><ToUserName>x</ToUserName></xml>", params).status_code == 400


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + "]><xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><MsgType>text</MsgType>"
    "<Content>&lol9;</Content><MsgId>1</MsgId></xml>"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
    "<xml><ToUserName>a</ToUserName><FromUserName>b</FromUserName><MsgType>text</MsgType>"
    "<Content>&secret;</Content><MsgId>2</MsgId></xml>"
)


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_xml_entity_attacks_are_400_without_expansion(harness, body):
    started = time.monotonic()
    response = harness.wechat.post(body)
    assert response.status_code == 400 and response.content == b""
    assert time.monotonic() - started < 2


def test_xml_entity_attack_inside_the_encrypted_message_is_400(harness):
    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
    params = harness.wechat.signed(encrypt_type="aes")
    wrapped = _fields(crypto.encrypt_message(EXTERNAL_ENTITY, params["nonce"], params["timestamp"]))
    params["msg_signature"] = wrapped["MsgSignature"]
    response = harness.wechat.post(f"<xml><Encrypt>{_cdata(wrapped['Encrypt'])}</Encrypt></xml>", params)
    assert response.status_code == 400


def test_oversized_bodies_are_413_before_parsing(harness):
    # A DTD would be a 400 if it were parsed: 413 shows the size was checked first.
    huge = BILLION_LAUGHS.replace("<Content>", "<Content>" + "骗" * 30_000)
    assert len(huge.encode()) > 64 * 1024
    response = harness.wechat.post(huge)
    assert response.status_code == 413 and response.content == b""

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"<!-- " + b"x" * 8192 + b" -->"

    streamed = httpx.post(f"{harness.wechat.base_url}/wechat", params=harness.wechat.signed(), content=chunks())
    assert streamed.status_code == 413


def test_an_oversized_body_with_a_bad_signature_is_just_403(harness):
    response = harness.wechat.post("x" * 100_000, {"signature": "0", "timestamp": str(int(time.time())), "nonce": "n"})
    assert response.status_code == 403


# Reply size and XML safety -----------------------------------------------------------------
def test_a_long_reply_fits_2048_bytes_and_ends_gracefully(knowledge):
    from bot.compose import Wording

    wording = Wording(knowledge)
    sentences = "".join(f"这是第{i}句很长的说明文字，用来把回复撑得很长很长。" for i in range(40))
    reply = Reply(
        (Block("⚠️ 高风险", "banner"), Block(sentences), Block(sentences, "item"), Block("你是否已经转账？", "heading")),
        (QuickReply("已经转账", "paid"), QuickReply("没有", "not_paid")),
    )
    more = wording.say("wechat_more")
    text = fit_passive(reply, more)
    assert len(text.encode()) <= 2048
    assert text.startswith("⚠️ 高风险\n")
    assert text.endswith(f"{more}\n你是否已经转账？\n回复 1：已经转账\n回复 2：没有")
    kept = text.split("\n")[1]
    assert kept.endswith("。") and kept in sentences  # cut between sentences, never inside one
    short = Reply((Block("没问题"),))
    assert fit_passive(short, more) == "没问题"


def test_reply_xml_survives_cdata_terminators_and_control_characters():
    xml = text_reply_xml("o1", ACCOUNT, "引用“]]><x>”\x01\x08 结束", 1)
    assert _fields(xml)["Content"] == "引用“]]><x>” 结束"


def test_message_text_and_tokens_never_reach_the_logs(harness, caplog):
    caplog.set_level("DEBUG")
    secret_words = "我的银行卡号是6222020200112233445请转账到安全账户"
    harness.wechat.send(push_xml(follower(), "text", msg_id(), Content=secret_words))
    harness.wechat.send_encrypted(push_xml(follower(), "text", msg_id(), Content=secret_words))
    assert caplog.records, "the endpoint should log what it did"
    for forbidden in (secret_words, "6222020200112233445", TOKEN, AES_KEY):
        assert forbidden not in caplog.text


def test_an_answer_not_ready_in_time_is_left_for_wechats_retry(harness):
    """WeChat hangs up after 5 s and asks again: the first attempts stay open, a retry gets the answer."""
    gate = threading.Event()
    with picture_server({"shot.png": SHOT}) as pics, picture_endpoint(
        harness, read_picture=scripted_reader(gate=gate), deadline=0.2, linger=5.0
    ) as side:
        who = follower()
        xml = push_xml(who, "image", msg_id(), PicUrl=f"{pics}/shot.png", MediaId="m")
        with pytest.raises(httpx.ReadTimeout):  # no answer: WeChat will ask again
            side.post(xml, timeout=1.0)
        gate.set()
        deadline = time.monotonic() + 5
        while harness.consultations(who) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "从图片中识别" in side.send(xml)["Content"]
    assert harness.consultations(who) == 1


def test_the_last_retry_gets_the_holding_text_and_the_answer_waits_for_the_same_message(harness):
    gate = threading.Event()
    wording = harness.consultation.wording
    with picture_server({"shot.png": SHOT}) as pics, picture_endpoint(
        harness, read_picture=scripted_reader(gate=gate), deadline=0.2, linger=5.0
    ) as side:
        who = follower()
        url = f"{pics}/shot.png"
        xml = push_xml(who, "image", msg_id(), PicUrl=url, MediaId="m")
        for _ in range(2):
            with pytest.raises(httpx.ReadTimeout):
                side.post(xml, timeout=0.6)
        assert side.send(xml)["Content"] == wording.say("wechat_holding")  # the third and last request
        gate.set()
        deadline = time.monotonic() + 5
        while harness.consultations(who) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        again = push_xml(who, "image", msg_id(), PicUrl=url, MediaId="m")  # sent again, as the holding text asks
        kept = side.send(again)["Content"]
        assert "从图片中识别" in kept and side.send(again)["Content"] == kept
        assert harness.consultations(who) == 1
        # Something else from the same follower is answered afresh.
        assert "高风险" in side.send(push_xml(who, "text", msg_id(), Content=SCAM))["Content"]
    assert harness.consultations(who) == 2


# Health and the other routes ---------------------------------------------------------------
def test_healthz_reports_status_model_and_database(harness, classifier):
    response = httpx.get(f"{harness.wechat.base_url}/healthz")
    assert response.status_code == 200
    data = response.json()
    assert data["status"] == "ok" and data["database"] == "ok"
    assert data["model_version"] == classifier.model_version and data["model_version"]
    assert data["wechat"] is True and data["telegram"] is False


def test_telegram_route_exists_only_in_webhook_mode(harness):
    assert httpx.post(f"{harness.wechat.base_url}/telegram", content=b"{}").status_code == 404


def test_wechat_is_off_without_a_token(classifier, tmp_path):
    from bot.config import Settings

    store = Store(tmp_path / "f.db")
    consultation = Consultation(classifier, log=store)
    settings = Settings.from_env({"FANZHA_HOME": str(tmp_path)})
    assert WeChatEndpoint.from_settings(settings, consultation, store) is None
    with running(build_app(consultation, store, wechat=None)) as url:
        assert httpx.get(f"{url}/wechat").status_code == 404
        assert httpx.get(f"{url}/healthz").json()["wechat"] is False
    store.close()


# The real command ---------------------------------------------------------------------------
def test_fanzha_serve_answers_wechat_and_stops_cleanly(fanzha_env, home):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(fanzha_env, FANZHA_WECHAT_TOKEN=TOKEN, FANZHA_WECHAT_APPID=APPID, FANZHA_WECHAT_AES_KEY=AES_KEY)
    process = subprocess.Popen(
        [*FANZHA, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(httpx.TransportError):
                health = httpx.get(f"{base}/healthz", timeout=2)
                break
            time.sleep(0.2)
        assert health is not None and health.status_code == 200, process.stderr.read() if process.poll() else ""
        assert health.json()["wechat"] is True and health.json()["database"] == "ok"
        side = WeChatSide(base)
        who = follower()
        xml = push_xml(who, "text", msg_id(), Content=SCAM)
        started = time.monotonic()
        reply = side.send_encrypted(xml)
        assert time.monotonic() - started < 5
        assert "高风险" in reply["Content"]
        assert side.send_encrypted(xml)["Content"] == reply["Content"]
        assert side.post(xml, side.signed(timestamp=int(time.time()) - 3600)).status_code == 403
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=20)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells it.
    assert process.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete" in stderr
    logs = stdout + stderr
    assert "POST /wechat" in logs and "/wechat on" in logs
    for secret in ("openid", "signature", TOKEN, AES_KEY, SCAM, who):
        assert secret not in logs, secret
    store = Store(home / "fanzha.db")
    try:
        rows = store.query("SELECT COUNT(*) AS n FROM consultations WHERE chat_id = ?", (who,))
        assert rows[0]["n"] == 1
    finally:
        store.close()


def test_serve_help_has_an_example():
    result = subprocess.run([*FANZHA, "serve", "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "Example" in result.stdout and "--port" in result.stdout


def test_safe_mode_needs_the_appid(classifier, tmp_path):
    from bot.config import ConfigError

    store = Store(tmp_path / "f.db")
    with pytest.raises(ConfigError, match="FANZHA_WECHAT_APPID"):
        WeChatEndpoint(Consultation(classifier), store, token=TOKEN, aes_key=AES_KEY)
    store.close()


def test_telegram_webhook_is_mounted_and_registered_in_webhook_mode(classifier, tmp_path, monkeypatch):
    """The wiring only: a stand-in for bot.adapters.telegram's route and PTB application."""
    import sys
    import types

    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    events: list[str] = []

    class Bot:
        async def set_webhook(self, url, secret_token):
            events.append(f"set_webhook {url} {len(secret_token)}")

    class Application:
        bot = Bot()

        async def initialize(self):
            events.append("initialize")

        async def start(self):
            events.append("start")

        async def stop(self):
            events.append("stop")

        async def shutdown(self):
            events.append("shutdown")

    def telegram_webhook_route(application, secret):
        async def webhook(request):
            ok = request.headers.get("x-telegram-bot-api-secret-token") == secret
            return PlainTextResponse("ok" if ok else "", status_code=200 if ok else 403)

        return Route("/telegram", webhook, methods=["POST"])

    async def start_webhook_application(application, url, secret):
        await application.initialize()
        await application.start()
        await application.bot.set_webhook(url, secret_token=secret)

    async def stop_application(application):
        await application.stop()
        await application.shutdown()

    fake = types.ModuleType("bot.adapters.telegram")
    fake.telegram_webhook_route = telegram_webhook_route
    fake.start_webhook_application = start_webhook_application
    fake.stop_application = stop_application
    monkeypatch.setitem(sys.modules, "bot.adapters.telegram", fake)
    store = Store(tmp_path / "f.db")
    app = build_app(
        Consultation(classifier, log=store),
        store,
        telegram_application=Application(),
        telegram_webhook_url="https://bot.example.org/telegram",
        telegram_secret="s" * 32,
    )
    with running(app) as url:
        assert events == ["initialize", "start", "set_webhook https://bot.example.org/telegram 32"]
        headers = {"X-Telegram-Bot-Api-Secret-Token": "s" * 32}
        assert httpx.post(f"{url}/telegram", content=b"{}", headers=headers).text == "ok"
        assert httpx.get(f"{url}/healthz").json()["telegram"] is True
    assert events[-2:] == ["stop", "shutdown"]
    store.close()
