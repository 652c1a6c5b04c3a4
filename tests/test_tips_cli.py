"""`fanzha tips ...` run as a user runs it (a subprocess), on a real SQLite file, against the
Bot API stand-in and a local WeCom webhook stand-in."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from datetime import date
from pathlib import Path

import pytest
from conftest import FANZHA
from fakes import FakeBotAPI
from fakes.wecom_api import FakeWeCom

from bot.storage import Store
from bot.tips import choose_tip, load_tips

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[1]
KEY = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
TIP = "【每日反诈提醒】"


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """FANZHA_HOME and FANZHA_DB in tmp_path, no FANZHA_* setting leaking in from outside."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FANZHA_")}
    return {
        **clean,
        "FANZHA_HOME": str(tmp_path / "home"),
        "FANZHA_DB": str(tmp_path / "tips.db"),
        "PYTHONIOENCODING": "utf-8",
    }


@pytest.fixture
def wecom():
    with FakeWeCom({"key-gone": 93000, "key-busy": 45009}) as fake:
        yield fake


def fanzha(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*FANZHA, "tips", *args], cwd=ROOT, env=env, capture_output=True, text=True, encoding="utf-8", timeout=30
    )
    if check:
        assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def open_db(env: dict[str, str]) -> Store:
    return Store(Path(env["FANZHA_DB"]))


def test_preview_shows_what_each_chat_gets_and_what_went_out(env, wecom):
    store = open_db(env)
    store.subscribe("telegram", "4001", "private", "06:30", "Asia/Shanghai")
    store.add_wecom_hook("幸福里一群", "key-good", "09:00", "Asia/Shanghai")
    store.close()

    out = fanzha(env, "preview").stdout
    assert re.search(
        r"^telegram:4001  \d{4}-\d\d-\d\d 06:30 Asia/Shanghai  (due|scheduled)  \(tip [\w-]+\)$", out, re.M
    )
    assert re.search(r"^wecom:幸福里一群  .* 09:00 Asia/Shanghai  (due|scheduled)", out, re.M)
    assert out.count(TIP) == 2

    # A given day, one chat: the deterministic pick for that chat and day.
    library = load_tips()
    expected = choose_tip(library, [], date(2025, 11, 5), "telegram:4001")
    out = fanzha(env, "preview", "--date", "2025-11-05", "--chat", "telegram:4001").stdout
    assert f"(tip {expected.id})" in out and expected.text in out and "wecom" not in out

    # A chat that is not subscribed still shows the tip it would get.
    out = fanzha(env, "preview", "--chat", "telegram:777").stdout
    assert "telegram:777" in out and "not subscribed" in out and TIP in out

    # Once sent, preview shows the tip that went out, marked sent.
    env = {**env, "FANZHA_WECOM_WEBHOOK_BASE": wecom.base}
    fanzha(env, "send", "--now")
    [posted] = wecom.posts("key-good")
    out = fanzha(env, "preview", "--chat", "wecom:幸福里一群").stdout
    assert "  sent  " in out and posted in out

    bad = fanzha(env, "preview", "--chat", "4001", check=False)
    assert bad.returncode == 2 and "PLATFORM:ID" in bad.stderr


def test_send_now_sends_todays_round_once_across_two_runs(env, wecom):
    store = open_db(env)
    for chat, kind in (("4001", "private"), ("4002", "private"), ("-5001", "group")):
        store.subscribe("telegram", chat, kind, "23:59", "Asia/Shanghai")  # --now ignores the time
    store.add_wecom_hook("幸福里一群", "key-good", "23:59", "Asia/Shanghai")
    store.close()
    with FakeBotAPI() as api:
        api.flood_limits(per_second=30, group_per_minute=20)
        api.block(4002)
        env = {
            **env,
            "FANZHA_TELEGRAM_TOKEN": api.token,
            "FANZHA_TELEGRAM_BASE_URL": api.base_url,
            "FANZHA_WECOM_WEBHOOK_BASE": wecom.base,
        }
        first = fanzha(env, "send", "--now")
        assert "telegram: 2 sent, 0 already had today's tip, 1 unsubscribed" in first.stdout
        assert "wecom: 1 sent" in first.stdout
        second = fanzha(env, "send", "--now")
        assert "telegram: 0 sent, 2 already had today's tip" in second.stdout
        assert "wecom: 0 sent, 1 already had today's tip" in second.stdout
        assert "Nothing new was sent" in second.stdout

        for chat in (4001, -5001):
            assert [m["text"][: len(TIP)] for m in api.messages(chat)] == [TIP]
        assert api.messages(4002) == []
        assert len(wecom.posts()) == 1
        for result in (first, second):
            assert api.token not in result.stdout + result.stderr
    store = open_db(env)
    assert {s["chat_id"] for s in store.subscriptions("telegram")} == {"4001", "-5001"}  # 4002 blocked the bot
    store.close()


