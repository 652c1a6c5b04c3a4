"""Every FANZHA_* setting, documented once, read from the environment and one config file.

Order of precedence: command-line flag > environment variable > config file > default.
The config file (TOML, ``FANZHA_CONFIG``, default ``$FANZHA_HOME/config.toml``) may hold any
non-secret setting under its lower-case name without the prefix (``db = "/srv/fanzha.db"``).
Secrets (tokens, keys) are read from the environment only and never printed.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


SECRET_NAMES = (
    "telegram_token",
    "telegram_webhook_secret",
    "wechat_token",
    "wechat_appid",
    "wechat_aes_key",
    "hash_key",
    "wecom_keys",
)


def _default_home() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("fanzha", appauthor=False))


#: Where WeChat serves the pictures followers send (PicUrl is on mmbiz.qpic.cn today).
WECHAT_PICTURE_HOSTS = "qpic.cn,weixin.qq.com"


@dataclass(frozen=True)
class Settings:
    """All configuration. Build with :meth:`from_env`; secrets are hidden from repr."""

    home: Path
    db: Path
    tokenizer: str = "rjieba"
    retention_days: int = 180
    batch_window_seconds: float = 4.0
    checks_per_minute: int = 12
    pictures_per_minute: int = 4
    timezone: str = "Asia/Shanghai"
    tip_time: str = "09:00"
    telegram_base_url: str = "https://api.telegram.org/bot"
    telegram_webhook_url: str = ""
    telegram_rate_limiter: bool = True
    #: Hosts (and their subdomains) a WeChat PicUrl may point to; others are never fetched.
    wechat_picture_hosts: str = WECHAT_PICTURE_HOSTS
    wecom_webhook_base: str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
    host: str = "127.0.0.1"
    port: int = 8080
    telegram_token: str = field(default="", repr=False)
    telegram_webhook_secret: str = field(default="", repr=False)
    wechat_token: str = field(default="", repr=False)
    wechat_appid: str = field(default="", repr=False)
    wechat_aes_key: str = field(default="", repr=False)
    hash_key: str = field(default="", repr=False)
    #: WeCom group robots from the environment: "name=key,name2=key2" (a key or the whole webhook URL).
    wecom_keys: str = field(default="", repr=False)

    @property
    def wecom_groups(self) -> dict[str, str]:
        """FANZHA_WECOM_KEYS as {group name: robot key}."""
        return parse_wecom_keys(self.wecom_keys)

    @property
    def picture_hosts(self) -> tuple[str, ...]:
        """FANZHA_WECHAT_PICTURE_HOSTS as lower-case host names."""
        return host_list(self.wechat_picture_hosts)

    @property
    def model_dir(self) -> Path:
        return self.home / "model"

    @property
    def reviewed_path(self) -> Path:
        return self.home / "reviewed.jsonl"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> Settings:
        """Settings from *environ* (default os.environ), the config file and *overrides*."""
        env = dict(os.environ if environ is None else environ)
        home = Path(overrides.pop("home", None) or env.get("FANZHA_HOME") or _default_home())
        config_path = Path(env.get("FANZHA_CONFIG") or home / "config.toml")
        file_values = _read_config_file(config_path) if config_path.exists() else {}
        values: dict[str, object] = {"home": home}
        for f in dataclasses.fields(cls):
            if f.name == "home":
                continue
            raw = overrides.get(f.name)
            if raw is None:
                raw = env.get(f"FANZHA_{f.name.upper()}")
            if raw is None and f.name not in SECRET_NAMES:
                raw = file_values.get(f.name)
            if raw is None:
                continue
            values[f.name] = _coerce(f.name, f.type, raw)
        values.setdefault("db", home / "fanzha.db")
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.tokenizer not in ("rjieba", "jieba"):
            raise ConfigError("FANZHA_TOKENIZER must be 'rjieba' or 'jieba'")
        hours, _, minutes = self.tip_time.partition(":")
        if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
            raise ConfigError(f"FANZHA_TIP_TIME must look like 09:00, not {self.tip_time!r}")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(self.timezone)
        except Exception:
            raise ConfigError(f"FANZHA_TIMEZONE: unknown time zone {self.timezone!r}") from None
        if self.wechat_aes_key and len(self.wechat_aes_key) != 43:
            raise ConfigError("FANZHA_WECHAT_AES_KEY must be the 43-character EncodingAESKey")
        parse_wecom_keys(self.wecom_keys)

    def ensure_home(self) -> Path:
        """Create the data folder (private to this user) and return it."""
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self.home

    def text_hash_key(self) -> bytes:
        """Key for hashing message text: FANZHA_HASH_KEY, else one made once in FANZHA_HOME."""
        if self.hash_key:
            return self.hash_key.encode()
        path = self.ensure_home() / "hash.key"
        try:
            return path.read_bytes().strip()
        except FileNotFoundError:
            key = secrets.token_hex(32).encode()
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key)
            return key


def host_list(text: str) -> tuple[str, ...]:
    """Comma-separated host names, trimmed and lower-cased (empty entries dropped)."""
    return tuple(h.strip().lower().strip(".") for h in text.split(",") if h.strip().strip("."))


def wecom_key(text: str) -> str:
    """The robot key from a bare key or from the webhook URL WeCom shows (``.../send?key=...``).

    Errors never repeat the text: it is a credential.
    """
    text = text.strip()
    if "key=" in text:
        from urllib.parse import parse_qs, urlsplit

        key = (parse_qs(urlsplit(text).query).get("key") or [""])[0].strip()
    else:
        key = text
    if not key:
        raise ConfigError("a WeCom robot key is empty (give the key, or the webhook URL ending in ?key=...)")
    if len(key) > 128 or not all(c.isascii() and (c.isalnum() or c in "-_") for c in key):
        raise ConfigError("a WeCom robot key may only hold letters, digits, '-' and '_' (check what was pasted)")
    return key


def parse_wecom_keys(text: str) -> dict[str, str]:
    """``"name=key,name2=key2"`` as a dict; the name is what ``fanzha tips list`` shows."""
    groups: dict[str, str] = {}
    for n, item in enumerate(text.split(","), 1):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"FANZHA_WECOM_KEYS: entry {n} must look like name=key")
        if name in groups:
            raise ConfigError(f"FANZHA_WECOM_KEYS: group {name!r} is listed twice")
        try:
            groups[name] = wecom_key(value)
        except ConfigError as exc:
            raise ConfigError(f"FANZHA_WECOM_KEYS: group {name!r}: {exc}") from None
    return groups


def _read_config_file(path: Path) -> dict[str, object]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    secret_keys = sorted(set(data) & set(SECRET_NAMES))
    if secret_keys:
        raise ConfigError(f"{path}: {', '.join(secret_keys)} are secrets: set them in the environment, not the file")
    return data


def _coerce(name: str, kind: object, raw: object) -> object:
    kind = str(kind)
    try:
        if "Path" in kind:
            return Path(str(raw)).expanduser()
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(text)
            return text in ("1", "true", "yes", "on")
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        return str(raw)
    except ValueError:
        raise ConfigError(f"FANZHA_{name.upper()}: {raw!r} is not a valid {kind}") from None
