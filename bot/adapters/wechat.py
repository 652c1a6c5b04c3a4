"""WeChat Official Account (公众号): signed XML in, one passive XML reply out.

WeChat POSTs every follower message to our URL as XML, signed with the shared token and, in
safe mode, AES-encrypted. The answer is a passive reply in the HTTP response: one message, at
most 2,048 bytes, within 5 seconds, or WeChat hangs up and asks again (same MsgId), three
requests in all. So the work runs in a thread, each MsgId is answered and counted once, and a
retry gets the first attempt's reply from memory. An answer not ready by the deadline is left
for the retry (WeChat only retries a request that got no answer); the last attempt gets a
short holding text, and the real answer waits for the follower to send the same message again.

Pictures are fetched from ``PicUrl`` and read by :mod:`bot.ocr` outside the core's lock, so
one slow picture never holds up other followers.

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
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_untrusted_xml
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import WeChatSigner

from bot.config import WECHAT_PICTURE_HOSTS, ConfigError, host_list
from bot.consultation import Consultation
from bot.messages import IncomingMessage, Outcome, Reply
from bot.ocr import MAX_FILE_BYTES, ImageRefused, ImageText, OcrUnavailable, PictureLimiter, answer_picture
from bot.ocr import read_image_bytes as ocr_read_image_bytes
from bot.render import WECHAT_LIMIT_BYTES, render_plain, render_wechat, split_parts
from bot.storage import Store
from classifier.entities import host_within

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
#: WeChat asks at most this many times for one message (the first request and two retries).
WECHAT_ATTEMPTS = 3
#: A request that missed the deadline stays open this long: WeChat hangs up and its retry gets the answer.
LINGER_SECONDS = 15.0
#: An answer that only got the holding text is given to the follower who sends the same message within this.
OWED_SECONDS = 600.0
#: A picture must arrive from WeChat's PicUrl within this time (OCR still has to run after it).
PICTURE_DOWNLOAD_SECONDS = 2.5
#: Pictures are answered on their own threads, so a queue of them never delays a text message.
PICTURE_THREADS = 2
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


def download_picture(url: str, *, timeout: float = PICTURE_DOWNLOAD_SECONDS) -> bytes:
    """The picture at WeChat's ``PicUrl`` (from a signed push), at most MAX_FILE_BYTES."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise ImageRefused("the message has no picture address", "not_an_image")
    data = bytearray()
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=False) as response:
            if response.status_code != 200:
                raise ImageRefused(f"the picture server answered {response.status_code}", "download_failed")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_FILE_BYTES:
                raise ImageRefused(f"the picture has {declared} bytes", "too_large")
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_FILE_BYTES:
                    raise ImageRefused("the picture is too large", "too_large")
    except httpx.HTTPError as exc:
        raise ImageRefused(f"the picture could not be downloaded ({type(exc).__name__})", "download_failed") from None
    return bytes(data)


def from_picture_host(url: str, hosts: Sequence[str]) -> bool:
    """Whether *url* is on one of *hosts* or a subdomain of one: the server fetches PicUrl
    itself, so a signed push must not be able to point it at an internal address."""
    return host_within((urlsplit(url).hostname or "").lower().rstrip("."), hosts)


def asked(inbound: Inbound) -> str:
    """What the follower asked, hashed: a message sent again after the holding text matches it."""
    fields = inbound.fields
    value = {"text": "Content", "voice": "Recognition", "image": "PicUrl", "link": "Url"}.get(inbound.kind)
    content = fields.get(value, "").strip() if value else ""
    if not content:
        return ""
    return hashlib.sha256(f"{inbound.follower}:{inbound.kind}:{content}".encode()).hexdigest()[:32]


