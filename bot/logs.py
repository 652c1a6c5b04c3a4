"""Process logging for every long-running command: INFO for fanzha, secrets never printed.

Message text is never passed to a logger anywhere in fanzha; this module guards the other
leak: library loggers (httpx logs every request URL at INFO, and Bot API URLs hold the
token) and tracebacks that quote a secret.
"""

from __future__ import annotations

import logging

from bot.config import Settings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactingFormatter(logging.Formatter):
    """Replaces secrets anywhere in a formatted log line, tracebacks included."""

    def __init__(self, fmt: str, secrets_: list[str]) -> None:
        super().__init__(fmt)
        self.secrets = [s for s in secrets_ if s]

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, "<redacted>")
        return text


def secrets_of(settings: Settings) -> list[str]:
    """Every secret a log line could carry: tokens, keys and WeCom robot keys."""
    values = [
        settings.telegram_token,
        settings.telegram_webhook_secret,
        settings.wechat_token,
        settings.wechat_aes_key,
        settings.hash_key,
        *settings.wecom_groups.values(),
    ]
    return [v for v in values if len(v) >= 6]  # a tiny "secret" would redact ordinary words


def configure_logging(settings: Settings) -> None:
    """INFO for the bot, WARNING for chatty libraries, secrets redacted everywhere."""
    logging.basicConfig(level=logging.INFO)
    formatter = RedactingFormatter(FORMAT, secrets_of(settings))
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
    quiet_noisy_loggers()


def quiet_noisy_loggers() -> None:
    """httpx logs every request URL at INFO, and Bot API URLs hold the token; the scheduler
    logs every minute's tick."""
    for name in ("httpx", "httpcore", "apscheduler", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
