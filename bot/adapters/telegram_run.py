"""Running the Telegram application: long polling or a webhook, start-up, clean shutdown, logs.

Start-up retries until Telegram is reachable; SIGTERM/SIGINT stop polling, let every update
already fetched be answered, answer forwarded batches still waiting, then close. Logs never
hold message text or the token: httpx (which logs every request URL, and Bot API URLs
contain the token) is raised to WARNING, and every log line passes a redacting formatter.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import signal

from telegram import Update
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import Application

from bot.adapters.telegram_commands import register_commands
from bot.adapters.telegram_handlers import flush_all_batches, state_of
from bot.adapters.telegram_io import parse_update
from bot.config import Settings

log = logging.getLogger("fanzha.telegram")

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.MY_CHAT_MEMBER]
POLL_TIMEOUT = 10
#: Pause after each getUpdates that returned. A quiet bot still answers at once (the long
#: poll returns as soon as a message arrives); a busy one fetches about ten updates a call
#: instead of one or two. Back to back at 200 updates a second: 4.2 -> 3.7 ms of CPU per
#: update, p99 748 -> 192 ms (BENCHMARKS.md).
POLL_INTERVAL = 0.05
WEBHOOK_PATH = "/telegram"
MAX_WEBHOOK_BODY = 1_000_000
_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def _on_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)


async def _initialize(application: Application, stop: asyncio.Event) -> bool:
    """application.initialize() (getMe), retried with back-off while Telegram is unreachable.
    False when asked to stop first. A refused token is raised: retrying cannot fix it."""
    delay = 1.0
    while not stop.is_set():
        try:
            await application.initialize()
            return True
        except InvalidToken:
            raise
        except NetworkError as exc:
            log.warning("cannot reach Telegram (%s); retrying in %.0fs", type(exc).__name__, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 60.0)
    return False


def _polling_error(exc: TelegramError) -> None:
    log.warning("polling failed (%s: %s); retrying", type(exc).__name__, exc.message)


def health_line(application: Application, settings: Settings, mode: str) -> str:
    state = state_of(application)
    return (
        f"fanzha telegram ready: @{application.bot.username}, model {state.consultation.classifier.model_version}, "
        f"database {settings.db}, {mode}"
    )


async def run_bot(
    application: Application, settings: Settings, *, webhook_url: str = "", stop: asyncio.Event | None = None
) -> None:
    """Run until SIGTERM/SIGINT (or *stop* is set): long polling, or a webhook server when
    *webhook_url* is given."""
    if stop is None:
        stop = asyncio.Event()
        _on_stop_signals(stop)
    if not await _initialize(application, stop):
        return
    try:
        if webhook_url:
            secret = settings.telegram_webhook_secret or secrets.token_urlsafe(32)
            await start_webhook_application(application, webhook_url, secret)
            log.info("webhook server on %s:%s", settings.host, settings.port)
            await serve_webhook(application, settings, secret, stop)
        else:
            await register_commands(application.bot, state_of(application).wording)
            await application.start()
            await application.updater.start_polling(
                timeout=POLL_TIMEOUT,
                poll_interval=POLL_INTERVAL,
                bootstrap_retries=-1,
                allowed_updates=ALLOWED_UPDATES,
                error_callback=_polling_error,
            )
            log.info(health_line(application, settings, "long polling"))
            await stop.wait()
        log.info("stopping: answering what was already received")
    finally:
        await stop_application(application)


async def start_webhook_application(application: Application, webhook_url: str, secret: str) -> None:
    """Initialize, register the command menu, start, and point Telegram's webhook at us.

    For a server that mounts :func:`telegram_webhook_route` (``fanzha serve``): call this on
    start-up and :func:`stop_application` on shutdown.
    """
    await application.initialize()
    await register_commands(application.bot, state_of(application).wording)
    await application.start()
    await application.bot.set_webhook(webhook_url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
    state = state_of(application)
    log.info(health_line(application, state.settings, f"webhook {webhook_url}"))


async def stop_application(application: Application) -> None:
    """Stop taking updates, answer those received and the batches waiting, then close."""
    if application.updater is not None and application.updater.running:
        await application.updater.stop()
    if application.running:
        await application.stop()
    with contextlib.suppress(Exception):
        await flush_all_batches(application.bot, state_of(application))
    await application.shutdown()
    state_of(application).pictures.close()
    log.info("stopped")


# Webhook ------------------------------------------------------------------------------------
def telegram_webhook_route(application: Application, secret: str):
    """A Starlette ``Route`` at /telegram: checks Telegram's secret header, queues the update.

    Mount it in any Starlette app (``fanzha serve`` does); the application must be
    initialized and started, with the webhook set to the public URL of this route and the
    same *secret* (see :func:`run_bot`).
    """
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    if not secret:
        raise ValueError("a webhook needs a secret token (FANZHA_TELEGRAM_WEBHOOK_SECRET): anyone could post updates")

    async def telegram_webhook(request: Request) -> Response:
        given = request.headers.get(_SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            return Response(status_code=403)
        if int(request.headers.get("content-length") or 0) > MAX_WEBHOOK_BODY:
            return Response(status_code=413)
        try:
            data = await request.json()
        except ValueError:
            return Response(status_code=400)
        update = parse_update(data, application.bot)
        if update is not None:
            await application.update_queue.put(update)
        return Response(status_code=200)

    return Route(WEBHOOK_PATH, telegram_webhook, methods=["POST"])


async def serve_webhook(application: Application, settings: Settings, secret: str, stop: asyncio.Event) -> None:
    """A minimal server (the webhook route and /healthz) on FANZHA_HOST:FANZHA_PORT until *stop*."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def healthz(request) -> JSONResponse:
        return JSONResponse({"ok": True, "bot": application.bot.username})

    class Server(uvicorn.Server):
        """uvicorn without its own signal handling: run_bot owns SIGTERM and shuts PTB down cleanly."""

        @contextlib.contextmanager
        def capture_signals(self):
            yield

    app = Starlette(routes=[telegram_webhook_route(application, secret), Route("/healthz", healthz)])
    server = Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning", lifespan="off"))
    serving = asyncio.create_task(server.serve())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    stopping.cancel()
    await serving
