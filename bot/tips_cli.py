"""``fanzha tips``: see, send and manage the daily anti-fraud tips. A thin shell over
:mod:`bot.broadcast` (what is due, what each chat gets) and :mod:`bot.adapters.tip_round`.

WeCom robot keys are credentials: they are kept in the database (or FANZHA_WECOM_KEYS) and
only ever shown masked.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from bot.broadcast import BroadcastReport
    from bot.cli import _Context

PLATFORMS = ("telegram", "wecom")


def mask_key(key: str) -> str:
    """Enough of a robot key to tell two apart, never enough to use it."""
    return f"****{key[-4:]}" if len(key) >= 16 else "****"


def _parse_time(text: str) -> str:
    hours, sep, minutes = text.strip().partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
        raise click.BadParameter(f"{text!r} is not a time like 09:00")
    return f"{int(hours):02d}:{int(minutes):02d}"


def _parse_chat(text: str) -> tuple[str, str]:
    platform, sep, chat_id = text.partition(":")
    if not sep or platform not in PLATFORMS or not chat_id:
        raise click.BadParameter(f"{text!r}: use PLATFORM:ID, e.g. telegram:123456789 or wecom:NAME")
    return platform, chat_id


@click.group()
def tips() -> None:
    """Daily anti-fraud tips: preview, send by hand, WeCom group robots.

    \b
    The running bots send each chat's tip at its time: `fanzha telegram` for Telegram chats,
    and both `fanzha serve` and `fanzha telegram` for WeCom groups (each send is recorded
    first, so running both never posts twice).

    \b
    Examples:
      fanzha tips preview
      fanzha tips add-wecom 幸福里一群 --time 08:30
      fanzha tips send --now
    """


@tips.command()
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="The day to show (default: today).")
@click.option("--chat", "chat", help="Only this chat, as PLATFORM:ID (also one that is not subscribed).")
@click.pass_obj
def preview(obj: _Context, day: datetime | None, chat: str | None) -> None:
    """Show the tip each subscribed chat gets today (or on --date), and whether it went out.

    A day ahead assumes nothing else is sent before it.

    \b
    Examples:
      fanzha tips preview
      fanzha tips preview --date 2025-11-05 --chat telegram:123456789
    """
    from bot.broadcast import format_tip, plan_tips
    from bot.tips import load_tips

    chats = [_parse_chat(chat)] if chat else None
    settings = obj.settings
    store = obj.store()
    try:
        plans = plan_tips(
            store,
            load_tips(),
            datetime.now(UTC),
            day=day.date() if day else None,
            chats=chats,
            default_time=settings.tip_time,
            default_zone=settings.timezone,
        )
    finally:
        store.close()
    if not plans:
        click.echo("No chat is subscribed yet: /subscribe in Telegram, or fanzha tips add-wecom NAME KEY.")
        return
    for n, plan in enumerate(plans):
        if n:
            click.echo()
        click.echo(
            f"{plan.platform}:{plan.chat_id}  {plan.day.isoformat()} {plan.tip_time} {plan.zone}  "
            f"{plan.status}  (tip {plan.tip.id})"
        )
        click.echo(format_tip(plan.tip))


@tips.command()
@click.option("--now", "now_", is_flag=True, help="Every subscribed chat now, whatever its time.")
@click.pass_obj
def send(obj: _Context, now_: bool) -> None:
    """Send today's tip through every configured channel, once per chat and day.

    Without --now only chats whose time has come (for running it from cron instead of a
    bot). A chat that already had today's tip is skipped, so running it twice is harmless.

    \b
    Examples:
      fanzha tips send --now
      */5 * * * *  fanzha tips send      (crontab)
    """
    from bot.adapters.tip_round import send_round
    from bot.tips import load_tips

    store = obj.store()
    try:
        results = asyncio.run(send_round(obj.settings, store, load_tips(), datetime.now(UTC), force=now_))
    finally:
        store.close()
    if not results:
        click.echo("No chat is subscribed yet: nothing to send.")
        return
    sent = 0
    for result in results:
        if result.problem:
            click.echo(f"{result.platform}: {result.chats} subscribed chat(s) not sent: {result.problem}")
            continue
        assert result.report is not None
        sent += len(result.report.sent)
        click.echo(f"{result.platform}: {_summary(result.report)}")
    if not sent and all(r.report and not r.report.failed for r in results):
        if now_:
            click.echo("Nothing new was sent: every subscribed chat already had today's tip.")
        else:
            click.echo("Nothing new was sent: no chat's time has come, or it already had today's tip (--now: all).")


def _summary(report: BroadcastReport) -> str:
    parts = [f"{len(report.sent)} sent", f"{report.skipped} already had today's tip"]
    if report.blocked:
        parts.append(f"{len(report.blocked)} unsubscribed (blocked the bot or robot removed)")
    if report.failed:
        parts.append(f"{len(report.failed)} failed (the running bot retries them; or run this again)")
    return ", ".join(parts)


@tips.command("add-wecom")
@click.argument("name")
@click.argument("key", required=False)
@click.option("--time", "tip_time", help="Daily time, HH:MM in FANZHA_TIMEZONE (default FANZHA_TIP_TIME).")
@click.pass_obj
def add_wecom(obj: _Context, name: str, key: str | None, tip_time: str | None) -> None:
    """Register a WeCom group robot, or change its key or time; it gets the daily tip.

    KEY is the robot's webhook key, or the whole webhook URL WeCom shows. Leave it out to
    type it without it showing (and without it staying in the shell history); for a group
    already registered, leaving it out keeps the key and changes only --time.

    \b
    Examples:
      fanzha tips add-wecom 幸福里一群
      fanzha tips add-wecom 幸福里一群 --time 08:30
    """
    from bot.config import ConfigError, wecom_key

    settings = obj.settings
    tip_time = _parse_time(tip_time) if tip_time else None
    store = obj.store()
    try:
        hook = next((h for h in store.wecom_hooks() if h["name"] == name), None)
        if key is None and hook is not None:
            key = hook["hook_key"]
        elif key is None:
            key = click.prompt("Webhook key or URL", hide_input=True)
        try:
            key = wecom_key(key)
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="KEY") from None
        tip_time = tip_time or (hook or {}).get("tip_time") or settings.tip_time
        store.add_wecom_hook(name, key, tip_time, settings.timezone)
    finally:
        store.close()
    verb = "updated" if hook else "registered"
    click.echo(f"WeCom group {name!r} {verb} (key {mask_key(key)}): daily tip at {tip_time} {settings.timezone}.")


@tips.command("remove-wecom")
@click.argument("name")
@click.pass_obj
def remove_wecom(obj: _Context, name: str) -> None:
    """Stop the tips to a WeCom group robot and forget its key.

    \b
    Example:
      fanzha tips remove-wecom 幸福里一群
    """
    store = obj.store()
    try:
        removed = store.remove_wecom_hook(name)
    finally:
        store.close()
    if not removed:
        raise click.ClickException(f"no WeCom group is registered as {name!r} (see: fanzha tips list)")
    click.echo(f"WeCom group {name!r} removed.")
    if name in obj.settings.wecom_groups:
        click.echo("It is also in FANZHA_WECOM_KEYS: take it out there, or it comes back when fanzha next starts.")


@tips.command("list")
@click.pass_obj
def list_(obj: _Context) -> None:
    """Subscribed chats and WeCom group robots: time, zone, last day sent (keys masked).

    \b
    Example:
      fanzha tips list
    """
    from bot.adapters.wecom import register_configured_groups

    settings = obj.settings
    store = obj.store()
    try:
        register_configured_groups(settings, store)
        last = store.last_tip_days()
        chats = [s for s in store.subscriptions() if s["platform"] != "wecom"]
        hooks = store.wecom_hooks()
        wecom_chats = {h["name"]: store.chat("wecom", h["name"]) or {} for h in hooks}
    finally:
        store.close()

    def when(row: dict) -> str:
        return f"{row.get('tip_time') or settings.tip_time} {row.get('tip_zone') or settings.timezone}"

    click.echo(f"Subscribed chats ({len(chats)}):")
    for chat in chats:
        sent = last.get((chat["platform"], chat["chat_id"]), "never")
        click.echo(f"  {chat['platform']}:{chat['chat_id']}  {chat['kind']}  {when(chat)}  last sent {sent}")
    click.echo(f"WeCom group robots ({len(hooks)}):")
    for hook in hooks:
        chat = wecom_chats[hook["name"]]
        state = "on" if chat.get("subscribed") else "off (WeCom no longer knows the key: add it again)"
        source = "  (FANZHA_WECOM_KEYS)" if hook["name"] in settings.wecom_groups else ""
        sent = last.get(("wecom", hook["name"]), "never")
        click.echo(
            f"  {hook['name']}  key {mask_key(hook['hook_key'])}  {when({**hook, **chat})}  "
            f"last sent {sent}  {state}{source}"
        )
