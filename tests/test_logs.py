"""Log lines never carry a secret, whichever process writes them."""

from __future__ import annotations

import logging

from bot.config import Settings
from bot.logs import FORMAT, RedactingFormatter, secrets_of


def test_every_secret_is_redacted_even_in_tracebacks(tmp_path):
    env = {
        "FANZHA_HOME": str(tmp_path),
        "FANZHA_TELEGRAM_TOKEN": "123456:ABCDEF-token",
        "FANZHA_WECHAT_TOKEN": "wechat-token-xyz",
        "FANZHA_WECOM_KEYS": "三号楼=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa",
    }
    settings = Settings.from_env(env)
    formatter = RedactingFormatter(FORMAT, secrets_of(settings))
    try:
        raise RuntimeError("POST https://api.telegram.org/bot123456:ABCDEF-token/sendMessage failed")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "hook %s token %s", None, None)
        record.args = ("693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa", "wechat-token-xyz")
        import sys

        record.exc_info = sys.exc_info()
        line = formatter.format(record)
    assert "ABCDEF-token" not in line and "wechat-token-xyz" not in line and "693a91f6" not in line
    assert line.count("<redacted>") >= 3
