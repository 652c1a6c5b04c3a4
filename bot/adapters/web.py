"""One ASGI app for everything that listens on a port: ``/wechat``, ``/healthz`` and, when
Telegram runs in webhook mode, ``/telegram`` — so an operator runs one process behind one
reverse proxy (``fanzha serve``). Its lifespan also runs the daily WeCom tip tick
(:class:`bot.adapters.wecom.WeComTips`).

HTTP only: the WeChat logic lives in :mod:`bot.adapters.wechat`, the Telegram webhook route
in :mod:`bot.adapters.telegram` (imported only when that mode is configured).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.adapters.wechat import MAX_BODY_BYTES, Rejected, WeChatEndpoint
from bot.adapters.wecom import WeComTips
from bot.consultation import Consultation
from bot.logs import configure_logging
from bot.storage import Store

log = logging.getLogger(__name__)


# Handlers ---------------------------------------------------------------------------------
async def healthz(request: Request) -> JSONResponse:
    """Liveness for the reverse proxy or monitor: model loaded, database answering."""
    state = request.app.state
    try:
        await asyncio.to_thread(state.store.query, "SELECT 1")
        database = "ok"
    except Exception as exc:
        log.error("healthz: database check failed (%s)", type(exc).__name__)
        database = "error"
    body = {
        "status": "ok" if database == "ok" else "degraded",
        "model_version": state.consultation.classifier.model_version,
        "database": database,
        "wechat": state.wechat is not None,
        "telegram": state.telegram is not None,
    }
    return JSONResponse(body, status_code=200 if database == "ok" else 503)


async def wechat_verify(request: Request) -> Response:
    """WeChat's server verification: echo ``echostr`` for a correct signature."""
    try:
        echo = request.app.state.wechat.verify(request.query_params)
    except Rejected as exc:
        return Response(status_code=exc.status)
    return PlainTextResponse(echo)


async def wechat_message(request: Request) -> Response:
    """A follower's message or event: signature first, then size, then parsing."""
    endpoint: WeChatEndpoint = request.app.state.wechat
    try:
        endpoint.check(request.query_params)
        body = await read_body(request, MAX_BODY_BYTES)
        reply = await endpoint.answer(request.query_params, body)
    except Rejected as exc:
        return Response(status_code=exc.status)
    return Response(reply, media_type="application/xml")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed *limit*."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Rejected(413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Rejected(413)
    return bytes(body)


# Wiring -----------------------------------------------------------------------------------
def build_app(
    consultation: Consultation,
    store: Store,
    *,
    wechat: WeChatEndpoint | None = None,
    telegram_application=None,
    telegram_webhook_url: str = "",
    telegram_secret: str = "",
    wecom_tips: WeComTips | None = None,
    tip_interval: float = 60.0,
) -> Starlette:
    """The app with the endpoints that are configured; the others answer 404.

    With *wecom_tips*, the lifespan ticks it every *tip_interval* seconds, the first time at start.
    """
    routes = [Route("/healthz", healthz, methods=["GET"])]
    if wechat is not None:
        routes += [
            Route("/wechat", wechat_verify, methods=["GET"]),
            Route("/wechat", wechat_message, methods=["POST"]),
        ]
    if telegram_application is not None:
        from bot.adapters.telegram import telegram_webhook_route

        routes.append(telegram_webhook_route(telegram_application, telegram_secret))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ticker = asyncio.create_task(wecom_tips.run(tip_interval)) if wecom_tips is not None else None
        try:
            async with _telegram_running():
                yield
        finally:
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker

    @asynccontextmanager
    async def _telegram_running() -> AsyncIterator[None]:
        if telegram_application is None:
            yield
            return
        from bot.adapters.telegram import start_webhook_application, stop_application

        # Command menu, allowed updates and health line on start; batches answered on stop.
        await start_webhook_application(telegram_application, telegram_webhook_url, telegram_secret)
        try:
            yield
        finally:
            await stop_application(telegram_application)

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.consultation = consultation
    app.state.store = store
    app.state.wechat = wechat
    app.state.telegram = telegram_application
    app.state.wecom_tips = wecom_tips
    return app


def telegram_webhook(settings, consultation: Consultation, store: Store) -> tuple[object | None, str]:
    """(PTB application, webhook secret) when Telegram runs in webhook mode, else (None, "")."""
    if not (settings.telegram_webhook_url and settings.telegram_token):
        return None, ""
    from bot.adapters.telegram import build_application

    # Without a configured secret, one per process: the webhook is registered at start-up anyway.
    secret = settings.telegram_webhook_secret or secrets.token_urlsafe(32)
    return build_application(settings, consultation, store), secret


class _PathOnly(logging.Filter):
    """Access log lines without query strings (WeChat's carry the follower's openid)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def serve(settings, consultation: Consultation, store: Store, *, host: str, port: int) -> None:
    """Run the app under uvicorn until interrupted (SIGINT/SIGTERM stop it gracefully)."""
    import uvicorn

    configure_logging(settings)
    wechat = WeChatEndpoint.from_settings(settings, consultation, store)
    application, secret = telegram_webhook(settings, consultation, store)
    wecom_tips = WeComTips.from_settings(settings, store)
    consultation.classifier.classify("你好")  # warm up: the first real message must not pay for it
    app = build_app(
        consultation,
        store,
        wechat=wechat,
        telegram_application=application,
        telegram_webhook_url=settings.telegram_webhook_url,
        telegram_secret=secret,
        wecom_tips=wecom_tips,
    )
    config = uvicorn.Config(app, host=host, port=port, log_level="info", server_header=False)
    logging.getLogger("uvicorn.access").addFilter(_PathOnly())
    log.info(
        "serving on http://%s:%s: /healthz, /wechat %s, /telegram %s; daily WeCom tips for %d group(s)",
        host,
        port,
        "on" if wechat else "off (no FANZHA_WECHAT_TOKEN)",
        "on" if application else "off (no FANZHA_TELEGRAM_WEBHOOK_URL)",
        len(store.subscriptions("wecom")),
    )
    uvicorn.Server(config).run()
