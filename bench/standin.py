"""The tests' Bot API stand-in (tests/fakes), made importable here and instrumented.

The stand-in lives with the tests (``tests/fakes``, imported there as ``fakes``); a repo
checkout has it, an installed wheel does not, which is why the benchmark runs from a
checkout. :class:`TimedBotAPI` adds what a load test needs and a functional test does not:
when each update was first handed to the bot, and each successful send, per chat, as it
happens (so nothing has to scan the full call log while the load runs).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import defaultdict
from typing import Any

from bench.common import ROOT

if str(ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(ROOT / "tests"))

from fakes import FakeBotAPI


class TimedBotAPI(FakeBotAPI):
    """FakeBotAPI that timestamps deliveries and successful sends (monotonic seconds)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.delivered_at: dict[int, float] = {}
        self.sent: dict[int, list[tuple[float, str]]] = defaultdict(list)  # chat -> [(at, method)]
        self.sent_count = 0
        self.refused_429 = 0
        self.progress = threading.Condition()

    def _get_updates(self, params: dict[str, Any]) -> list[Any]:
        batch = super()._get_updates(params)
        now = time.monotonic()
        for update in batch:
            update_id = update.get("update_id") if isinstance(update, dict) else None
            if update_id is not None:
                self.delivered_at.setdefault(update_id, now)
        return batch

    def handle(self, method: str, params: dict[str, Any]) -> tuple[int, dict]:
        status, body = super().handle(method, params)
        if method.startswith("send") and method != "sendChatAction":
            if status == 200:
                with self.progress:
                    self.sent[int(params["chat_id"])].append((time.monotonic(), method))
                    self.sent_count += 1
                    self.progress.notify_all()
            elif status == 429:
                self.refused_429 += 1
        return status, body

    def wait_sent(self, count: int, timeout: float) -> bool:
        """Wait until *count* messages were delivered in all; False on timeout."""
        deadline = time.monotonic() + timeout
        with self.progress:
            while self.sent_count < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.progress.wait(min(left, 0.5))
        return True

    def sends_in_order(self) -> list[tuple[float, int]]:
        """Every successful message as (at, chat_id), oldest first."""
        return sorted((at, chat) for chat, sends in self.sent.items() for at, _ in sends)


__all__ = ["FakeBotAPI", "TimedBotAPI"]
