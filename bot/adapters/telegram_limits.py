"""Outgoing pace for the Bot API: Telegram's flood limits kept before Telegram has to say so.

PTB's :class:`~telegram.ext.AIORateLimiter` aims at 30 requests a second overall and 20 a
minute per group, but it counts every request that names a chat, the "typing…" indicator
included, it has no limit per private chat, and its leaky buckets hold a whole period's
worth: a full bucket of 30 plus 30 a second lets 60 messages through in one second, and 40
into a group in one minute. :class:`FloodLimiter` is that limiter with three changes:

- small buckets: a burst of 2 then 28 a second overall, a burst of 4 then 16 a minute per
  group, so no window of a second (of a minute, in a group) ever holds more than 30 (20);
- a chat action (``sendChatAction``) uses no message budget: it goes out at once while the
  budgets have room and no 429 is being waited out, and is dropped otherwise (typing is
  cosmetic; the reply it announces is what must arrive);
- each private chat gets its own limit of about one message a second, with a burst of two
  (Telegram's advice for a single chat), on top of the overall one.

Retries of a 429 (``RetryAfter``) stay PTB's: every request waits, then tries again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.ext import AIORateLimiter

__all__ = ["FloodLimiter", "counts_as_message"]

CHAT_ACTION = "sendChatAction"
#: Methods that put a new message into a chat, the thing Telegram's per-chat advice is about.
MESSAGE_PREFIXES = ("send", "copyMessage", "forwardMessage")
#: A leaky bucket of *burst* draining at *rate* passes at most burst + rate x window in any
#: window: 2 + 28 = 30 a second overall, 4 + 16 = 20 a minute per group.
OVERALL_BURST = 2
OVERALL_PER_SECOND = 28.0
GROUP_BURST = 4
GROUP_PER_MINUTE = 16.0
#: Messages one private chat may get at once, and then a second.
PRIVATE_BURST = 2
PRIVATE_PER_SECOND = 1.0
#: Idle per-chat limiters are forgotten once there are more than this many (as PTB does for groups).
MAX_CHAT_LIMITERS = 512

Request = Callable[..., Coroutine[Any, Any, Any]]


def counts_as_message(endpoint: str) -> bool:
    """True for methods that send a new message (not chat actions, edits, reads or answers)."""
    return endpoint != CHAT_ACTION and endpoint.startswith(MESSAGE_PREFIXES)


def chat_number(data: dict[str, Any]) -> int | None:
    """The request's chat id as a number; None without one or for an ``@channel`` name."""
    with contextlib.suppress(TypeError, ValueError):
        return int(data.get("chat_id"))  # type: ignore[arg-type]
    return None


class FloodLimiter(AIORateLimiter):
    """:class:`AIORateLimiter` that exempts chat actions and adds a limit per private chat."""

    def __init__(
        self,
        *,
        max_retries: int,
        overall_burst: int = OVERALL_BURST,
        overall_per_second: float = OVERALL_PER_SECOND,
        group_burst: int = GROUP_BURST,
        group_per_minute: float = GROUP_PER_MINUTE,
        private_burst: int = PRIVATE_BURST,
        private_per_second: float = PRIVATE_PER_SECOND,
    ) -> None:
        super().__init__(
            overall_max_rate=overall_burst,
            overall_time_period=overall_burst / overall_per_second,
            group_max_rate=group_burst,
            group_time_period=60 * group_burst / group_per_minute,
            max_retries=max_retries,
        )
        self.private_burst = private_burst
        self.private_period = private_burst / private_per_second if private_per_second else 0.0
        self._private: dict[int, AsyncLimiter] = {}
        self.dropped_chat_actions = 0

    async def process_request(
        self,
        callback: Request,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        chat = chat_number(data)
        if endpoint == CHAT_ACTION:
            if not self.has_room_for_chat_action(chat):
                self.dropped_chat_actions += 1
                return True  # what Telegram answers to a chat action
            return await callback(*args, **kwargs)
        limiter = self.private_limiter(chat) if chat is not None and chat > 0 and counts_as_message(endpoint) else None
        if limiter is None:
            return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
        async with limiter:
            return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)

    def has_room_for_chat_action(self, chat: int | None) -> bool:
        """True when a chat action would not compete with messages waiting for the budgets.

        Reads the parent's limiters (PTB invites subclasses to build on them): the overall
        budget and a group's must have room for a message now, and no 429 may be being
        waited out.
        """
        if not self._retry_after_event.is_set():
            return False
        overall = self._base_limiter
        if overall is not None and not overall.has_capacity():
            return False
        group = self._group_limiters.get(chat) if chat is not None and chat < 0 else None
        return group is None or group.has_capacity()

    def private_limiter(self, chat: int) -> AsyncLimiter | None:
        """The limiter of one private chat (None when the per-chat limit is switched off)."""
        if not self.private_period:
            return None
        limiter = self._private.get(chat)
        if limiter is None:
            if len(self._private) >= MAX_CHAT_LIMITERS:
                self._forget_idle_chats()
            limiter = self._private[chat] = AsyncLimiter(self.private_burst, self.private_period)
        return limiter

    def _forget_idle_chats(self) -> None:
        for chat, limiter in list(self._private.items()):
            if limiter.has_capacity(limiter.max_rate):  # drained: nothing to remember
                del self._private[chat]
