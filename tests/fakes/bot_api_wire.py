"""The Bot API's wire format for the stand-in: form decoding, errors, ChatMember dicts,
Telegram's HTML parse mode, and the HTTP handler. Pure helpers; the state is in bot_api."""

from __future__ import annotations

import json
import re
import struct
import zlib
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

#: Form fields that are always text (everything else PTB sends is JSON-encoded).
_TEXT_FIELDS = {
    "text", "caption", "parse_mode", "callback_query_id", "url", "secret_token", "action",
    "inline_message_id", "language_code", "title", "description",
}


def utf16_len(text: str) -> int:
    """Telegram counts entity offsets in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


_ADMIN_RIGHTS = (
    "can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members",
    "can_promote_members", "can_change_info", "can_invite_users", "can_post_stories", "can_edit_stories",
    "can_delete_stories",
)
_MEMBER_RIGHTS = (
    "can_send_messages", "can_send_audios", "can_send_documents", "can_send_photos", "can_send_videos",
    "can_send_video_notes", "can_send_voice_notes", "can_send_polls", "can_send_other_messages",
    "can_add_web_page_previews", "can_change_info", "can_invite_users", "can_pin_messages", "can_manage_topics",
)


def chat_member(status: str, user: dict) -> dict:
    """A ChatMember dict with the fields Telegram sends for *status*."""
    member: dict[str, Any] = {"status": status, "user": user}
    if status == "administrator":
        member.update({"can_be_edited": False, "is_anonymous": False, **dict.fromkeys(_ADMIN_RIGHTS, True)})
    elif status == "creator":
        member["is_anonymous"] = False
    elif status == "restricted":
        member.update({"is_member": True, "until_date": 0, **dict.fromkeys(_MEMBER_RIGHTS, False)})
    elif status == "kicked":
        member["until_date"] = 0
    return member


class ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status, self.description = status, description


_HTML_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "tg-spoiler", "span",
    "blockquote", "tg-emoji",
}


class _TelegramHTML(HTMLParser):
    """Telegram's HTML parse mode: the supported tags, properly nested; text comes out plain."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag not in _HTML_TAGS:
            raise ApiError(400, f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}"')
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            raise ApiError(400, f'Bad Request: can\'t parse entities: Unmatched end tag "{tag}"')

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(markup: str) -> str:
    """The text a person sees for *markup* sent with parse_mode HTML (400 if Telegram would refuse it)."""
    if re.search(r"<(?![a-zA-Z/])", markup) or re.search(r"&(?![a-zA-Z]+;|#\d+;|#x[0-9a-fA-F]+;)", markup):
        raise ApiError(400, "Bad Request: can't parse entities: unescaped < or &")
    parser = _TelegramHTML()
    parser.feed(markup)
    parser.close()
    if parser.open:
        raise ApiError(400, f'Bad Request: can\'t parse entities: unclosed tag "{parser.open[-1]}"')
    return "".join(parser.parts)


def blank_png(width: int = 64, height: int = 64) -> bytes:
    """A white RGB PNG (no Pillow needed): a photo with nothing written on it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + b"\xff" * (3 * width) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def update_id_of(item: Any) -> int | None:
    return int_or_none(item.get("update_id")) if isinstance(item, dict) else None


def api_error(status: int, description: str, parameters: dict | None = None) -> tuple[int, dict]:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return status, body


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, value in pairs:
        if key in _TEXT_FIELDS:
            params[key] = value
            continue
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


class ApiHandler(BaseHTTPRequestHandler):
    """HTTP for a fake whose ``handle(method, params) -> (status, body)`` answers the calls."""

    fake: Any
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve({})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        kind = self.headers.get("Content-Type", "")
        if "json" in kind:
            params = json.loads(raw or b"{}")
        elif "multipart" in kind:
            params = {}  # files are not needed by the bot; accept and ignore
        else:
            params = decode_form(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        self._serve(params)

    def _serve(self, params: dict[str, Any]) -> None:
        path = unquote(urlsplit(self.path).path)  # httpx sends the token's ":" as %3A
        file_prefix = f"/file/bot{self.fake.token}/"
        if path.startswith(file_prefix):
            self._serve_file(path[len(file_prefix) :])
            return
        prefix = f"/bot{self.fake.token}/"
        if not path.startswith(prefix):
            status, body = api_error(401, "Unauthorized")
        else:
            query = dict(parse_qsl(urlsplit(self.path).query))
            status, body = self.fake.handle(path[len(prefix) :], {**decode_form(list(query.items())), **params})
        data = json.dumps(body, ensure_ascii=False).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the bot gave up on a long poll while shutting down

    def _serve_file(self, file_path: str) -> None:
        data = self.fake.file_bytes(file_path)
        status = 200 if data is not None else 404
        data = data if data is not None else b"Not Found"
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
