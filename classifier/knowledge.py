"""Load and validate intents.yaml, the knowledge base officers edit without touching code.

Every problem is collected with its file, line and key (``intents.yaml:42
categories.refund_scam.advice: missing``) and raised once, at load, so a typo stops the bot
at start instead of surfacing in a reply to a resident.
"""

from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml

from classifier.resources import resource_path

CATEGORY_IDS: tuple[str, ...] = (
    "rebate_task",
    "refund_scam",
    "safe_account",
    "fake_loan",
    "fake_credit",
    "investment",
    "impersonate_acquaintance",
    "romance",
    "game_trade",
    "fake_shopping",
    "military_purchase",
    "other_fraud",
    "benign",
)
FRAUD_IDS: tuple[str, ...] = tuple(c for c in CATEGORY_IDS if c != "benign")
INTENT_NAMES = (
    "already_paid",
    "greeting",
    "thanks",
    "help",
    "answer_paid",
    "answer_not_paid",
)
RED_FLAG_NAMES = (
    "transfer_request",
    "safe_account",
    "verification_code",
    "screen_share",
    "link_or_app",
    "fee_before_payout",
    "pressure_secrecy",
    "off_platform_contact",
    "prepay",
    "impersonation",
    "high_return",
)
#: Reply keys the code uses, with the placeholders each may contain.
REPLY_PLACEHOLDERS: dict[str, frozenset[str]] = {
    key: frozenset(fields.split()) if fields else frozenset()
    for key, fields in {
        "banner_high": "",
        "banner_medium": "",
        "banner_low": "",
        "banner_uncertain": "",
        "script_line": "name explanation",
        "script_line_medium": "name explanation",
        "flags_heading": "",
        "advice_heading": "",
        "referral": "consult police",
        "follow_up_question": "",
        "follow_up_paid_option": "",
        "follow_up_not_paid_option": "",
        "benign_body": "",
        "benign_advert": "",
        "benign_rule": "rule consult",
        "uncertain_body": "consult",
        "low_confidence_note": "",
        "urgent_heading": "",
        "urgent_steps": "police app consult",
        "not_paid_reply": "consult",
        "greeting": "",
        "thanks": "rule",
        "help": "consult",
        "small_talk": "",
        "empty": "",
        "no_text_content": "",
        "too_long_note": "",
        "not_chinese": "consult",
        "batch_note": "count",
        "entity_heading": "",
        "entity_never_safe": "consult",
        "entity_url": "entity",
        "entity_url_shortener": "entity",
        "entity_url_ip": "entity",
        "entity_url_lookalike": "entity name",
        "entity_url_plain": "entity",
        "entity_phone_overseas": "entity",
        "entity_phone_service": "entity",
        "entity_phone_mobile": "entity",
        "entity_phone_landline": "entity",
        "entity_card": "entity",
        "entity_account": "entity",
        "image_unsupported": "",
        "image_read_note": "",
        "image_key_line": "text",
        "image_refused": "",
        "image_retry": "",
        "rate_limited": "",
        "group_intro": "consult",
        "group_warning": "name consult",
        "feedback_thanks": "",
        "feedback_pick_category": "",
        "feedback_ask_keep": "",
        "feedback_kept": "",
        "feedback_not_kept": "",
        "error": "consult",
        "console_hint": "",
        "goodbye": "rule consult",
        "wechat_welcome": "police consult",
        "voice_unrecognized": "",
        "wechat_more": "consult",
        "wechat_holding": "consult",
        "telegram_welcome": "police consult",
        "telegram_commands": "",
        "telegram_group_commands": "",
        "hotline": "consult police app rule",
        "check_usage": "",
        "subscribed": "time",
        "subscribe_usage": "",
        "unsubscribed": "",
        "not_subscribed": "",
        "admin_only": "",
        "autowarn_on": "",
        "autowarn_off": "",
        "autowarn_usage": "",
        "autowarn_privacy_note": "",
        "autowarn_group_only": "",
        "forgotten": "",
        "feedback_helpful_button": "",
        "feedback_wrong_button": "",
        "feedback_not_fraud_button": "",
        "feedback_keep_yes_button": "",
        "feedback_keep_no_button": "",
        "feedback_draft_expired": "",
    }.items()
}


class KnowledgeError(ValueError):
    """intents.yaml is missing, unreadable or wrong; the message lists every problem."""


@dataclass(frozen=True)
class Hotline:
    consult: str
    police: str
    app: str
    rule: str


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    explanation: str
    red_flags: tuple[str, ...]
    advice: tuple[str, ...]
    seeds: tuple[str, ...]


