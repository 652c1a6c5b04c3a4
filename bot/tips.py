"""The daily tip library and the pure rule that picks today's tip for a chat.

Rules: a chat never gets the same tip twice until it has had every tip that applies (the
evergreen ones plus those in season); tips in season come first; the pick is a
deterministic function of (chat, day, history), so a restart picks the same tip.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import yaml

from classifier.knowledge import CATEGORY_IDS, KnowledgeError
from classifier.resources import resource_path

AUDIENCES = ("everyone", "elderly", "students", "parents", "shop_owners")


@dataclass(frozen=True)
class Season:
    id: str
    name: str
    ranges: tuple[tuple[tuple[int, int], tuple[int, int]], ...]

    def contains(self, day: date) -> bool:
        md = (day.month, day.day)
        for start, end in self.ranges:
            if start <= end:
                if start <= md <= end:
                    return True
            elif md >= start or md <= end:  # wraps over the new year
                return True
        return False


@dataclass(frozen=True)
class Tip:
    id: str
    text: str
    categories: tuple[str, ...]
    audiences: tuple[str, ...]
    seasons: tuple[str, ...]


@dataclass(frozen=True)
class TipLibrary:
    tips: tuple[Tip, ...]
    seasons: dict[str, Season]

    def in_season(self, tip: Tip, day: date) -> bool:
        return any(self.seasons[s].contains(day) for s in tip.seasons)

    def applicable(self, day: date) -> list[Tip]:
        """Evergreen tips plus the seasonal ones whose season includes *day*."""
        return [t for t in self.tips if not t.seasons or self.in_season(t, day)]

    def get(self, tip_id: str) -> Tip | None:
        return next((t for t in self.tips if t.id == tip_id), None)


def _parse_md(text: str, where: str) -> tuple[int, int]:
    try:
        month, day = (int(x) for x in str(text).split("-"))
        date(2024, month, day)
    except ValueError:
        raise KnowledgeError(f"{where}: {text!r} is not a MM-DD date") from None
    return month, day


def parse_tips(data: object, path: Path) -> TipLibrary:
    name = path.name
    if not isinstance(data, dict):
        raise KnowledgeError(f"{name}: must have 'seasons' and 'tips'")
    problems: list[str] = []
    seasons: dict[str, Season] = {}
    for sid, raw in (data.get("seasons") or {}).items():
        if not isinstance(raw, dict) or not raw.get("ranges"):
            problems.append(f"{name} seasons.{sid}: needs name and ranges (['11-01..11-12'])")
            continue
        ranges = []
        for r in raw["ranges"]:
            start, _, end = str(r).partition("..")
            try:
                ranges.append((_parse_md(start, f"{name} seasons.{sid}"), _parse_md(end, f"{name} seasons.{sid}")))
            except KnowledgeError as exc:
                problems.append(str(exc))
        seasons[sid] = Season(sid, str(raw.get("name", sid)), tuple(ranges))
    tips: list[Tip] = []
    seen: set[str] = set()
    for n, raw in enumerate(data.get("tips") or []):
        where = f"{name} tips[{n}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: must be a mapping with id, text, categories, audiences")
            continue
        tid, text = str(raw.get("id", "")).strip(), str(raw.get("text", "")).strip()
        if not tid or not text:
            problems.append(f"{where}: id and text are required")
            continue
        if tid in seen:
            problems.append(f"{where}: duplicate id {tid!r}")
        seen.add(tid)
        cats = tuple(raw.get("categories") or ())
        auds = tuple(raw.get("audiences") or ("everyone",))
        sea = tuple(raw.get("seasons") or ())
        for c in cats:
            if c not in CATEGORY_IDS:
                problems.append(f"{where} ({tid}).categories: unknown category {c!r}")
        for a in auds:
            if a not in AUDIENCES:
                problems.append(f"{where} ({tid}).audiences: unknown audience {a!r} (use {', '.join(AUDIENCES)})")
        for s in sea:
            if s not in seasons:
                problems.append(f"{where} ({tid}).seasons: unknown season {s!r}")
        if len(text) > 300:
            problems.append(f"{where} ({tid}).text: too long for a daily tip ({len(text)} > 300 characters)")
        tips.append(Tip(tid, text, cats, auds, sea))
    if not tips:
        problems.append(f"{name}: no tips")
    if problems:
        raise KnowledgeError(f"{path} has {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return TipLibrary(tuple(tips), seasons)


@lru_cache(maxsize=4)
def load_tips(path: Path | None = None) -> TipLibrary:
    path = path or resource_path("data/tips.yaml")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise KnowledgeError(f"cannot read {path}: {exc}") from None
    return parse_tips(data, path)


def _rank(chat_key: str, day: date, tip_id: str) -> str:
    return hashlib.sha256(f"{chat_key}|{day.isoformat()}|{tip_id}".encode()).hexdigest()


def choose_tip(library: TipLibrary, history: list[str], day: date, chat_key: str) -> Tip:
    """Today's tip for a chat, given the ids it was already sent (oldest first)."""
    applicable = library.applicable(day)
    ids = {t.id for t in applicable}
    had: set[str] = set()
    for tip_id in history:
        if tip_id in ids:
            had.add(tip_id)
            if had >= ids:
                had = set()  # a full round is complete: start again
    fresh = [t for t in applicable if t.id not in had] or applicable
    seasonal = [t for t in fresh if t.seasons and library.in_season(t, day)]
    pool = seasonal or fresh
    return min(pool, key=lambda t: _rank(chat_key, day, t.id))
