"""Local stand-ins for the outside services the bot talks to (served on 127.0.0.1 only)."""

from .bot_api import BOT_ID, BOT_USERNAME, TOKEN, ApiCall, FakeBotAPI

__all__ = ["BOT_ID", "BOT_USERNAME", "TOKEN", "ApiCall", "FakeBotAPI"]
