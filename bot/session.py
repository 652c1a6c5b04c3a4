"""Per-chat conversation state: the pending follow-up, the forwarded batch, the rate limit.

Small, explicit and in memory; every method takes ``now`` (seconds, any monotonic clock) so
tests drive time directly. State expires on its own; losing it on restart costs at most an
unanswered follow-up question, never a stored record.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

FOLLOW_UP_SECONDS = 15 * 60
IDLE_SECONDS = 60 * 60


@dataclass
class ChatState:
    follow_up_until: float = 0.0
    follow_up_label: str = ""
    batch: list[str] = field(default_factory=list)
    batch_last_at: float = 0.0
    checks: deque[float] = field(default_factory=deque)
    touched: float = 0.0


class Sessions:
    """State of every active chat, kept in order of last use so idle chats are cheap to drop."""

    def __init__(self, batch_window: float = 4.0, checks_per_minute: int = 12) -> None:
        self.batch_window = batch_window
        self.checks_per_minute = checks_per_minute
        self._chats: OrderedDict[str, ChatState] = OrderedDict()

    def _state(self, key: str, now: float) -> ChatState:
        state = self._chats.get(key)
        if state is None:
            self.prune(now)
            state = self._chats[key] = ChatState()
        else:
            self._chats.move_to_end(key)
        state.touched = now
        return state

    def prune(self, now: float) -> None:
        """Forget chats idle for IDLE_SECONDS, oldest first.

        Chats are in order of last use, so this stops at the first active one: a new chat
        costs O(1) however many are active (a full scan each time made busy bots quadratic).
        A chat whose forwarded batch still waits to be judged is kept.
        """
        chats = self._chats
        for _ in range(len(chats)):
            key, state = next(iter(chats.items()))
            if now - state.touched <= IDLE_SECONDS:
                return
            if state.batch:
                chats.move_to_end(key)
            else:
                del chats[key]

    def active_chats(self) -> int:
        return len(self._chats)

    def forget(self, key: str) -> None:
        self._chats.pop(key, None)

    # Follow-up question ("did you already pay?")
    def expect_follow_up(self, key: str, label: str, now: float) -> None:
        state = self._state(key, now)
        state.follow_up_until, state.follow_up_label = now + FOLLOW_UP_SECONDS, label

    def pending_follow_up(self, key: str, now: float) -> str | None:
        state = self._chats.get(key)
        if state and state.follow_up_until > now:
            return state.follow_up_label
        return None

    def clear_follow_up(self, key: str) -> None:
        state = self._chats.get(key)
        if state:
            state.follow_up_until, state.follow_up_label = 0.0, ""

    # Forwarded batch: several forwards within the window are judged as one conversation.
    def add_to_batch(self, key: str, text: str, now: float) -> None:
        state = self._state(key, now)
        state.batch.append(text)
        state.batch_last_at = now

    def take_batch(self, key: str, now: float) -> list[str] | None:
        """The batch, if its window has closed (no forward for ``batch_window`` seconds)."""
        state = self._chats.get(key)
        if not state or not state.batch or now - state.batch_last_at < self.batch_window - 1e-6:
            return None
        batch, state.batch = state.batch, []
        return batch

    # Rate limit on checks
    def allow_check(self, key: str, now: float) -> bool:
        state = self._state(key, now)
        while state.checks and now - state.checks[0] >= 60:
            state.checks.popleft()
        if len(state.checks) >= self.checks_per_minute:
            return False
        state.checks.append(now)
        return True
