"""A stand-in for WeCom's group-robot webhook (``POST .../webhook/send?key=KEY``) on 127.0.0.1.

Point fanzha at it with FANZHA_WECOM_WEBHOOK_BASE = ``fake.base``. It answers
``{"errcode": 0}`` for any key except those in ``errcodes`` (93000 = invalid key, as WeCom
says for a robot that was removed) and records every post.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class FakeWeCom:
    def __init__(self, errcodes: dict[str, int] | None = None) -> None:
        self.errcodes = dict(errcodes or {})
        self.received: list[tuple[str, dict[str, Any]]] = []  # (key, body)
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                key = parse_qs(urlparse(self.path).query).get("key", [""])[0]
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake._lock:
                    fake.received.append((key, body))
                answer = json.dumps({"errcode": fake.errcodes.get(key, 0), "errmsg": "stand-in"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-wecom", daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/cgi-bin/webhook/send"

    def posts(self, key: str | None = None) -> list[str]:
        """The texts posted (to *key*, or to any robot)."""
        with self._lock:
            return [body["text"]["content"] for k, body in self.received if key is None or k == key]

    def wait_posts(self, count: int, key: str | None = None, timeout: float = 15.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            posts = self.posts(key)
            if len(posts) >= count:
                return posts
            time.sleep(0.02)
        raise AssertionError(f"expected {count} WeCom post(s), got {self.posts(key)}")

    def __enter__(self) -> FakeWeCom:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
