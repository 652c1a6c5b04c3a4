"""WeCom tips at their time: the per-minute tick in `fanzha serve` (the app's lifespan) and in
`fanzha telegram` (its JobQueue), against a local WeCom webhook stand-in. The tick's clock is
injected, so "its time has come" and "the next day" need no waiting."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import FANZHA
from fakes import FakeBotAPI
from fakes.wecom_api import FakeWeCom

from bot.adapters.web import build_app
from bot.adapters.wecom import WeComSender, WeComTips
from bot.storage import Store
from bot.tips import load_tips

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[1]
#: 08:00 in Shanghai on 3 March 2025, an hour before the default tip time.
BEFORE = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)
#: 11:00 in Shanghai the same day: the 09:00 tip is overdue.
AFTER = datetime(2025, 3, 3, 3, 0, tzinfo=UTC)


class Clock:
    """The tick's idea of now, set by the test; counts how often it was read (one read per tick)."""

    def __init__(self, now: datetime) -> None:
        self.now, self.reads = now, 0
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self.reads += 1
            return self.now


@pytest.fixture
def wecom():
    with FakeWeCom({"key-gone": 93000}) as fake:
        yield fake


@pytest.fixture
def db(tmp_path) -> Path:
    store = Store(tmp_path / "fanzha.db")
    store.add_wecom_hook("幸福里一群", "key-good", "09:00", "Asia/Shanghai")
    store.close()
    return tmp_path / "fanzha.db"


def ticker(db: Path, wecom: FakeWeCom, clock: Clock) -> tuple[WeComTips, Store]:
    store = Store(db)
    return WeComTips(store, load_tips(), WeComSender(store, wecom.base, timeout=5), clock=clock), store


async def ticks(clock: Clock, count: int) -> None:
    """Wait until the running tick has read the clock *count* more times (whole rounds done)."""
    target = clock.reads + count + 1  # +1: the round reading the clock now may still be posting
    while clock.reads < target:
        await asyncio.sleep(0.005)


def serve_for_a_while(db: Path, wecom: FakeWeCom, clock: Clock, during) -> None:
    """Run the serve app's lifespan (as uvicorn does) with a fast tick while *during* runs."""
    tips, store = ticker(db, wecom, clock)
    app = build_app(consultation=None, store=store, wecom_tips=tips, tip_interval=0.01)  # type: ignore[arg-type]

    async def main() -> None:
        async with app.router.lifespan_context(app):
            await during()

    try:
        asyncio.run(asyncio.wait_for(main(), 20))
    finally:
        store.close()


def test_the_serve_tick_posts_a_due_tip_once_at_its_time(db, wecom):
    clock = Clock(BEFORE)

    async def during() -> None:
        await ticks(clock, 3)
        assert wecom.posts() == []  # 08:00: not yet
        clock.now = AFTER
        await asyncio.to_thread(wecom.wait_posts, 1)
        await ticks(clock, 5)
        assert len(wecom.posts()) == 1  # once that day, however many ticks follow
        clock.now = AFTER + timedelta(days=1)
        await asyncio.to_thread(wecom.wait_posts, 2)
        await ticks(clock, 3)

    serve_for_a_while(db, wecom, clock, during)
    first, second = wecom.posts("key-good")
    assert first.startswith("【每日反诈提醒】") and second != first  # no repeat the next day


def test_a_missed_send_is_caught_up_once_on_start(db, wecom):
    clock = Clock(AFTER)  # started at 11:00: the 09:00 tip was missed while nothing ran

    async def first_start() -> None:
        await asyncio.to_thread(wecom.wait_posts, 1)
        await ticks(clock, 2)

    async def restart() -> None:
        await ticks(clock, 5)

    serve_for_a_while(db, wecom, clock, first_start)
    serve_for_a_while(db, wecom, clock, restart)  # restarted the same day: nothing more
    assert len(wecom.posts()) == 1
    store = Store(db)
    assert store.tip_send("wecom", "幸福里一群", "2025-03-03")["status"] == "sent"
    store.close()


def test_two_processes_ticking_at_once_post_once(db, wecom):
    """`fanzha serve` and `fanzha telegram` both tick WeCom; the claim in the database decides."""
    clock = Clock(AFTER)
    reports = []
    start = threading.Barrier(4)

    def process() -> None:
        tips, store = ticker(db, wecom, clock)
        try:
            start.wait()
            reports.append(asyncio.run(tips.tick()))
        finally:
            store.close()

    threads = [threading.Thread(target=process) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(wecom.posts()) == 1
    assert sum(len(r.sent) for r in reports) == 1 and sum(r.skipped for r in reports) == 3


def test_a_robot_wecom_refuses_does_not_stop_the_tick(db, wecom):
    store = Store(db)
    store.add_wecom_hook("已解散的群", "key-gone", "09:00", "Asia/Shanghai")
    store.close()
    clock = Clock(AFTER)

    async def during() -> None:
        await asyncio.to_thread(wecom.wait_posts, 2)
        await ticks(clock, 3)

    serve_for_a_while(db, wecom, clock, during)
    assert len(wecom.posts("key-gone")) == 1 and len(wecom.posts("key-good")) == 1  # gone: unsubscribed
    store = Store(db)
    assert [s["chat_id"] for s in store.subscriptions("wecom")] == ["幸福里一群"]
    store.close()


def _run_until_posted(args: list[str], env: dict, wecom: FakeWeCom) -> str:
    process = subprocess.Popen(
        [*FANZHA, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        wecom.wait_posts(1, timeout=30)
    except BaseException:
        process.kill()
        print(process.communicate()[1])
        raise
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=20)
    assert process.returncode in (0, -signal.SIGTERM), err  # uvicorn re-raises the signal once stopped
    return err


@pytest.mark.parametrize("command", ["serve", "telegram"])
def test_the_running_process_posts_wecom_tips_from_the_config(command, fanzha_env, wecom):
    """Either process an operator runs posts the WeCom tips, here for a group from
    FANZHA_WECOM_KEYS, caught up on start (its 00:00 time has always passed)."""
    key = "c0ffee00-1111-2222-3333-444455556666"
    env = {
        **fanzha_env,
        "FANZHA_WECOM_KEYS": f"阳光小区={key}",
        "FANZHA_WECOM_WEBHOOK_BASE": wecom.base,
        "FANZHA_TIP_TIME": "00:00",
        "FANZHA_PORT": "0",
    }
    if command == "telegram":
        with FakeBotAPI() as api:
            err = _run_until_posted(
                ["telegram"],
                {**env, "FANZHA_TELEGRAM_TOKEN": api.token, "FANZHA_TELEGRAM_BASE_URL": api.base_url},
                wecom,
            )
    else:
        err = _run_until_posted(["serve"], env, wecom)
    [text] = wecom.posts(key)
    assert text.startswith("【每日反诈提醒】")
    assert key not in err and text not in err
