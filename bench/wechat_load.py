"""``fanzha serve``'s WeChat endpoint under a loopback load, bounded in count and time.

The real server runs in its own process (plain mode: signed, not encrypted), and an
open-loop generator posts signed text messages at a fixed rate, each with its own MsgId,
from a few hundred followers, the way WeChat's servers push them. WeChat waits 5 seconds
for a passive reply; the endpoint answers a holding text itself after 4 s, so "answered"
below means a real reply within 5 s, and holding texts are counted apart.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from bench.common import (
    child_env,
    combine,
    latency_summary,
    make_home,
    peak_command,
    proc_peak_mb,
    read_peak_mb,
    wait_with_usage,
)

TOKEN = "fanzha-bench-token"
ACCOUNT = "gh_fanzha_bench"
LOAD_SETTINGS = {"checks_per_minute": "100000"}
WECHAT_LIMIT_S = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def push_xml(follower: str, msg_id: int, text: str) -> bytes:
    def cdata(value: str) -> str:
        return f"<![CDATA[{value}]]>"

    return (
        f"<xml><ToUserName>{cdata(ACCOUNT)}</ToUserName><FromUserName>{cdata(follower)}</FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType>{cdata('text')}</MsgType>"
        f"<Content>{cdata(text)}</Content><MsgId>{msg_id}</MsgId></xml>"
    ).encode()


def signed_query(follower: str) -> dict[str, str]:
    from bot.adapters.wechat import sign

    timestamp, nonce = str(int(time.time())), os.urandom(6).hex()
    return {"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce, "openid": follower}


class ServeProcess:
    """``python -m bot serve`` with the WeChat endpoint on a free loopback port."""

    def __init__(self, home: Path) -> None:
        self.port = free_port()
        self.home = home
        self.peak_file = home / "peak"
        self.log = (home / "serve.log").open("wb")
        env = child_env(home, wechat_token=TOKEN, **LOAD_SETTINGS)
        self.process = subprocess.Popen(
            peak_command(self.peak_file, ["-m", "bot", "serve", "--host", "127.0.0.1", "--port", str(self.port)]),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"fanzha serve exited: {(self.home / 'serve.log').read_text()[-1500:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("fanzha serve did not become ready")

    def stop(self) -> dict:
        peak_mb = proc_peak_mb(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        try:
            _, usage = wait_with_usage(self.process, 60)
        finally:
            self.log.close()
        return {"peak_mb": max(peak_mb, read_peak_mb(self.peak_file) or 0), "cpu_s": usage.ru_utime + usage.ru_stime}


class Connections:
    """Keep-alive HTTP/1.1 connections to the server, one request at a time on each.

    A hand-written client, not httpx: on this machine httpx's async client spends about
    8 ms of CPU per request, so it could not offer 200 requests a second on the core the
    server does not use. Writing a request and reading a Content-Length body is all WeChat's
    side needs.
    """

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port = host, port
        self.idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = asyncio.Queue()
        for _ in range(size):
            self.idle.put_nowait(None)  # opened on first use

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        conn = await self.idle.get()
        try:
            if conn is None:
                conn = await asyncio.open_connection(self.host, self.port)
            reader, writer = conn
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            writer.write(head.encode() + body)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            content = await reader.readexactly(length) if length else b""
            status = int(status_line.split()[1]) if status_line else 0
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            if conn is not None:
                conn[1].close()
            self.idle.put_nowait(None)
            raise
        self.idle.put_nowait(conn)
        return status, content

    async def close(self) -> None:
        while not self.idle.empty():
            conn = self.idle.get_nowait()
            if conn is not None:
                conn[1].close()


async def offered_load(
    port: int, texts: list[str], *, rate: float, count: int, followers: int, holding: str = "\0"
) -> list[dict]:
    """Post *count* messages at *rate* a second (open loop); one record per request.

    Latency is counted from the moment a request was due, so waiting for a free connection
    counts too.
    """
    from urllib.parse import urlencode

    from bot.adapters.wechat import NO_REPLY

    connections = Connections("127.0.0.1", port, size=256)
    results: list[dict] = []

    async def one(n: int, due: float) -> None:
        follower = f"o-bench-{n % followers:04d}"
        body = push_xml(follower, 10_000_000 + n, texts[n % len(texts)])
        try:
            status, content = await connections.post(f"/wechat?{urlencode(signed_query(follower))}", body)
            text = content.decode("utf-8", "replace")
            ok = status == 200 and text != NO_REPLY and "<Content>" in text
            late = ok and holding in text
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            ok = late = False
        results.append({"seconds": time.monotonic() - due, "ok": ok, "holding": late})

    started = time.monotonic()
    tasks = []
    for n in range(count):
        due = started + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, due)))
    await asyncio.gather(*tasks)
    await connections.close()
    return results


def holding_text() -> str:
    """The endpoint's own "still working" text: a reply that came too late to be real."""
    from bot.compose import Wording
    from classifier.knowledge import load_knowledge

    return Wording(load_knowledge()).say("wechat_holding")


def load_run(model_dir: Path, texts: list[str], *, rate: float, count: int, followers: int) -> dict:
    home = make_home("wechat", model_dir)
    server = ServeProcess(home)
    try:
        for text in texts[:5]:  # warm the server's first requests outside the measurement
            asyncio.run(offered_load(server.port, [text], rate=100, count=1, followers=1))
        started = time.monotonic()
        results = asyncio.run(
            offered_load(server.port, texts, rate=rate, count=count, followers=followers, holding=holding_text())
        )
        seconds = time.monotonic() - started
    finally:
        resources = server.stop()
    seconds_each = [r["seconds"] for r in results]
    answered = [r for r in results if r["ok"] and not r["holding"] and r["seconds"] <= WECHAT_LIMIT_S]
    return {
        "requests": count,
        "offered_per_s": rate,
        "achieved_per_s": count / seconds,
        "answered_within_5s_share": len(answered) / count,
        "holding_replies": sum(1 for r in results if r["holding"]),
        "failed": sum(1 for r in results if not r["ok"]),
        "latency_ms": latency_summary(seconds_each),
        "server_peak_mb": resources["peak_mb"],
        "server_cpu_ms_per_request": resources["cpu_s"] * 1000 / (count + 5),
    }


def run(model_dir: Path, texts: list[str], *, repeats: int, rate: float, count: int, followers: int, note=print):
    note(f"  wechat: {repeats}x {count:,} signed messages at {rate:.0f}/s from {followers} followers (fanzha serve)")
    runs = [load_run(model_dir, texts, rate=rate, count=count, followers=followers) for _ in range(repeats)]
    return {"settings": {f"FANZHA_{k.upper()}": v for k, v in LOAD_SETTINGS.items()}, **combine(runs)}
