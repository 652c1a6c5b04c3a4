"""Find the links, numbers and accounts in a message and say what the text alone reveals.

Nothing here looks anything up: a number is never declared safe, only described (a
shortener hides its target, an IP host is no registered site, a look-alike imitates a
brand's official domain, an overseas number is unusual for a "local" caller).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_TLDS = (
    "com|cn|net|org|top|cc|xyz|vip|info|io|me|shop|club|site|online|app|ltd|co|tk|ml|link|pro|"
    "asia|biz|live|fun|icu|wang|ink|work|tech|store|hk|tw|in|ru|cyou|buzz|life|run|today|win"
)
_URL = re.compile(
    r"(?:(?P<scheme>https?)://)?"
    r"(?P<host>(?:\d{1,3}(?:\.\d{1,3}){3})|(?:[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?\.)+(?:" + _TLDS + r"))"
    r"(?P<port>:\d{1,5})?(?P<path>/[\w\-./?%&=#~+@:]*)?",
    re.IGNORECASE,
)
_SHORTENERS = {
    "t.cn",
    "dwz.cn",
    "url.cn",
    "w.url.cn",
    "suo.im",
    "bit.ly",
    "tinyurl.com",
    "is.gd",
    "t.co",
    "0x3.me",
    "dwz.date",
    "u.nu",
    "rb.gy",
    "cutt.ly",
    "s.id",
    "ow.ly",
    "reurl.cc",
    "mrw.so",
}
# brand token -> official registered domains (look-alikes contain the token elsewhere).
_OFFICIAL = {
    "taobao": ("淘宝", ("taobao.com", "tmall.com", "alibaba.com")),
    "tmall": ("天猫", ("tmall.com",)),
    "jd": ("京东", ("jd.com", "jd.hk")),
    "pinduoduo": ("拼多多", ("pinduoduo.com", "yangkeduo.com")),
    "alipay": ("支付宝", ("alipay.com",)),
    "icbc": ("工商银行", ("icbc.com.cn",)),
    "95588": ("工商银行", ("icbc.com.cn",)),
    "ccb": ("建设银行", ("ccb.com",)),
    "95533": ("建设银行", ("ccb.com",)),
    "abchina": ("农业银行", ("abchina.com",)),
    "boc": ("中国银行", ("boc.cn", "bankofchina.com")),
    "cmbchina": ("招商银行", ("cmbchina.com",)),
    "95555": ("招商银行", ("cmbchina.com",)),
    "psbc": ("邮储银行", ("psbc.com",)),
    "12306": ("铁路12306", ("12306.cn",)),
    "10086": ("中国移动", ("10086.cn",)),
    "chinaunicom": ("中国联通", ("chinaunicom.com", "10010.com")),
    "10010": ("中国联通", ("10010.com", "chinaunicom.com")),
    "189": ("中国电信", ("189.cn",)),
    "etc": ("ETC", ("etc.cn",)),
    "12123": ("交管12123", ("122.gov.cn",)),
    "douyin": ("抖音", ("douyin.com",)),
    "kuaishou": ("快手", ("kuaishou.com",)),
    "weixin": ("微信", ("weixin.qq.com", "qq.com")),
    "wechat": ("微信", ("wechat.com", "qq.com")),
    "apple": ("苹果", ("apple.com", "icloud.com")),
    "gov": ("政府网站", ("gov.cn",)),
}
_PHONE = re.compile(
    r"(?<![\d.])(?:"
    r"(?P<overseas>(?:\+|00)(?!86)\d{1,3}[ -]?\d{4,12})"
    r"|(?:\+?86[ -]?)?(?P<mobile>1[3-9]\d{9})"
    r"|(?P<service>400[ -]?\d{3}[ -]?\d{4}|95\d{3,4}|96110|10086|10010|12315|12345|12306|12123|12381)"
    r"|(?P<landline>0\d{2,3}[ -]?\d{7,8})"
    r")(?![\d.元块万])"
)
_CARD = re.compile(r"(?<!\d)(\d{16,19})(?!\d)")
_QQ = re.compile(r"qq[号码]*[:：\s]*([1-9]\d{4,10})", re.IGNORECASE)
_WECHAT = re.compile(r"微信[号]?[:：\s]*([a-zA-Z][-_a-zA-Z0-9]{5,19})")
_AMOUNT = re.compile(
    r"(?:[¥￥]\s*\d[\d,]*(?:\.\d+)?|\d[\d,]*(?:\.\d+)?\s*(?:万|千|百)?\s*(?:元|块钱|块|rmb))",
    re.IGNORECASE,
)
_CODE = re.compile(
    r"(?:验证码|校验码|动态码|动态密码)[是为:：\s]*(\d{4,8})|(?<!\d)(\d{4,8})(?!\d)\s*(?:是|为)?(?:您的|你的)?(?:验证码|校验码)"
)


@dataclass(frozen=True)
class Entity:
    """One thing found in a message: ``kind`` (url, phone, bank_card, qq, wechat, amount,
    code), the ``value`` as written, and a ``note`` with what the text alone says about it."""

    kind: str
    value: str
    note: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "value": self.value, "note": self.note}


def luhn_ok(digits: str) -> bool:
    """The bank-card check digit test; it tells a card number from any long number."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def host_within(host: str, domains: Iterable[str]) -> bool:
    """Whether *host* is one of *domains* or a subdomain of one (qpic.cn.evil.example is not)."""
    return any(host == d or host.endswith("." + d) for d in domains)


