"""Daily tips to WeCom (企业微信) group robots: the :class:`bot.broadcast.TipSender` for "wecom".

A group admin adds a robot to the group and gives us its webhook key (``Store.add_wecom_hook``,
chat id = the name it was registered under). Sending is one POST; WeCom answers
``{"errcode": 0}`` when the text was posted. A key WeCom no longer knows (robot removed,
group dissolved) will never work again, so it is reported as blocked and the hook is
unsubscribed; anything else is a failure that the next round retries.
"""

from __future__ import annotations

import logging

import httpx

from bot.broadcast import BLOCKED, FAILED, OK, SendResult
from bot.storage import Store

log = logging.getLogger(__name__)
# httpx logs request URLs, and these carry the robot's key.
logging.getLogger("httpx").setLevel(logging.WARNING)

#: 93000 invalid webhook key, 93004 robot disabled, 93008 robot no longer in the group.
GONE_ERRCODES = frozenset({93000, 93004, 93008})
TIMEOUT_SECONDS = 10.0


class WeComSender:
    """Posts a tip as a text message to a registered WeCom group robot."""

    platform = "wecom"

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
