"""Daily tips to WeCom (企业微信) group robots: the :class:`bot.broadcast.TipSender` for "wecom".

A group admin adds a robot to the group and gives us its webhook key (``Store.add_wecom_hook``,
chat id = the name it was registered under). Sending is one POST; WeCom answers
``{"errcode": 0}`` when the text was posted. A key WeCom no longer knows (robot removed,
group dissolved) will never work again, so it is reported as blocked and the hook is
unsubscribed; anything else is a failure that the next round retries.

:class:`WeComTips` is the schedule: a tick every minute that posts each group's tip once its
time has come. ``fanzha serve`` runs it in the app's lifespan and ``fanzha telegram`` on its
JobQueue, so whichever process an operator runs also serves the WeCom groups. Running both
is safe: each send is claimed in the database before it is posted, so exactly one process
posts it. Groups come from ``fanzha tips add-wecom`` or from FANZHA_WECOM_KEYS
(:func:`register_configured_groups`, called when a process starts).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from bot.broadcast import BLOCKED, FAILED, OK, BroadcastReport, SendResult, send_due_tips
from bot.storage import Store
from bot.tips import TipLibrary, load_tips

log = logging.getLogger(__name__)
# httpx logs request URLs, and these carry the robot's key.
logging.getLogger("httpx").setLevel(logging.WARNING)

#: 93000 invalid webhook key, 93004 robot disabled, 93008 robot no longer in the group.
GONE_ERRCODES = frozenset({93000, 93004, 93008})
TIMEOUT_SECONDS = 10.0
TICK_SECONDS = 60.0


class WeComSender:
    """Posts a tip as a text message to a registered WeCom group robot."""

    platform = "wecom"
    #: One post at a time (bot.broadcast.send_due_tips): a robot takes 20 messages a minute and
    #: nothing here paces them, so a round stays as gentle as it always was.
    concurrency = 1

    def __init__(self, store: Store, webhook_base: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.store = store
        self.webhook_base = webhook_base
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings, store: Store) -> WeComSender:
        return cls(store, settings.wecom_webhook_base)

    async def send_tip(self, chat_id: str, text: str) -> SendResult:
        key = self.store.wecom_hook_key(chat_id)
        if not key:
            log.warning("wecom: no robot registered as %r; unsubscribing it", chat_id)
            return SendResult(BLOCKED)
        payload = {"msgtype": "text", "text": {"content": text}}
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(self.webhook_base, params={"key": key}, json=payload)
            errcode = int(response.json().get("errcode", -1))
        except (httpx.HTTPError, ValueError, AttributeError, TypeError) as exc:
            # Never log the exception text: it may hold the URL, which holds the key.
            log.warning("wecom: sending to %r failed (%s); will retry", chat_id, type(exc).__name__)
            return SendResult(FAILED)
        if errcode == 0:
            return SendResult(OK)
        if errcode in GONE_ERRCODES:
            log.warning("wecom: robot %r is gone (errcode %s); unsubscribing it", chat_id, errcode)
            return SendResult(BLOCKED)
        log.warning("wecom: robot %r refused the tip (errcode %s); will retry", chat_id, errcode)
        return SendResult(FAILED)


def register_configured_groups(settings, store: Store) -> list[str]:
    """Register the groups in FANZHA_WECOM_KEYS that are new or whose key changed.

    A group already registered with the same key is left alone: its time (changed with
    ``fanzha tips add-wecom NAME --time``) stays, and a robot WeCom reported gone stays off.
    """
    changed = []
    for name, key in settings.wecom_groups.items():
        if store.wecom_hook_key(name) == key:
            continue
        hook = next((h for h in store.wecom_hooks() if h["name"] == name), None)
        store.add_wecom_hook(name, key, (hook or {}).get("tip_time") or settings.tip_time, settings.timezone)
        changed.append(name)
    if changed:
        log.info("wecom: registered %d group robot(s) from FANZHA_WECOM_KEYS", len(changed))
    return changed


class WeComTips:
    """The per-minute WeCom round. The first tick runs at once: a send missed while no process
    was running goes out on start if it is still the same day (the claim keeps it to once)."""

    def __init__(
        self,
        store: Store,
        library: TipLibrary,
        sender: WeComSender,
        *,
        default_time: str = "09:00",
        default_zone: str = "Asia/Shanghai",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.library = library
        self.sender = sender
        self.default_time = default_time
        self.default_zone = default_zone
        self.clock = clock or (lambda: datetime.now(UTC))
        self._round = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings, store: Store, library: TipLibrary | None = None, **kwargs) -> WeComTips:
        register_configured_groups(settings, store)
        return cls(
            store,
            library or load_tips(),
            WeComSender.from_settings(settings, store),
            default_time=settings.tip_time,
            default_zone=settings.timezone,
            **kwargs,
        )

    async def tick(self) -> BroadcastReport | None:
        """One round; None when the previous one is still posting (it covers this minute)."""
        if self._round.locked():
            return None
        async with self._round:
            report = await send_due_tips(
                self.store,
                self.library,
                self.sender,
                self.clock(),
                default_time=self.default_time,
                default_zone=self.default_zone,
            )
        if report.sent or report.blocked or report.failed:
            log.info(
                "wecom daily tips: %d sent, %d unsubscribed (robot gone), %d failed (retried next minute)",
                len(report.sent),
                len(report.blocked),
                len(report.failed),
            )
        return report

    async def job(self, context: object) -> None:
        """The tick as a python-telegram-bot JobQueue callback (``fanzha telegram``)."""
        await self.safe_tick()

    async def safe_tick(self) -> None:
        try:
            await self.tick()
        except Exception as exc:  # a bad minute must not end the schedule; the next tick retries
            log.error("wecom daily tips: round failed (%s)", type(exc).__name__)

    async def run(self, interval: float = TICK_SECONDS) -> None:
        """Tick now, then every *interval* seconds, until cancelled (``fanzha serve``)."""
        while True:
            await self.safe_tick()
            await asyncio.sleep(interval)
