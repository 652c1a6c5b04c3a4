"""WeChat Official Account (公众号): signed XML in, one passive XML reply out.

WeChat POSTs every follower message to our URL as XML, signed with the shared token and, in
safe mode, AES-encrypted. The answer is a passive reply in the HTTP response: one message, at
most 2,048 bytes, within 5 seconds, or WeChat gives up on it and retries the request (same
MsgId) up to three times. So the work runs in a thread with a deadline, each MsgId is answered
and counted once, and a retry gets the first attempt's reply from memory.

This module knows WeChat, not the web framework (that is :mod:`bot.adapters.web`): it checks
signatures, parses with a hardened parser, turns XML into an :class:`IncomingMessage` and the
core's replies back into XML. The crypto is wechatpy's, never hand-written.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_untrusted_xml
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import WeChatSigner

from bot.config import ConfigError
from bot.consultation import Consultation
from bot.messages import IncomingMessage, Reply
from bot.render import WECHAT_LIMIT_BYTES, render_plain, render_wechat, split_parts
from bot.storage import Store

log = logging.getLogger(__name__)

PLATFORM = "wechat"
#: WeChat messages are a few KB at most; anything bigger is refused before parsing.
MAX_BODY_BYTES = 64 * 1024
#: A request signed further than this from our clock is a replay (or a broken clock).
MAX_CLOCK_SKEW_SECONDS = 300
#: WeChat waits 5 s for a passive reply; keep a margin for the network.
REPLY_DEADLINE_SECONDS = 4.0
#: WeChat retries over about 15 s; keep replies well beyond that.
RETRY_WINDOW_SECONDS = 300.0
#: The body that tells WeChat "received, no reply".
NO_REPLY = "success"

_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class Rejected(Exception):
    """Refuse the request with this HTTP status and an empty body."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


# Signatures and XML -----------------------------------------------------------------------
def sign(*parts: str) -> str:
    """WeChat's signature: SHA-1 over the sorted parts (wechatpy's signer)."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def check_signature(token: str, query: Mapping[str, str], now: float) -> None:
    """Accept only a request signed with our token and stamped within 5 minutes of *now*."""
    signature, timestamp, nonce = (query.get(k, "") for k in ("signature", "timestamp", "nonce"))
    if not (token and signature and timestamp and nonce) or not timestamp.isdigit():
        raise Rejected(403)
    if abs(now - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        raise Rejected(403)
    if not hmac.compare_digest(sign(token, timestamp, nonce), signature):
        raise Rejected(403)


def parse_xml(data: bytes | str) -> dict[str, str]:
    """The flat ``<xml><Field>value</Field>…</xml>`` WeChat sends, as a dict.

    Any DTD is refused, so entity tricks (billion laughs, external entities) never expand.
    """
    try:
        root = parse_untrusted_xml(data, forbid_dtd=True)
    except (DefusedXmlException, ParseError, ValueError, UnicodeError):
        raise Rejected(400) from None
    if root.tag != "xml":
        raise Rejected(400)
    return {child.tag: child.text or "" for child in root}


def _cdata(text: str) -> str:
    text = _XML_ILLEGAL.sub("", text)
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply_xml(follower: str, account: str, content: str, created: int) -> str:
    """A passive text reply from the official account *account* to *follower*."""
    return (
        f"<xml><ToUserName>{_cdata(follower)}</ToUserName><FromUserName>{_cdata(account)}</FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content>{_cdata(content)}</Content></xml>"
    )


# Replies within 2,048 bytes ---------------------------------------------------------------
def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def fit_passive(reply: Reply, more_line: str, limit: int = WECHAT_LIMIT_BYTES) -> str:
    """The reply as one passive message of at most *limit* bytes.

    A passive reply is a single message, so a longer reply keeps its beginning (whole
    lines, whole sentences), then *more_line* (pointing to the hotline), then the closing
    question and its numbered answers, so "回复 1" still means something.
    """
    parts = render_wechat(reply)
    if len(parts) <= 1:
        return parts[0] if parts else ""
    asks = bool(reply.quick_replies)
    head_blocks = reply.blocks[:-1] if asks else reply.blocks
    tail = render_plain(Reply(reply.blocks[-1:], reply.quick_replies), numbered_options=True) if asks else ""
    ending = "\n".join(x for x in (more_line, tail) if x)
    budget = limit - _utf8_len(ending) - 1
    if budget < limit // 4:  # a closing part too big to keep: keep the text instead
        head_blocks, ending = reply.blocks, more_line
        budget = limit - _utf8_len(ending) - 1
    head = split_parts(render_plain(Reply(head_blocks)).split("\n"), budget, _utf8_len)[0]
    return f"{head}\n{ending}"


def join_replies(replies: list[Reply]) -> Reply:
    """Several core replies as the one message a passive reply allows."""
    if len(replies) == 1:
        return replies[0]
    blocks = tuple(b for r in replies for b in r.blocks)
    return Reply(blocks, replies[-1].quick_replies)


# What a follower sent ---------------------------------------------------------------------
@dataclass(frozen=True)
class Inbound:
    """One decrypted WeChat push: who sent it, what kind it is, and its retry identity."""

    kind: str  # text, voice, image, link, subscribe, unsubscribe, other_event, unsupported
    follower: str
    account: str
    dedup_key: str
    fields: Mapping[str, str] = field(repr=False, default_factory=dict)


def read_inbound(fields: Mapping[str, str]) -> Inbound:
    """Classify a parsed push; the retry identity is the MsgId, or for events the
    (follower, CreateTime, event) triple WeChat documents, hashed so no id is kept."""
    follower, account = fields.get("FromUserName", ""), fields.get("ToUserName", "")
    msg_type = fields.get("MsgType", "").strip().lower()
    if not follower or not account or not msg_type:
        raise Rejected(400)
    if msg_type == "event":
        event = fields.get("Event", "").strip().lower()
        kind = event if event in ("subscribe", "unsubscribe") else "other_event"
        identity = f"{follower}:{fields.get('CreateTime', '')}:{event}"
        key = "event:" + hashlib.sha256(identity.encode()).hexdigest()[:32]
        return Inbound(kind, follower, account, key, fields)
    msg_id = fields.get("MsgId", "").strip()
    if msg_id:
        key = f"msg:{msg_id}"
    else:
        identity = f"{follower}:{fields.get('CreateTime', '')}:{msg_type}"
        key = "msg:" + hashlib.sha256(identity.encode()).hexdigest()[:32]
    kind = msg_type if msg_type in ("text", "voice", "image", "link") else "unsupported"
    return Inbound(kind, follower, account, key, fields)


def text_message(text: str, follower: str) -> IncomingMessage:
    """A follower's own words. WeChat has no forwarding batch: each message stands alone."""
    return IncomingMessage(text, chat_id=follower, platform=PLATFORM, user_id=follower, forwarded=False)