def test_send_without_a_telegram_token_says_so_and_still_serves_wecom(env, wecom):
    store = open_db(env)
    store.subscribe("telegram", "4001", "private", "00:00", "Asia/Shanghai")
    store.add_wecom_hook("幸福里一群", "key-good", "00:00", "Asia/Shanghai")
    store.close()
    out = fanzha({**env, "FANZHA_WECOM_WEBHOOK_BASE": wecom.base}, "send").stdout  # 00:00: always due
    assert "telegram: 1 subscribed chat(s) not sent: FANZHA_TELEGRAM_TOKEN is not set" in out
    assert "wecom: 1 sent" in out


def test_add_remove_and_list_never_show_the_key(env):
    url = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={KEY}"
    added = fanzha(env, "add-wecom", "幸福里一群", url, "--time", "8:30")
    assert "幸福里一群" in added.stdout and "08:30 Asia/Shanghai" in added.stdout
    changed = fanzha(env, "add-wecom", "幸福里一群", "--time", "07:45")  # no KEY: keep it, change the time
    assert "updated" in changed.stdout
    config_key = "c0ffee00-1111-2222-3333-444455556666"
    env_with_config = {**env, "FANZHA_WECOM_KEYS": f"阳光小区={config_key}"}
    listed = fanzha(env_with_config, "list")
    out = listed.stdout
    assert "Subscribed chats (0):" in out and "WeCom group robots (2):" in out
    assert re.search(r"^  幸福里一群  key \*\*\*\*e1f0  07:45 Asia/Shanghai  last sent never  on$", out, re.M)
    assert re.search(r"^  阳光小区  key \*\*\*\*6666  09:00 .*\(FANZHA_WECOM_KEYS\)$", out, re.M)
    for result in (added, changed, listed):
        for key in (KEY, config_key):
            assert key not in result.stdout + result.stderr
            assert key[:-4] not in result.stdout + result.stderr
    with sqlite3.connect(env["FANZHA_DB"]) as db:  # kept in the database, where the sender reads it
        assert dict(db.execute("SELECT name, hook_key FROM wecom_hooks")) == {"幸福里一群": KEY, "阳光小区": config_key}

    bad = fanzha(env, "add-wecom", "新群", "not a key!", check=False)
    assert bad.returncode == 2 and "letters, digits" in bad.stderr and "not a key!" not in bad.stderr

    assert "removed" in fanzha(env, "remove-wecom", "幸福里一群").stdout
    again = fanzha(env, "remove-wecom", "幸福里一群", check=False)
    assert again.returncode == 1 and "no WeCom group" in again.stderr
    note = fanzha(env_with_config, "remove-wecom", "阳光小区").stdout
    assert "FANZHA_WECOM_KEYS" in note
    assert "WeCom group robots (0):" in fanzha(env, "list").stdout


def test_a_robot_wecom_refuses_is_reported_and_switched_off_without_a_crash(env, wecom):
    store = open_db(env)
    store.add_wecom_hook("已解散的群", "key-gone", "00:00", "Asia/Shanghai")  # WeCom: 93000 invalid key
    store.add_wecom_hook("忙碌的群", "key-busy", "00:00", "Asia/Shanghai")  # 45009: over the limit, retry
    store.close()
    env = {**env, "FANZHA_WECOM_WEBHOOK_BASE": wecom.base}
    out = fanzha(env, "send", "--now").stdout
    assert "wecom: 0 sent, 0 already had today's tip, 1 unsubscribed" in out and "1 failed" in out
    listed = fanzha(env, "list").stdout
    assert re.search(r"^  已解散的群 .* off \(WeCom no longer knows the key", listed, re.M)
    assert re.search(r"^  忙碌的群 .* on$", listed, re.M)
    # The busy one is retried on the next run; the gone one is not tried again.
    fanzha(env, "send", "--now")
    assert len(wecom.posts("key-gone")) == 1 and len(wecom.posts("key-busy")) == 2


def test_bad_times_and_robot_keys_get_a_clear_error_that_never_echoes_the_key(env):
    bad_time = fanzha(env, "add-wecom", "三号楼", "abcdef123456", "--time", "25:00", check=False)
    assert bad_time.returncode == 2 and "25:00" in bad_time.stderr and "abcdef123456" not in bad_time.stderr
    for value in ("nokey,群=secretkey99", "群=", "群=k1,群=k2"):
        result = fanzha({**env, "FANZHA_WECOM_KEYS": value}, "list", check=False)
        assert result.returncode == 2 and "FANZHA_WECOM_KEYS" in result.stderr, value
        assert "secretkey99" not in result.stderr and "k1" not in result.stderr