@dataclass(frozen=True)
class RedFlagRule:
    name: str
    label: str
    keywords: tuple[str, ...]

    @cached_property
    def any_keyword(self) -> re.Pattern[str]:
        """One pattern for "does any keyword occur": most messages have none of a rule's
        keywords, and one regex scan is about three times faster than a find per keyword."""
        return re.compile("|".join(map(re.escape, self.keywords)) or "(?!)")


@dataclass(frozen=True)
class Intent:
    name: str
    keywords: tuple[str, ...]
    max_chars: int


@dataclass(frozen=True)
class Question:
    id: str
    keywords: tuple[str, ...]
    answer: str


@dataclass(frozen=True)
class Knowledge:
    version: int
    hotline: Hotline
    categories: dict[str, Category]
    red_flags: dict[str, RedFlagRule]
    intents: dict[str, Intent]
    questions: tuple[Question, ...]
    replies: dict[str, str | tuple[str, ...]]
    path: Path

    def domain_words(self) -> list[str]:
        """Scam vocabulary for the tokenizer's dictionary (red-flag keywords, short terms)."""
        words = {k for rule in self.red_flags.values() for k in rule.keywords}
        return sorted(w for w in words if 2 <= len(w) <= 6 and not w.isascii())


class _Problems:
    def __init__(self, path: Path, lines: dict[str, int]) -> None:
        self.path, self.lines, self.items = path, lines, []

    def add(self, key: str, message: str) -> None:
        line = self.lines.get(key)
        while line is None and "." in key:
            key_parent = key.rsplit(".", 1)[0]
            line = self.lines.get(key_parent)
            if line is None:
                key = key_parent
        where = f"{self.path.name}:{line}" if line else self.path.name
        self.items.append(f"{where} {key}: {message}")


def _key_lines(node: yaml.Node | None, path: str, lines: dict[str, int]) -> None:
    """Record the line of every key path (``categories.refund_scam.advice``) for errors."""
    if node is None:
        return
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = f"{path}.{key_node.value}" if path else str(key_node.value)
            lines[child] = key_node.start_mark.line + 1
            _key_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, value_node in enumerate(node.value):
            _key_lines(value_node, f"{path}[{i}]", lines)


def _text(data: dict, key: str, path: str, problems: _Problems) -> str:
    value = data.get(key)
    if value is None:
        problems.add(f"{path}.{key}", "missing")
        return ""
    if not isinstance(value, str | int) or not str(value).strip():
        problems.add(f"{path}.{key}", "must be non-empty text")
        return ""
    return str(value).strip()


def _texts(data: dict, key: str, path: str, problems: _Problems, *, allow_empty=False):
    value = data.get(key)
    if value is None:
        problems.add(f"{path}.{key}", "missing")
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        problems.add(f"{path}.{key}", "must be a list of texts")
        return ()
    items = tuple(str(v).strip() for v in value if str(v).strip())
    if not items and not allow_empty:
        problems.add(f"{path}.{key}", "must not be empty")
    return items


def _mapping(data: Any, path: str, problems: _Problems) -> dict:
    if not isinstance(data, dict):
        problems.add(path, "must be a mapping of keys to values")
        return {}
    return data


def _check_placeholders(key: str, text: str, problems: _Problems) -> None:
    allowed = REPLY_PLACEHOLDERS[key]
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
    except ValueError as exc:
        problems.add(f"replies.{key}", f"broken placeholder ({exc}); write {{name}}")
        return
    unknown = fields - allowed
    if unknown:
        names = ", ".join(sorted(unknown))
        hint = ", ".join(sorted(allowed)) or "none"
        problems.add(f"replies.{key}", f"unknown placeholder {names} (allowed: {hint})")


