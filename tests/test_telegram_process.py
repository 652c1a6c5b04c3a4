"""`fanzha telegram` started as a user starts it (a real process), against the stand-in."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import FANZHA

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[1]
SCAM = "我是公安局民警，你的银行卡涉嫌洗钱，请把钱转到安全账户配合资金清查，不要告诉家人"


def start(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [*FANZHA, "telegram", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )


def stop(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"fanzha telegram did not stop on SIGTERM:\n{err}") from None
    return process.returncode, err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_long_polling_answers_and_a_sigterm_loses_nothing(api, fanzha_env):
    env = {**fanzha_env, "FANZHA_TELEGRAM_TOKEN": api.token, "FANZHA_BATCH_WINDOW_SECONDS": "30"}
    process = start(["--base-url", api.url], env)  # "/bot" is added to a bare server address
    try:
        api.wait_call("getUpdates", timeout=30)
        api.command(1001, "/start")
        assert "反诈小助手" in api.wait_messages(1001)[0]["text"]
        api.send(1001, SCAM)
        assert "冒充公检法" in api.wait_messages(1001, after=1)[0]["text"]
        maps = Path(f"/proc/{process.pid}/maps")
        if maps.exists():  # Linux: a bot that has seen no picture has not loaded the OCR engine
            assert "onnxruntime" not in maps.read_text()
        # A forward waits 30 s for more; SIGTERM must not lose it.
        api.send(1002, SCAM, forward_from="陌生人")
        api.wait_for(lambda: any(c.params.get("chat_id") == 1002 for c in api.calls_to("sendChatAction")))
        # A picture still being read (the OCR engine loads on this first one) must be answered too.
        api.send(1003, photo=True)
        api.wait_call("getFile")
    except BaseException:
        process.kill()
        raise
    code, err = stop(process)
    assert code == 0, err
    assert "冒充公检法" in api.messages(1002)[0]["text"]
    assert len(api.messages(1003)) == 1
    assert "ready: @fanzha_test_bot, model " in err and "database " in err and "long polling" in err
    assert api.token not in err and "公安局" not in err
    assert api.calls_to("deleteWebhook") and api.commands["all_private_chats"]


def test_webhook_mode_checks_the_secret_and_answers(api, fanzha_env):
    port = free_port()
    env = {
        **fanzha_env,
        "FANZHA_TELEGRAM_TOKEN": api.token,
        "FANZHA_TELEGRAM_BASE_URL": api.base_url,
        "FANZHA_TELEGRAM_WEBHOOK_SECRET": "s3cret-token",
        "FANZHA_PORT": str(port),
    }
    process = start(["--webhook-url", "https://bot.example.org/telegram"], env)
    try:
        call = api.wait_call("setWebhook", timeout=30)
        assert call.params["url"] == "https://bot.example.org/telegram"
        assert call.params["secret_token"] == "s3cret-token"
        base = f"http://127.0.0.1:{port}"
        health = api.wait_for(lambda: _get(f"{base}/healthz"), what="the webhook server up")
        assert health["bot"] == "fanzha_test_bot"

        update = {"update_id": 1, "message": api.message(2001, SCAM)}
        assert _post(f"{base}/telegram", update, secret="wrong") == 403
        assert _post(f"{base}/telegram", update, secret=None) == 403
        assert _post(f"{base}/telegram", update, secret="s3cret-token") == 200
        assert "冒充公检法" in api.wait_messages(2001)[0]["text"]
        assert _post(f"{base}/telegram", {"update_id": 2, "message": "garbage"}, secret="s3cret-token") == 200
    except BaseException:
        process.kill()
        raise
    code, err = stop(process)
    assert code == 0, err
    assert "webhook https://bot.example.org/telegram" in err and "s3cret-token" not in err
    assert api.token not in err


def test_a_missing_token_is_a_clear_error(fanzha_env):
    env = {k: v for k, v in fanzha_env.items() if k != "FANZHA_TELEGRAM_TOKEN"}
    result = subprocess.run(
        [*FANZHA, "telegram"], cwd=ROOT, env=env, capture_output=True, text=True, encoding="utf-8", timeout=30
    )
    assert result.returncode != 0 and "FANZHA_TELEGRAM_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, ConnectionError):
        return None


def _post(url: str, body: dict, secret: str | None) -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    if secret is not None:
        request.add_header("X-Telegram-Bot-Api-Secret-Token", secret)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_fanzha_serve_hosts_the_telegram_webhook_with_the_same_start_and_stop(api, fanzha_env):
    port = free_port()
    env = {
        **fanzha_env,
        "FANZHA_TELEGRAM_TOKEN": api.token,
        "FANZHA_TELEGRAM_BASE_URL": api.base_url,
        "FANZHA_TELEGRAM_WEBHOOK_URL": "https://bot.example.org/telegram",
        "FANZHA_TELEGRAM_WEBHOOK_SECRET": "s3cret-token",
        "FANZHA_BATCH_WINDOW_SECONDS": "30",
    }
    process = subprocess.Popen(
        [*FANZHA, "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, encoding="utf-8",
    )
    try:
        call = api.wait_call("setWebhook", timeout=30)
        assert call.params["secret_token"] == "s3cret-token" and "message" in call.params["allowed_updates"]
        assert api.commands["all_private_chats"]  # the command menu, as in `fanzha telegram`
        base = f"http://127.0.0.1:{port}"
        assert api.wait_for(lambda: _get(f"{base}/healthz"), what="the server up")["telegram"] is True
        update = {"update_id": 1, "message": api.message(2002, SCAM, forward_from="陌生人")}
        assert _post(f"{base}/telegram", update, secret="wrong") == 403
        assert _post(f"{base}/telegram", update, secret="s3cret-token") == 200
        api.wait_for(lambda: any(c.params.get("chat_id") == 2002 for c in api.calls_to("sendChatAction")))
    except BaseException:
        process.kill()
        raise
    code, err = stop(process)
    assert code in (0, -signal.SIGTERM), err
    assert "冒充公检法" in api.messages(2002)[0]["text"]  # the forward waiting for its batch was answered
    assert "ready: @fanzha_test_bot" in err and api.token not in err and "s3cret-token" not in err
