"""Daily tips to WeCom group robots, against a local stand-in for WeCom's webhook API."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from bot.adapters.wecom import WeComSender
from bot.broadcast import send_due_tips
from bot.storage import Store
from bot.tips import load_tips

pytestmark = pytest.mark.timeout(30)

#: What the stand-in answers for each robot key.
ERRCODES = {"key-good": 0, "key-gone": 93000, "key-busy": 45009}


class _Robot(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        key = parse_qs(urlparse(self.path).query).get("key", [""])[0]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append((urlparse(self.path).path, key, body))  # type: ignore[attr-defined]
        if key == "key-broken":
            self.send_response(502)
            self.end_headers()
            self.wfile.write(b"<html>bad gateway</html>")
            return
        answer = json.dumps({"errcode": ERRCODES.get(key, 93000), "errmsg": "stand-in"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture
def wecom_api() -> Iterator[tuple[str, list]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Robot)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cgi-bin/webhook/send", server.received  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    store = Store(tmp_path / "fanzha.db")
    for name in ("good", "gone", "busy", "broken"):
        store.add_wecom_hook(f"{name}-group", f"key-{name}", "09:00", "Asia/Shanghai")
    yield store
    store.close()


def send(sender: WeComSender, chat_id: str, text: str = "【每日反诈提醒】不转账") -> str:
    return asyncio.run(sender.send_tip(chat_id, text)).status


def test_a_tip_is_posted_as_a_text_message_with_the_hook_key(wecom_api, store):
    base, received = wecom_api
    assert send(WeComSender(store, base), "good-group", "【每日反诈提醒】陌生链接不要点") == "ok"
    assert received == [
        (
            "/cgi-bin/webhook/send",
            "key-good",
            {"msgtype": "text", "text": {"content": "【每日反诈提醒】陌生链接不要点"}},
        )
    ]


def test_results_map_to_ok_blocked_and_failed(wecom_api, store):
    base, _ = wecom_api
    sender = WeComSender(store, base)
    assert send(sender, "gone-group") == "blocked"  # WeCom no longer knows the key
    assert send(sender, "busy-group") == "failed"  # rate limited: try again later
    assert send(sender, "broken-group") == "failed"  # not JSON
    assert send(sender, "never-registered") == "blocked"


def test_an_unreachable_api_is_a_failure_to_retry(store):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = WeComSender(store, f"http://127.0.0.1:{port}/cgi-bin/webhook/send", timeout=2)
    assert send(sender, "good-group") == "failed"


def test_daily_round_sends_once_and_unsubscribes_gone_robots(wecom_api, store, caplog):
    base, received = wecom_api
    sender = WeComSender.from_settings(type("S", (), {"wecom_webhook_base": base})(), store)
    library = load_tips()
    now = datetime(2025, 3, 3, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai, after the 09:00 tip time
    report = asyncio.run(send_due_tips(store, library, sender, now))
    assert report.sent == ["good-group"]
    assert report.blocked == ["gone-group"]
    assert sorted(report.failed) == ["broken-group", "busy-group"]
    assert "gone-group" not in {s["chat_id"] for s in store.subscriptions("wecom")}
    again = asyncio.run(send_due_tips(store, library, sender, now))
    assert again.sent == [] and sorted(again.failed) == ["broken-group", "busy-group"]
    assert [key for _, key, _ in received].count("key-good") == 1
    for _, key, _ in received:
        assert key not in caplog.text
