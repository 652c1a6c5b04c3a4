"""A Telegram Bot API stand-in on 127.0.0.1, for end-to-end tests of the real PTB stack.

The bot under test is pointed at it with ``base_url`` (``FANZHA_TELEGRAM_BASE_URL``); the
test delivers updates through ``getUpdates`` (long polling), then reads what the bot sent.
It speaks the parts of the Bot API the bot uses (getMe, getUpdates, sendMessage,
sendChatAction, editMessageText, editMessageReplyMarkup, answerCallbackQuery, getChatMember,
getChat, getFile (and the file download URL), setMyCommands, deleteWebhook, setWebhook, leaveChat,
...), records every call, and
answers failures on demand: 429 with ``retry_after``, 403 for a chat that blocked the bot,
400 ``migrate_to_chat_id`` for a group that became a supergroup, and Telegram's flood limits.

A plain ``ThreadingHTTPServer``: no dependency, one thread per request, so a long poll can
wait on a condition while the bot sends. Everything is guarded by one lock.

Example::

    with FakeBotAPI() as api:
        ... start the bot with base_url=api.base_url, token=api.token ...
        api.send(1001, "您好")
        [reply] = api.wait_messages(1001)
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from .bot_api_wire import (
    ApiError,
    ApiHandler,
    api_error,
    blank_png,
    chat_member,
    html_to_text,
    int_or_none,
    update_id_of,
    utf16_len,
)

TOKEN = "123456:FAKE-test-token"
BOT_ID = 123456
BOT_USERNAME = "fanzha_test_bot"
@dataclass
class ApiCall:
    """One request the bot made: method name, decoded parameters, when, and our answer."""

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200


@dataclass
class _Failure:
    method: str
    status: int
    description: str
    times: int
    chat_id: int | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Bucket:
    """Token bucket used to imitate Telegram's flood limits."""

    capacity: float
    per_second: float
    tokens: float
    at: float

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.per_second)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class FakeBotAPI:
    """The stand-in server. Use as a context manager, or call start() and stop()."""

    def __init__(
        self,
        token: str = TOKEN,
        *,
        bot_id: int = BOT_ID,
        username: str = BOT_USERNAME,
        can_read_all_group_messages: bool = False,
    ) -> None:
        self.token = token
        self.bot_user = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "反诈小助手",
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": can_read_all_group_messages,
            "supports_inline_queries": False,
        }
        self.calls: list[ApiCall] = []
        self.webhook_url = ""
        self.commands: dict[str, list[dict]] = {}
        self._cond = threading.Condition()
        self._updates: deque[Any] = deque()
        self._next_update_id = 1
        self._next_message_id = 1000
        self._messages: dict[tuple[int, int], dict] = {}  # (chat_id, message_id) -> message
        self._chats: dict[int, dict] = {}
        self._statuses: dict[tuple[int, int], str] = {}
        self._blocked: set[int] = set()
        self._migrated: dict[int, int] = {}
        self._failures: list[_Failure] = []
        self._overall: _Bucket | None = None
        self._group_limit: tuple[float, float] | None = None
        self._group_buckets: dict[int, _Bucket] = {}
        self._files: dict[str, bytes] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle --------------------------------------------------------------------------------
    def start(self) -> FakeBotAPI:
        api = self

        class Handler(ApiHandler):
            fake = api

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-bot-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            with self._cond:
                self._cond.notify_all()
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeBotAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """What PTB's ``base_url`` should be (PTB appends the token)."""
        return f"{self.url}/bot"

    # Building updates ---------------------------------------------------------------------------
    @staticmethod
    def user(user_id: int, first_name: str = "居民", **extra: Any) -> dict:
        return {"id": user_id, "is_bot": False, "first_name": first_name, **extra}

    def chat(self, chat_id: int, *, kind: str | None = None, title: str | None = None) -> dict:
        """The chat dict for *chat_id*: private for positive ids, supergroup for negative ones."""
        with self._cond:
            if chat_id not in self._chats:
                if kind is None:
                    kind = "private" if chat_id > 0 else "supergroup"
                chat: dict[str, Any] = {"id": chat_id, "type": kind}
                if kind == "private":
                    chat["first_name"] = "居民"
                else:
                    chat["title"] = title or f"小区群 {chat_id}"
                self._chats[chat_id] = chat
            elif kind is not None:
                self._chats[chat_id]["type"] = kind
            return dict(self._chats[chat_id])

    def push(self, update: dict) -> int:
        """Queue an update for getUpdates; returns its update_id."""
        with self._cond:
            update = dict(update)
            update.setdefault("update_id", self._next_update_id)
            self._next_update_id = max(self._next_update_id, int(update["update_id"])) + 1
            self._updates.append(update)
            self._cond.notify_all()
            return int(update["update_id"])

    def push_raw(self, update: Any) -> None:
        """Queue anything at all (malformed updates): it is served exactly as given."""
        with self._cond:
            given = update_id_of(update)
            if given is not None:
                self._next_update_id = max(self._next_update_id, given + 1)
            self._updates.append(update)
            self._cond.notify_all()

    def message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        user_id: int | None = None,
        caption: str | None = None,
        photo: bool | bytes = False,
        document: bytes | None = None,
        mime_type: str = "image/png",
        forward_from: str | None = None,
        reply_to: dict | None = None,
        entities: list[dict] | None = None,
        **extra: Any,
    ) -> dict:
        """A message dict as Telegram would deliver it (not queued)."""
        with self._cond:
            self._next_message_id += 1
            message_id = self._next_message_id
        if user_id is None:
            user_id = chat_id if chat_id > 0 else 5000
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self.chat(chat_id),
            "from": self.user(user_id),
        }
        if text is not None:
            message["text"] = text
        if caption is not None:
            message["caption"] = caption
        if photo is not False:
            data = photo if isinstance(photo, bytes) else blank_png()
            self.add_file(f"p{message_id}", data)
            message["photo"] = [
                {"file_id": f"p{message_id}s", "file_unique_id": f"u{message_id}s", "width": 90, "height": 160},
                {"file_id": f"p{message_id}", "file_unique_id": f"u{message_id}", "width": 720, "height": 1280,
                 "file_size": len(data)},
            ]
        if document is not None:
            self.add_file(f"d{message_id}", document)
            message["document"] = {
                "file_id": f"d{message_id}", "file_unique_id": f"v{message_id}", "file_name": "screenshot",
                "mime_type": mime_type, "file_size": len(document),
            }
        if forward_from is not None:
            message["forward_origin"] = {"type": "hidden_user", "sender_user_name": forward_from, "date": 1}
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        if entities:
            message["entities" if text is not None else "caption_entities"] = entities
        message.update(extra)
        with self._cond:
            self._messages[(chat_id, message_id)] = message
        return message

    def send(self, chat_id: int, text: str | None = None, **kw: Any) -> dict:
        """A person sends a message to the bot (or into a group): queued, and returned."""
        message = self.message(chat_id, text, **kw)
        self.push({"message": message})
        return message

    def command(self, chat_id: int, command: str, args: str = "", **kw: Any) -> dict:
        """``/command args`` with its bot_command entity."""
        text = f"{command} {args}".strip()
        entity = {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
        return self.send(chat_id, text, entities=[entity], **kw)

    def mention(self, chat_id: int, before: str = "", after: str = "", **kw: Any) -> dict:
        """A group message that @mentions the bot between *before* and *after*."""
        handle = f"@{self.bot_user['username']}"
        entity = {"type": "mention", "offset": utf16_len(before), "length": utf16_len(handle)}
        return self.send(chat_id, f"{before}{handle}{after}", entities=[entity], **kw)

    def press(self, bot_message: dict, data: str, *, user_id: int | None = None) -> str:
        """Tap the inline button with callback *data* under *bot_message*; returns the query id."""
        chat_id = bot_message["chat"]["id"]
        if user_id is None:
            user_id = chat_id if chat_id > 0 else 5000
        query_id = f"cq{self._next_update_id}"
        query = {
            "id": query_id,
            "from": self.user(user_id),
            "chat_instance": f"ci{chat_id}",
            "data": data,
            "message": self.current(bot_message),
        }
        self.push({"callback_query": query})
        return query_id

    def member_update(self, chat_id: int, old: str, new: str, *, user_id: int = 5000) -> int:
        """The bot's own membership in *chat_id* changed (added to a group, blocked, removed)."""
        bot = dict(self.bot_user)
        with self._cond:
            self._statuses[(chat_id, bot["id"])] = new
        update = {
            "chat": self.chat(chat_id),
            "from": self.user(user_id),
            "date": int(time.time()),
            "old_chat_member": chat_member(old, bot),
            "new_chat_member": chat_member(new, bot),
        }
        return self.push({"my_chat_member": update})

    def migrate(self, old_chat_id: int, new_chat_id: int, *, announce: bool = True) -> None:
        """A group became a supergroup: sends to the old id fail from now on (400 + new id)."""
        with self._cond:
            self._migrated[old_chat_id] = new_chat_id
        self.chat(new_chat_id, kind="supergroup")
        if announce:
            self.chat(old_chat_id, kind="group")
            self.send(old_chat_id, None, migrate_to_chat_id=new_chat_id)

    def add_file(self, file_id: str, data: bytes) -> None:
        """Make *data* downloadable as *file_id* (getFile, then GET /file/bot<token>/<path>)."""
        with self._cond:
            self._files[file_id] = data

    def file_bytes(self, file_path: str) -> bytes | None:
        with self._cond:
            return self._files.get(file_path.removeprefix("files/"))

    # Behaviour on demand ------------------------------------------------------------------------
    def set_member_status(self, chat_id: int, user_id: int, status: str) -> None:
        """What getChatMember answers ("creator", "administrator", "member", ...)."""
        with self._cond:
            self._statuses[(chat_id, user_id)] = status

    def block(self, chat_id: int) -> None:
        """From now on every send to *chat_id* gets 403 Forbidden (blocked or removed)."""
        with self._cond:
            self._blocked.add(chat_id)

    def fail(
        self,
        method: str,
        kind: str,
        *,
        times: int = 1,
        chat_id: int | None = None,
        retry_after: int = 1,
        description: str | None = None,
    ) -> None:
        """The next *times* calls of *method* (optionally only to *chat_id*) fail with *kind*:
        ``retry_after`` (429), ``forbidden`` (403), ``bad_request`` (400) or ``server_error`` (500)."""
        status, text, parameters = {
            "retry_after": (429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}),
            "forbidden": (403, "Forbidden: bot was blocked by the user", {}),
            "bad_request": (400, "Bad Request: something is wrong", {}),
            "server_error": (500, "Internal Server Error", {}),
        }[kind]
        with self._cond:
            self._failures.append(_Failure(method, status, description or text, times, chat_id, parameters))

    def flood_limits(self, per_second: float = 30, group_per_minute: float = 20) -> None:
        """Answer 429 like Telegram when sends exceed these rates (token buckets)."""
        now = time.monotonic()
        with self._cond:
            self._overall = _Bucket(per_second, per_second, per_second, now)
            self._group_limit = (group_per_minute, group_per_minute / 60)

    # Observations -------------------------------------------------------------------------------
    def calls_to(self, method: str) -> list[ApiCall]:
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def messages(self, chat_id: int | None = None) -> list[dict]:
        """What the bot sent successfully (as it looks now, after edits), oldest first."""
        with self._cond:
            sent = [c for c in self.calls if c.method == "sendMessage" and c.status == 200]
            out = []
            for call in sent:
                key = (int(call.params["chat_id"]), int(call.params["_message_id"]))
                if chat_id is None or key[0] == chat_id:
                    out.append(dict(self._messages[key]))
            return out

    def current(self, message: dict) -> dict:
        """The latest version of a message (after the bot edited it)."""
        with self._cond:
            return dict(self._messages.get((message["chat"]["id"], message["message_id"]), message))

    def wait_for(self, check, timeout: float = 10.0, what: str = "condition"):
        """Wait until ``check()`` returns something truthy and return it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = check()
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    recent = [(c.method, c.params.get("chat_id"), c.status) for c in self.calls[-15:]]
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last calls: {recent}")
                self._cond.wait(min(left, 0.2))

    def wait_messages(self, chat_id: int, count: int = 1, timeout: float = 10.0, after: int = 0) -> list[dict]:
        """Wait until the bot sent at least *count* messages to *chat_id* beyond the first *after*."""
        return self.wait_for(
            lambda: (m := self.messages(chat_id)[after:]) and len(m) >= count and m,
            timeout,
            f"{count} message(s) to chat {chat_id}",
        )

    def wait_call(self, method: str, check=None, timeout: float = 10.0) -> ApiCall:
        def found():
            return next((c for c in self.calls_to(method) if check is None or check(c)), None)

        return self.wait_for(found, timeout, f"a {method} call")

    def pending_updates(self) -> int:
        with self._cond:
            return len(self._updates)

    # Serving ------------------------------------------------------------------------------------
    def _failure_for(self, method: str, chat_id: int | None) -> _Failure | None:
        for failure in self._failures:
            if failure.method == method and failure.times > 0 and failure.chat_id in (None, chat_id):
                failure.times -= 1
                return failure
        return None

    def handle(self, method: str, params: dict[str, Any]) -> tuple[int, dict]:
        """Answer one API call (called on the request's thread)."""
        with self._cond:
            if method == "getUpdates":
                # Record before the long poll (which releases the lock while it waits).
                call = ApiCall(method, params, time.monotonic())
                self.calls.append(call)
                self._cond.notify_all()
                failure = self._failure_for(method, None)
                if failure is not None:
                    call.status = failure.status
                    return api_error(failure.status, failure.description, failure.parameters)
                return 200, {"ok": True, "result": self._get_updates(params)}
            chat_id = int_or_none(params.get("chat_id"))
            call = ApiCall(method, params, time.monotonic())
            self.calls.append(call)
            status, body = self._answer(method, params, chat_id)
            call.status = status
            self._cond.notify_all()
            return status, body

    def _answer(self, method: str, params: dict[str, Any], chat_id: int | None) -> tuple[int, dict]:
        failure = self._failure_for(method, chat_id)
        if failure is not None:
            return api_error(failure.status, failure.description, failure.parameters)
        sends = method.startswith("send") and method != "sendChatAction"
        if chat_id is not None and chat_id in self._migrated and method != "getChat":
            return api_error(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": self._migrated[chat_id]},
            )
        if chat_id is not None and chat_id in self._blocked:
            return api_error(403, "Forbidden: bot was blocked by the user")
        if sends and chat_id is not None:
            flood = self._flood(chat_id)
            if flood is not None:
                return flood
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return api_error(404, "Not Found: method not found")
        try:
            return 200, {"ok": True, "result": handler(params, chat_id)}
        except ApiError as exc:
            return api_error(exc.status, exc.description)

    def _flood(self, chat_id: int) -> tuple[int, dict] | None:
        now = time.monotonic()
        if self._overall is not None and not self._overall.take(now):
            return api_error(429, "Too Many Requests: retry after 1", {"retry_after": 1})
        if self._group_limit is not None and chat_id < 0:
            capacity, rate = self._group_limit
            bucket = self._group_buckets.setdefault(chat_id, _Bucket(capacity, rate, capacity, now))
            if not bucket.take(now):
                return api_error(429, "Too Many Requests: retry after 3", {"retry_after": 3})
        return None

    def _get_updates(self, params: dict[str, Any]) -> list[Any]:
        offset = int_or_none(params.get("offset")) or 0
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + min(timeout, 30)
        while True:
            # Updates below the offset are confirmed: drop them. Raw (malformed) ones without
            # an id are served once.
            self._updates = deque(u for u in self._updates if (update_id_of(u) or offset) >= offset)
            if self._updates:
                batch = list(self._updates)[:limit]
                for item in batch:
                    if update_id_of(item) is None:
                        self._updates.remove(item)
                return batch
            left = deadline - time.monotonic()
            if left <= 0 or self._server is None:
                return []
            self._cond.wait(min(left, 0.5))

    def _new_message(self, chat_id: int, params: dict[str, Any], **content: Any) -> dict:
        self._next_message_id += 1
        chat = self._chats.get(chat_id) or {
            "id": chat_id,
            "type": "private" if chat_id > 0 else "supergroup",
            **({"first_name": "居民"} if chat_id > 0 else {"title": "群"}),
        }
        self._chats.setdefault(chat_id, chat)
        message = {
            "message_id": self._next_message_id,
            "date": int(time.time()),
            "chat": dict(chat),
            "from": dict(self.bot_user),
            **content,
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        reply = params.get("reply_parameters") or {}
        reply_id = reply.get("message_id") or params.get("reply_to_message_id")
        if reply_id is not None and (chat_id, int(reply_id)) in self._messages:
            message["reply_to_message"] = {
                k: v for k, v in self._messages[(chat_id, int(reply_id))].items() if k != "reply_to_message"
            }
        self._messages[(chat_id, message["message_id"])] = message
        params["_message_id"] = message["message_id"]
        return message

    # Bot API methods (return the "result") --------------------------------------------------------
    def _api_getMe(self, params, chat_id):
        return dict(self.bot_user)

    def _api_logOut(self, params, chat_id):
        return True

    def _api_close(self, params, chat_id):
        return True

    def _api_sendMessage(self, params, chat_id):
        text = str(params.get("text", ""))
        if params.get("parse_mode") == "HTML":
            text = html_to_text(text)  # raises ApiError like Telegram for markup it cannot parse
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        return self._new_message(chat_id, params, text=text)

    def _api_sendPhoto(self, params, chat_id):
        return self._new_message(chat_id, params, caption=str(params.get("caption", "")))

    def _api_sendChatAction(self, params, chat_id):
        return True

    def _edit(self, params):
        key = (int(params["chat_id"]), int(params["message_id"]))
        message = self._messages.get(key)
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if "text" in params:
            text = str(params["text"])
            message["text"] = html_to_text(text) if params.get("parse_mode") == "HTML" else text
            message["edit_date"] = int(time.time())
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        else:
            message.pop("reply_markup", None)
        return dict(message)

    def _api_editMessageText(self, params, chat_id):
        return self._edit(params)

    def _api_editMessageReplyMarkup(self, params, chat_id):
        return self._edit(params)

    def _api_deleteMessage(self, params, chat_id):
        self._messages.pop((int(params["chat_id"]), int(params["message_id"])), None)
        return True

    def _api_answerCallbackQuery(self, params, chat_id):
        return True

    def _api_getChatMember(self, params, chat_id):
        user_id = int(params["user_id"])
        user = dict(self.bot_user) if user_id == self.bot_user["id"] else self.user(user_id)
        return chat_member(self._statuses.get((chat_id, user_id), "member"), user)

    def _api_getChat(self, params, chat_id):
        chat = dict(self.chat(chat_id))
        chat.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )
        return chat

    def _api_getFile(self, params, chat_id):
        file_id = str(params.get("file_id", ""))
        if file_id not in self._files:
            raise ApiError(400, "Bad Request: invalid file_id")
        data = self._files[file_id]
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(data),
                "file_path": f"files/{file_id}"}

    def _api_leaveChat(self, params, chat_id):
        return True

    def _api_setMyCommands(self, params, chat_id):
        scope = params.get("scope") or {"type": "default"}
        self.commands[scope.get("type", "default")] = params.get("commands") or []
        return True

    def _api_getMyCommands(self, params, chat_id):
        scope = params.get("scope") or {"type": "default"}
        return self.commands.get(scope.get("type", "default"), [])

    def _api_deleteMyCommands(self, params, chat_id):
        return True

    def _api_setWebhook(self, params, chat_id):
        self.webhook_url = str(params.get("url", ""))
        return True

    def _api_deleteWebhook(self, params, chat_id):
        self.webhook_url = ""
        return True

    def _api_getWebhookInfo(self, params, chat_id):
        return {"url": self.webhook_url, "has_custom_certificate": False, "pending_update_count": len(self._updates)}
