"""Send today's tip to every subscribed chat whose time has come, exactly once.

Platform-neutral: a :class:`TipSender` (Telegram, WeCom) delivers; this module decides who
is due, picks the tip and keeps the books. Each send is claimed in the database before
delivery (``tip_sends`` keyed by platform, chat and day), so a restart, a second process or
a retry never sends twice; a send that failed is retried on the next round. A tick every
minute is the whole schedule: it also catches up, on start, a send missed while the bot was
down, as long as it is still the same day.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.storage import Store
from bot.tips import Tip, TipLibrary, choose_tip

OK, BLOCKED, FAILED = "ok", "blocked", "failed"


@dataclass(frozen=True)
class SendResult:
    status: str  # ok, blocked (unsubscribe), failed (retry later)
    moved_to: str | None = None  # a Telegram group that became a supergroup


class TipSender(Protocol):
    """Delivers one tip. A sender may also say how many sends it takes at once
    (``concurrency``, default 1): one that paces itself under a rate limiter wants several in
    flight, so the limit, not each round trip, sets the speed."""

    platform: str

    async def send_tip(self, chat_id: str, text: str) -> SendResult: ...


@dataclass
class BroadcastReport:
    sent: list[str] = field(default_factory=list)
    skipped: int = 0
    blocked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def local_day(moment: datetime, zone: str) -> date:
    return moment.astimezone(ZoneInfo(zone)).date()


def is_due(subscription: dict, now: datetime, default_time: str, default_zone: str) -> bool:
    """True when the chat's tip time has passed today, in the chat's own time zone."""
    zone = ZoneInfo(subscription.get("tip_zone") or default_zone)
    local = now.astimezone(zone)
    hours, minutes = (int(x) for x in (subscription.get("tip_time") or default_time).split(":"))
    return (local.hour, local.minute) >= (hours, minutes)


def tip_for(store: Store, library: TipLibrary, platform: str, chat_id: str, day: date) -> Tip:
    """Today's tip for a chat: the one already claimed today, else a fresh pick."""
    claimed = store.tip_send(platform, chat_id, day.isoformat())
    if claimed and library.get(claimed["tip_id"]):
        return library.get(claimed["tip_id"])  # type: ignore[return-value]
    history = store.tip_history(platform, chat_id)
    return choose_tip(library, history, day, f"{platform}:{chat_id}")


def format_tip(tip: Tip, heading: str = "每日反诈提醒") -> str:
    return f"【{heading}】{tip.text}"


async def send_due_tips(
    store: Store,
    library: TipLibrary,
    sender: TipSender,
    now: datetime,
    *,
    default_time: str = "09:00",
    default_zone: str = "Asia/Shanghai",
    force: bool = False,
    per_second: float = 0.0,
    concurrency: int | None = None,
) -> BroadcastReport:
    """One round: every due, subscribed chat of the sender's platform gets today's tip once.

    *force* ignores the time of day (``fanzha tips send --now``), never the once-a-day rule.
    *per_second* spaces the starts of deliveries (0: the sender paces itself). Up to
    *concurrency* deliveries are in flight at once (default: the sender's ``concurrency``,
    else 1). Chats are claimed one by one, in order, before their send starts; the report
    lists them in that order whatever order the sends finish in.
    """
    platform = sender.platform
    limit = max(1, concurrency or getattr(sender, "concurrency", 1))
    slots = asyncio.Semaphore(limit)
    outcomes: list[tuple[str, str]] = []  # (status, chat id), in claim order
    sending: set[asyncio.Task] = set()
    problems: list[BaseException] = []
    skipped = 0

    async def deliver(index: int, chat_id: str, day: str, text: str) -> None:
        try:
            outcomes[index] = await _deliver_tip(store, sender, platform, chat_id, day, text)
        except BaseException as exc:  # re-raised once the sends already started are done
            problems.append(exc)
        finally:
            slots.release()

    store.release_stale_sends()
    try:
        for sub in store.subscriptions(platform):
            chat_id = sub["chat_id"]
            if not force and not is_due(sub, now, default_time, default_zone):
                continue
            day = local_day(now, sub.get("tip_zone") or default_zone)
            tip = tip_for(store, library, platform, chat_id, day)
            await slots.acquire()
            if problems:
                slots.release()
                break
            if not store.claim_tip_send(platform, chat_id, day.isoformat(), tip.id):
                slots.release()
                skipped += 1
                continue
            outcomes.append((FAILED, chat_id))
            task = asyncio.create_task(deliver(len(outcomes) - 1, chat_id, day.isoformat(), format_tip(tip)))
            sending.add(task)
            task.add_done_callback(sending.discard)
            if per_second:
                await asyncio.sleep(1 / per_second)
    finally:
        if sending:
            await asyncio.gather(*sending, return_exceptions=True)
    if problems:
        raise problems[0]
    report = BroadcastReport(skipped=skipped)
    for status, chat_id in outcomes:
        {OK: report.sent, BLOCKED: report.blocked}.get(status, report.failed).append(chat_id)
    return report


async def _deliver_tip(
    store: Store, sender: TipSender, platform: str, chat_id: str, day: str, text: str
) -> tuple[str, str]:
    """Send one claimed tip and keep the books: (status, the chat id it ended up at)."""
    result = await sender.send_tip(chat_id, text)
    if result.moved_to:
        store.move_chat(platform, chat_id, result.moved_to)
        chat_id = result.moved_to
        result = await sender.send_tip(chat_id, text)
    store.finish_tip_send(platform, chat_id, day, ok=result.status == OK)
    if result.status == BLOCKED:
        store.unsubscribe(platform, chat_id)
    return result.status, chat_id


@dataclass(frozen=True)
class PlannedTip:
    """What a chat gets on a day: ``fanzha tips preview``."""

    platform: str
    chat_id: str
    subscribed: bool
    tip_time: str
    zone: str
    day: date
    status: str  # sent, sending, failed, due, scheduled, not subscribed
    tip: Tip


def plan_tips(
    store: Store,
    library: TipLibrary,
    now: datetime,
    *,
    day: date | None = None,
    chats: list[tuple[str, str]] | None = None,
    default_time: str = "09:00",
    default_zone: str = "Asia/Shanghai",
) -> list[PlannedTip]:
    """The tip each subscribed chat (or each of *chats*) gets on *day* (default: its today).

    A day already claimed shows the tip that went out; a later day assumes nothing else is
    sent before it.
    """
    if chats is None:
        rows = store.subscriptions()
    else:
        rows = [store.chat(p, c) or {"platform": p, "chat_id": c} for p, c in chats]
    plans = []
    for row in rows:
        platform, chat_id = row["platform"], row["chat_id"]
        subscribed = bool(row.get("subscribed"))
        zone = row.get("tip_zone") or default_zone
        tip_time = row.get("tip_time") or default_time
        today = local_day(now, zone)
        target = day or today
        claimed = store.tip_send(platform, chat_id, target.isoformat())
        if claimed:
            status = claimed["status"]
        elif not subscribed:
            status = "not subscribed"
        elif target < today:
            status = "not sent"
        elif target == today and is_due(row, now, default_time, default_zone):
            status = "due"
        else:
            status = "scheduled"
        tip = tip_for(store, library, platform, chat_id, target)
        plans.append(PlannedTip(platform, chat_id, subscribed, tip_time, zone, target, status, tip))
    return plans