def image_message(fields: Mapping[str, str], follower: str) -> IncomingMessage:
    """A picture. No OCR yet, so the core gives its kind "please type it" reply; when OCR
    lands, download ``PicUrl`` here and pass the text as ``image_text``."""
    return IncomingMessage("", chat_id=follower, platform=PLATFORM, user_id=follower, image_unreadable=True)


def link_text(fields: Mapping[str, str]) -> str:
    """A shared link (article or page): its title, description and address are what we can check."""
    return "\n".join(v.strip() for v in (fields.get(k, "") for k in ("Title", "Description", "Url")) if v.strip())


# The endpoint -----------------------------------------------------------------------------
class WeChatEndpoint:
    """Everything ``/wechat`` does, apart from HTTP itself."""

    def __init__(
        self,
        consultation: Consultation,
        store: Store,
        *,
        token: str,
        appid: str = "",
        aes_key: str = "",
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        deadline: float = REPLY_DEADLINE_SECONDS,
    ) -> None:
        if not token:
            raise ConfigError("FANZHA_WECHAT_TOKEN is needed for the WeChat endpoint")
        if aes_key and not appid:
            raise ConfigError("FANZHA_WECHAT_APPID is needed with FANZHA_WECHAT_AES_KEY (safe mode)")
        self.consultation = consultation
        self.wording = consultation.wording
        self.store = store
        self.token = token
        self.crypto = WeChatCrypto(token, aes_key, appid) if aes_key else None
        self.clock = clock
        self.monotonic = monotonic
        self.deadline = deadline
        # Sessions in the core are plain dicts: one consultation at a time.
        self._core_lock = threading.Lock()
        self._replies: OrderedDict[str, tuple[float, asyncio.Future[str | None]]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings, consultation: Consultation, store: Store) -> WeChatEndpoint | None:
        """The endpoint, or None when WeChat is not configured (no FANZHA_WECHAT_TOKEN)."""
        if not settings.wechat_token:
            return None
        return cls(
            consultation,
            store,
            token=settings.wechat_token,
            appid=settings.wechat_appid,
            aes_key=settings.wechat_aes_key,
        )

    # Requests -----------------------------------------------------------------------------
    def check(self, query: Mapping[str, str]) -> None:
        """Raise Rejected(403) unless the request is signed with our token and fresh."""
        check_signature(self.token, query, self.clock())

    def verify(self, query: Mapping[str, str]) -> str:
        """Server verification (GET): echo ``echostr`` back when the signature is right."""
        self.check(query)
        echo = query.get("echostr", "")
        if not echo:
            raise Rejected(403)
        return echo

    async def answer(self, query: Mapping[str, str], body: bytes) -> str:
        """The response body for one POST whose query :meth:`check` accepted."""
        fields = parse_xml(body)
        encrypted = query.get("encrypt_type", "").lower() == "aes"
        if encrypted:
            fields = self._decrypt(query, fields)
        inbound = read_inbound(fields)
        content = await self._reply_once(inbound)
        if content is None:
            return NO_REPLY
        xml = text_reply_xml(inbound.follower, inbound.account, content, int(self.clock()))
        if encrypted and self.crypto is not None:
            return self.crypto.encrypt_message(xml, secrets.token_hex(8), str(int(self.clock())))
        return xml

    def _decrypt(self, query: Mapping[str, str], fields: Mapping[str, str]) -> dict[str, str]:
        if self.crypto is None:
            log.warning("wechat: encrypted message but FANZHA_WECHAT_AES_KEY is not set; refused")
            raise Rejected(403)
        encrypted, msg_signature = fields.get("Encrypt", ""), query.get("msg_signature", "")
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        if not msg_signature or not hmac.compare_digest(sign(self.token, timestamp, nonce, encrypted), msg_signature):
            raise Rejected(403)
        if not encrypted:
            raise Rejected(400)
        try:
            inner = self.crypto.decrypt_message({"Encrypt": encrypted}, msg_signature, timestamp, nonce)
        except (InvalidSignatureException, InvalidAppIdException):
            raise Rejected(403) from None
        except Exception:  # signed but undecryptable: wrong key, or garbage
            raise Rejected(400) from None
        return parse_xml(inner)

    # Once per MsgId, within the deadline --------------------------------------------------
    async def _reply_once(self, inbound: Inbound) -> str | None:
        """The reply text (None: no reply). A retry shares the first attempt's answer."""
        self._forget_old_replies()
        entry = self._replies.get(inbound.dedup_key)
        if entry is None:
            future = asyncio.ensure_future(asyncio.to_thread(self._first_answer, inbound))
            self._replies[inbound.dedup_key] = (self.monotonic() + RETRY_WINDOW_SECONDS, future)
        else:
            future = entry[1]
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.deadline)
        except TimeoutError:
            log.warning("wechat: %s reply not ready within %.1fs; sent the holding text", inbound.kind, self.deadline)
            return self.wording.say("wechat_holding")

    def _forget_old_replies(self) -> None:
        now = self.monotonic()
        while self._replies:
            key, (expires, future) = next(iter(self._replies.items()))
            if expires > now or not future.done():
                break
            del self._replies[key]

    def _first_answer(self, inbound: Inbound) -> str | None:
        """Runs in a worker thread. None when the push was seen before (retry after a
        restart) or needs no reply."""
        started = time.perf_counter()
        try:
            if not self.store.first_sight_of_message(inbound.dedup_key):
                log.info("wechat: %s already answered before; no second reply", inbound.kind)
                return None
            with self._core_lock:
                content, action = self._respond(inbound)
        except Exception as exc:
            tb = exc.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
            log.error("wechat: answering a %s failed with %s at %s", inbound.kind, type(exc).__name__, where)
            return self.wording.say("error")
        log.info("wechat: %s -> %s in %.0f ms", inbound.kind, action, (time.perf_counter() - started) * 1000)
        return content

    def _respond(self, inbound: Inbound) -> tuple[str | None, str]:
        """(reply text, what happened) for one new push."""
        follower, fields = inbound.follower, inbound.fields
        if inbound.kind == "subscribe":
            return self.wording.say("wechat_welcome"), "welcome"
        if inbound.kind == "unsubscribe":
            self.store.forget_chat(PLATFORM, follower)
            self.consultation.sessions.forget(f"{PLATFORM}:{follower}")
            return None, "forgotten"
        if inbound.kind == "other_event":
            return None, "ignored"
        if inbound.kind == "unsupported":
            return self.wording.say("no_text_content"), "unsupported"
        if inbound.kind == "voice":
            recognition = fields.get("Recognition", "").strip()
            if not recognition:
                return self.wording.say("voice_unrecognized"), "voice_unrecognized"
            message = text_message(recognition, follower)
        elif inbound.kind == "image":
            message = image_message(fields, follower)
        elif inbound.kind == "link":
            message = text_message(link_text(fields), follower)
        else:
            message = text_message(fields.get("Content", ""), follower)
        outcome = self.consultation.respond(message, self.monotonic())
        if outcome.silent:
            return None, outcome.action
        text = fit_passive(join_replies(outcome.replies), self.wording.say("wechat_more"))
        return text or None, outcome.action