def describe_url(host: str) -> str:
    """``shortener``, ``ip``, ``lookalike:<brand>``, ``official:<brand>`` or ``plain``."""
    host = host.lower().removeprefix("www.")
    if re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}", host):
        return "ip"
    if host in _SHORTENERS:
        return "shortener"
    labels = re.split(r"[.\-]", host)
    for token, (brand, domains) in _OFFICIAL.items():
        if host_within(host, domains):
            return f"official:{brand}"
        if token in labels or (len(token) >= 4 and token in host):
            return f"lookalike:{brand}"
    return "plain"


def _urls(matches: list[re.Match[str]]) -> list[Entity]:
    found = []
    for m in matches:
        host = m.group("host")
        if re.fullmatch(r"\d+(?:\.\d+){1,2}", host):
            continue
        found.append(Entity("url", m.group(0).rstrip(".,"), describe_url(host)))
    return found


def _phones(text: str, taken: list[tuple[int, int]]) -> list[Entity]:
    out = []
    for m in _PHONE.finditer(text):
        if any(s <= m.start() < e for s, e in taken):
            continue
        kind = m.lastgroup or "mobile"
        value = m.group(kind)
        note = "hotline" if value == "96110" else kind
        out.append(Entity("phone", value, note))
    return out


_DIGIT = re.compile(r"\d")


def extract_entities(text: str) -> list[Entity]:
    """All entities in normalised *text*, in a stable order (urls, phones, cards, ids...)."""
    url_matches = list(_URL.finditer(text)) if "." in text else []  # every host has a dot
    entities = _urls(url_matches)
    has_digits = _DIGIT.search(text) is not None  # everything else, but a WeChat id, has one
    if has_digits:
        url_spans = [m.span() for m in url_matches]
        card_matches = list(_CARD.finditer(text))
        cards = [
            Entity("bank_card", m.group(1))
            for m in card_matches
            if luhn_ok(m.group(1)) and not any(s <= m.start() < e for s, e in url_spans)
        ]
        entities += _phones(text, url_spans + [m.span() for m in card_matches])
        entities += cards
        entities += [Entity("qq", m.group(1)) for m in _QQ.finditer(text)]
    entities += [Entity("wechat", m.group(1)) for m in _WECHAT.finditer(text)]
    if has_digits:
        entities += [Entity("amount", m.group(0).strip()) for m in _AMOUNT.finditer(text)]
        entities += [Entity("code", m.group(1) or m.group(2)) for m in _CODE.finditer(text)]
    seen: set[tuple[str, str]] = set()
    unique = []
    for e in entities:
        if (e.kind, e.value) not in seen:
            seen.add((e.kind, e.value))
            unique.append(e)
    return unique