@dataclass
class _Pending:
    """One MsgId's answer being made (or made), and how many times WeChat has asked for it."""

    expires: float
    future: asyncio.Future[str | None]
    attempts: int = 0


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
        linger: float = LINGER_SECONDS,
        pictures_per_minute: int = 4,
        read_picture: Callable[[bytes], ImageText] = ocr_read_image_bytes,
        fetch_picture: Callable[[str], bytes] = download_picture,
        picture_hosts: Sequence[str] = host_list(WECHAT_PICTURE_HOSTS),
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
        self.linger = linger
        self.pictures = PictureLimiter(pictures_per_minute)
        self.read_picture = read_picture
        self.fetch_picture = fetch_picture
        self.picture_hosts = tuple(picture_hosts)
        self._picture_pool = ThreadPoolExecutor(PICTURE_THREADS, thread_name_prefix="fanzha-wechat-picture")
        # Sessions in the core are plain dicts: one consultation at a time.
        self._core_lock = threading.Lock()
        self._replies: OrderedDict[str, _Pending] = OrderedDict()
        #: asked(inbound) -> (expires, answer) for answers that only got the holding text.
        self._owed: dict[str, tuple[float, asyncio.Future[str | None]]] = {}

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
            pictures_per_minute=settings.pictures_per_minute,
            picture_hosts=settings.picture_hosts,
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
        """The reply text (None: no reply). A retry shares the first attempt's answer.

        Not ready by the deadline: the first attempts stay open (WeChat hangs up and asks
        again, and the retry finds the answer ready); the last one gets the holding text,
        and the answer is kept for the follower who sends the same message again.
        """
        self._forget_old_replies()
        entry = self._replies.get(inbound.dedup_key)
        if entry is None:
            entry = _Pending(self.monotonic() + RETRY_WINDOW_SECONDS, self._start_answer(inbound))
            self._replies[inbound.dedup_key] = entry
        entry.attempts += 1
        try:
            return await asyncio.wait_for(asyncio.shield(entry.future), self.deadline)
        except TimeoutError:
            pass
        if entry.attempts < WECHAT_ATTEMPTS:
            log.info("wechat: %s reply not ready within %.1fs; left for WeChat's retry", inbound.kind, self.deadline)
            try:
                return await asyncio.wait_for(asyncio.shield(entry.future), self.linger)
            except TimeoutError:
                return None
        log.warning("wechat: %s reply not ready by the last retry; sent the holding text", inbound.kind)
        key = asked(inbound)
        if key:
            self._owed[key] = (self.monotonic() + OWED_SECONDS, entry.future)
        return self.wording.say("wechat_holding")

    def _start_answer(self, inbound: Inbound) -> asyncio.Future[str | None]:
        """The answer to a new MsgId: one owed from a holding text, or a fresh consultation."""
        key = asked(inbound)
        owed = self._owed.pop(key, None) if key else None
        if owed is not None and owed[0] > self.monotonic() and owed[1].done() and owed[1].result():
            log.info("wechat: %s sent again after the holding text; gave the answer kept for it", inbound.kind)
            return asyncio.ensure_future(asyncio.to_thread(self._owed_answer, inbound, owed[1].result()))
        pool = self._picture_pool if inbound.kind == "image" else None  # None: the loop's default threads
        return asyncio.get_running_loop().run_in_executor(pool, self._first_answer, inbound)

    def _owed_answer(self, inbound: Inbound, content: str | None) -> str | None:
        """Runs in a worker thread: the kept answer, marking this MsgId seen so its retries get nothing new."""
        return content if self.store.first_sight_of_message(inbound.dedup_key) else None

    def _forget_old_replies(self) -> None:
        now = self.monotonic()
        while self._replies:
            key, entry = next(iter(self._replies.items()))
            if entry.expires > now or not entry.future.done():
                break
            del self._replies[key]
        for key in [k for k, (expires, _) in self._owed.items() if expires <= now]:
            del self._owed[key]

    def _first_answer(self, inbound: Inbound) -> str | None:
        """Runs in a worker thread. None when the push was seen before (retry after a
        restart) or needs no reply."""
        started = time.perf_counter()
        try:
            if not self.store.first_sight_of_message(inbound.dedup_key):
                log.info("wechat: %s already answered before; no second reply", inbound.kind)
                return None
            # Download and OCR outside the lock: other followers are answered meanwhile.
            reading = self._read_picture(inbound) if inbound.kind == "image" else None
            with self._core_lock:
                content, action = self._respond(inbound, reading)
        except Exception as exc:
            tb = exc.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
            log.error("wechat: answering a %s failed with %s at %s", inbound.kind, type(exc).__name__, where)
            return self.wording.say("error")
        # DEBUG, not INFO: a line per message cost a tenth of the server's CPU under load.
        log.debug("wechat: %s -> %s in %.0f ms", inbound.kind, action, (time.perf_counter() - started) * 1000)
        return content

    def _read_picture(self, inbound: Inbound) -> ImageText | OcrUnavailable | None:
        """The text of the follower's picture; None when they sent too many pictures this minute."""
        with self._core_lock:  # picture threads share the limiter
            allowed = self.pictures.allow(f"{PLATFORM}:{inbound.follower}", self.monotonic())
        if not allowed:
            return None
        url = inbound.fields.get("PicUrl", "")
        try:
            if url and not from_picture_host(url, self.picture_hosts):
                raise ImageRefused("the picture is not on a WeChat picture host", "untrusted_host")
            return self.read_picture(self.fetch_picture(url))
        except OcrUnavailable as exc:  # also ImageRefused: the core's kind reply
            log.info("wechat: picture not read (%s)", getattr(exc, "code", "ocr_unavailable"))
            return exc

    def _respond(self, inbound: Inbound, reading: ImageText | OcrUnavailable | None = None) -> tuple[str | None, str]:
        """(reply text, what happened) for one new push (*reading*: its picture's text, if any)."""
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
            if reading is None:
                return self.wording.say("rate_limited"), "picture_rate_limited"
            outcome = answer_picture(self.consultation, text_message("", follower), reading, self.monotonic())
            return self._passive(outcome)
        elif inbound.kind == "link":
            message = text_message(link_text(fields), follower)
        else:
            message = text_message(fields.get("Content", ""), follower)
        return self._passive(self.consultation.respond(message, self.monotonic()))

    def _passive(self, outcome: Outcome) -> tuple[str | None, str]:
        if outcome.silent:
            return None, outcome.action
        text = fit_passive(join_replies(outcome.replies), self.wording.say("wechat_more"))
        return text or None, outcome.action