def parse_knowledge(text: str, path: Path) -> Knowledge:
    """Validate the YAML *text* of a knowledge base and return it as frozen dataclasses."""
    lines: dict[str, int] = {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _key_lines(yaml.compose(text, Loader=loader), "", lines)
        raw = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{path.name}: not valid YAML: {exc}") from None
    problems = _Problems(path, lines)
    root = _mapping(raw, "(top level)", problems)

    version = root.get("version")
    if not isinstance(version, int):
        problems.add("version", "missing or not a whole number")

    hot = _mapping(root.get("hotline", {}), "hotline", problems)
    hotline = Hotline(*(_text(hot, k, "hotline", problems) for k in ("consult", "police", "app", "rule")))

    cats = _mapping(root.get("categories", {}), "categories", problems)
    categories: dict[str, Category] = {}
    for cid in CATEGORY_IDS:
        if cid not in cats:
            problems.add(f"categories.{cid}", "missing (category ids are fixed)")
            continue
        c = _mapping(cats[cid], f"categories.{cid}", problems)
        p = f"categories.{cid}"
        categories[cid] = Category(
            id=cid,
            name=_text(c, "name", p, problems),
            explanation=_text(c, "explanation", p, problems),
            red_flags=_texts(c, "red_flags", p, problems, allow_empty=cid == "benign"),
            advice=_texts(c, "advice", p, problems),
            seeds=_texts(c, "seeds", p, problems),
        )
    for cid in cats:
        if cid not in CATEGORY_IDS:
            problems.add(f"categories.{cid}", f"unknown category id (allowed: {', '.join(CATEGORY_IDS)})")

    flags = _mapping(root.get("red_flags", {}), "red_flags", problems)
    red_flags: dict[str, RedFlagRule] = {}
    for name in RED_FLAG_NAMES:
        if name not in flags:
            problems.add(f"red_flags.{name}", "missing")
            continue
        f = _mapping(flags[name], f"red_flags.{name}", problems)
        red_flags[name] = RedFlagRule(
            name=name,
            label=_text(f, "label", f"red_flags.{name}", problems),
            keywords=tuple(k.lower() for k in _texts(f, "keywords", f"red_flags.{name}", problems)),
        )

    ints = _mapping(root.get("intents", {}), "intents", problems)
    intents: dict[str, Intent] = {}
    for name in INTENT_NAMES:
        if name not in ints:
            problems.add(f"intents.{name}", "missing")
            continue
        i = _mapping(ints[name], f"intents.{name}", problems)
        max_chars = i.get("max_chars", 40)
        if not isinstance(max_chars, int) or max_chars <= 0:
            problems.add(f"intents.{name}.max_chars", "must be a positive whole number")
            max_chars = 40
        keywords = _texts(i, "keywords", f"intents.{name}", problems)
        intents[name] = Intent(name, tuple(k.lower() for k in keywords), max_chars)

    questions: list[Question] = []
    raw_questions = root.get("questions")
    if not isinstance(raw_questions, list):
        problems.add("questions", "missing or not a list")
        raw_questions = []
    for n, q in enumerate(raw_questions):
        p = f"questions[{n}]"
        q = _mapping(q, p, problems)
        questions.append(
            Question(
                id=_text(q, "id", p, problems),
                keywords=tuple(k.lower() for k in _texts(q, "keywords", p, problems)),
                answer=_text(q, "answer", p, problems),
            )
        )

    reps = _mapping(root.get("replies", {}), "replies", problems)
    replies: dict[str, str | tuple[str, ...]] = {}
    for key in REPLY_PLACEHOLDERS:
        value = reps.get(key)
        if value is None:
            problems.add(f"replies.{key}", "missing")
            continue
        if isinstance(value, list):
            items = _texts(reps, key, "replies", problems)
            for item in items:
                _check_placeholders(key, item, problems)
            replies[key] = items
        else:
            replies[key] = _text(reps, key, "replies", problems)
            _check_placeholders(key, replies[key], problems)
    for key in reps:
        if key not in REPLY_PLACEHOLDERS:
            problems.add(f"replies.{key}", "unknown reply key (is it misspelt?)")

    if problems.items:
        raise KnowledgeError(f"{path} has {len(problems.items)} problem(s):\n  " + "\n  ".join(problems.items))
    return Knowledge(
        version=version,
        hotline=hotline,
        categories=categories,
        red_flags=red_flags,
        intents=intents,
        questions=tuple(questions),
        replies=replies,
        path=path,
    )


def intents_path() -> Path:
    """Where intents.yaml is read from: ``FANZHA_INTENTS``, else the checkout or the wheel."""
    override = os.environ.get("FANZHA_INTENTS")
    return Path(override) if override else resource_path("intents.yaml")


@lru_cache(maxsize=8)
def _load_cached(path: Path, mtime_ns: int) -> Knowledge:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeError(f"cannot read {path}: {exc}") from None
    return parse_knowledge(text, path)


def load_knowledge(path: Path | None = None) -> Knowledge:
    """Load (once per file version) and validate the knowledge base."""
    path = Path(path) if path else intents_path()
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise KnowledgeError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _load_cached(path, mtime)
