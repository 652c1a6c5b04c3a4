"""The real Telegram application (bot.adapters.telegram.build_application) run in-process
against :class:`FakeBotAPI`, on its own thread and event loop.

Tests then talk to it exactly as the subprocess tests do, through the stand-in, but without
paying for a process start each time. Use :func:`telegram_settings` for settings pointing
at the stand-in.

Example::

    with FakeBotAPI() as api, BotInThread.start(telegram_settings(api, home), classifier) as bot:
        api.send(1001, "您好")
        api.wait_messages(1001)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.consultation import Consultation
from bot.session import Sessions
from bot.storage import Store

from .bot_api import FakeBotAPI


def telegram_settings(api: FakeBotAPI, home: Path, **env: str) -> Settings:
    """Settings for a bot talking to *api*; *env* adds FANZHA_* variables (name without prefix)."""
    environ = {
        "FANZHA_HOME": str(home),
        "FANZHA_TELEGRAM_TOKEN": api.token,
        "FANZHA_TELEGRAM_BASE_URL": api.base_url,
        "FANZHA_BATCH_WINDOW_SECONDS": "0.3",
    }
    environ.update({f"FANZHA_{k.upper()}": str(v) for k, v in env.items()})
    return Settings.from_env(environ)


class BotInThread:
    """A running bot; ``stop()`` (or leaving the ``with`` block) shuts it down cleanly."""

    def __init__(self, application, settings: Settings, store: Store, api: FakeBotAPI | None = None) -> None:
        self.application = application
        self.settings = settings
        self.store = store
        self.api = api
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="telegram-bot", daemon=True)
        self.error: BaseException | None = None

    @classmethod
    def start(
        cls,
        settings: Settings,
        classifier,
        api: FakeBotAPI | None = None,
        *,
        tip_tick: bool = True,
        **build_kwargs: Any,
    ) -> BotInThread:
        """Build and start the bot; ``tip_tick=False`` leaves out the daily-tip job (quieter tests)."""
        from bot.adapters.telegram import build_application

        store = Store(settings.db, timezone=settings.timezone, retention_days=settings.retention_days)
        sessions = Sessions(settings.batch_window_seconds, settings.checks_per_minute)
        consultation = Consultation(classifier, log=store, sessions=sessions, hash_key=b"test-key")
        application = build_application(settings, consultation, store, **build_kwargs)
        if not tip_tick:
            for job in application.job_queue.get_jobs_by_name("daily-tips"):
                job.schedule_removal()
        bot = cls(application, settings, store, api)
        bot._thread.start()
        if not bot._ready.wait(10):
            raise RuntimeError("the bot thread did not start")
        if api is not None:
            api.wait_call("getUpdates")  # polling: ready for updates
        return bot

    def _run(self) -> None:
        from bot.adapters.telegram import run_bot

        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await run_bot(self.application, self.settings, stop=self._stop)

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced by stop()
            self.error = exc
            self._ready.set()

    def call(self, make: Callable[[], Coroutine[Any, Any, Any]], timeout: float = 30) -> Any:
        """Run a coroutine on the bot's event loop (e.g. a broadcast round) and return its result."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(make(), self.loop).result(timeout)

    def stop(self, timeout: float = 20) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError("the bot did not stop")
        self.store.close()
        if self.error is not None:
            raise self.error

    def __enter__(self) -> BotInThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
