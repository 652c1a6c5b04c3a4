"""The bot's commands: /start /help /check /hotline /tips /subscribe /unsubscribe /forget /autowarn.

In groups, changing settings (/subscribe, /unsubscribe, /autowarn, /forget) is for admins
only, checked with getChatMember (cached); anyone else gets a polite no. The command menu
comes from intents.yaml (``telegram_commands``, ``telegram_group_commands``).
"""

from __future__ import annotations

import logging
import re
import time
import unicodedata
from datetime import UTC, datetime

from telegram import Bot, BotCommand, BotCommandScopeAllGroupChats, BotCommandScopeAllPrivateChats, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.adapters.telegram_handlers import chat_kind, consult, has_picture, state_of, text_of
from bot.adapters.telegram_io import PLATFORM, send_reply, send_text
from bot.adapters.telegram_state import TelegramState
from bot.broadcast import format_tip, local_day, tip_for
from bot.compose import Wording
from bot.messages import GROUP, PRIVATE

log = logging.getLogger("fanzha.telegram")

_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")
_ON = {"on", "1", "yes", "开", "开启", "打开"}
_OFF = {"off", "0", "no", "关", "关闭"}


def parse_tip_time(text: str) -> str | None:
    """``8:30``, ``08:30`` or ``０８：３０`` as ``08:30``; None if it is not a time of day."""
    match = _TIME.match(unicodedata.normalize("NFKC", text).strip())
    return f"{int(match.group(1)):02d}:{match.group(2)}" if match else None


def command_menu(items) -> list[BotCommand]:
    """``name - description`` lines from intents.yaml as BotCommands (bad lines are skipped)."""
    commands = []
    for item in (items,) if isinstance(items, str) else items:
        name, _, description = str(item).partition(" - ")
        name = name.strip().lstrip("/")
        if not _COMMAND_NAME.match(name) or not description.strip():
            log.warning("intents.yaml command menu: %r is not 'name - description'; skipped", item)
            continue
        commands.append(BotCommand(name, description.strip()[:256]))
    return commands


async def register_commands(bot: Bot, wording: Wording) -> None:
    """The "/" menu, one for private chats and one for groups."""
    replies = wording.knowledge.replies
    try:
        await bot.set_my_commands(command_menu(replies["telegram_commands"]), scope=BotCommandScopeAllPrivateChats())
        await bot.set_my_commands(
            command_menu(replies["telegram_group_commands"]), scope=BotCommandScopeAllGroupChats()
        )
    except TelegramError as exc:
        log.warning("could not register the command menu: %s", exc)


async def say(update: Update, context: ContextTypes.DEFAULT_TYPE, key: str, **values: object) -> None:
    """Answer a command with one reply text, quoting the command in groups."""
    state, chat, message = state_of(context), update.effective_chat, update.effective_message
    reply_to = message.message_id if chat.type != ChatType.PRIVATE else None
    reply = state.wording.one_block(key, **values)
    await send_reply(context.bot, state.store, state.wording, chat.id, reply, reply_to=reply_to)


async def is_admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """In a private chat, always; in a group, only for its admins (incl. anonymous ones)."""
    chat, message, user = update.effective_chat, update.effective_message, update.effective_user
    if chat.type == ChatType.PRIVATE:
        return True
    if message.sender_chat is not None and message.sender_chat.id == chat.id:
        return True  # an anonymous admin writes as the group itself
    if user is None:
        return False
    return await state_of(context).admins.is_admin(context.bot, chat.id, user.id, time.monotonic())


async def admins_only(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    if await is_admin(update, context):
        return True
    await say(update, context, "admin_only")
    return False


async def cmd_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    private = update.effective_chat.type == ChatType.PRIVATE
    await say(update, context, "telegram_welcome" if private else "group_intro")


async def cmd_help(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    private = update.effective_chat.type == ChatType.PRIVATE
    await say(update, context, "help" if private else "group_intro")


async def cmd_hotline(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await say(update, context, "hotline")


async def cmd_check(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/check as a reply to a message checks that message; /check TEXT checks TEXT."""
    message, chat, user = update.effective_message, update.effective_chat, update.effective_user
    kind = chat_kind(chat.type)
    user_id = str(user.id) if user else ""
    target = message.reply_to_message
    reply_to = message.message_id if kind == GROUP else None
    if target is not None and (text_of(target) or has_picture(target)):
        reply_to = target.message_id if kind == GROUP else None
        await consult(context.bot, context, target, chat_id=chat.id, kind=kind, user_id=user_id, reply_to=reply_to)
        return
    parts = re.split(r"\s", text_of(message), maxsplit=1)
    text = parts[1].strip() if len(parts) > 1 else ""
    if not text:
        await say(update, context, "check_usage")
        return
    await consult(
        context.bot, context, message, chat_id=chat.id, kind=kind, user_id=user_id, reply_to=reply_to, text=text
    )


async def cmd_tips(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Today's tip now. It counts as today's send, so a subscribed chat does not get it twice."""
    state, chat = state_of(context), update.effective_chat
    chat_id = str(chat.id)
    store = state.store
    row = store.chat(PLATFORM, chat_id)
    today = local_day(datetime.now(UTC), (row or {}).get("tip_zone") or state.settings.timezone)
    tip, day = tip_for(store, state.tips, PLATFORM, chat_id, today), today.isoformat()
    claimed = store.claim_tip_send(PLATFORM, chat_id, day, tip.id)
    sent = await send_text(context.bot, store, chat.id, format_tip(tip))
    if claimed:
        store.finish_tip_send(PLATFORM, chat_id, day, ok=sent is not None)


async def cmd_subscribe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/subscribe [HH:MM]: the daily tip at that time (default FANZHA_TIP_TIME)."""
    state, chat = state_of(context), update.effective_chat
    if not await admins_only(update, context):
        return
    tip_time = parse_tip_time(context.args[0]) if context.args else state.settings.tip_time
    if tip_time is None:
        await say(update, context, "subscribe_usage")
        return
    kind = PRIVATE if chat.type == ChatType.PRIVATE else GROUP
    state.store.subscribe(PLATFORM, str(chat.id), kind, tip_time, state.settings.timezone)
    await say(update, context, "subscribed", time=tip_time)


async def cmd_unsubscribe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    state, chat = state_of(context), update.effective_chat
    if not await admins_only(update, context):
        return
    was = state.store.unsubscribe(PLATFORM, str(chat.id))
    await say(update, context, "unsubscribed" if was else "not_subscribed")


async def cmd_forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Delete everything stored about this chat: database rows and what is held in memory."""
    state, chat = state_of(context), update.effective_chat
    if not await admins_only(update, context):
        return
    counts = state.store.forget_chat(PLATFORM, str(chat.id))
    state.forget_chat(str(chat.id))
    log.info("forgot chat %s (%d records)", chat.id, sum(counts.values()))
    await say(update, context, "forgotten")


async def cmd_autowarn(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/autowarn on|off (group admins): a short warning in the group on high-risk messages."""
    state, chat = state_of(context), update.effective_chat
    if chat.type == ChatType.PRIVATE:
        await say(update, context, "autowarn_group_only")
        return
    if not await admins_only(update, context):
        return
    choice = (context.args[0] if context.args else "").strip().lower()
    if choice not in _ON | _OFF:
        await say(update, context, "autowarn_usage")
        return
    on = choice in _ON
    state.store.set_autowarn(PLATFORM, str(chat.id), on)
    if not on:
        await say(update, context, "autowarn_off")
        return
    text = state.wording.say("autowarn_on")
    if not await sees_group_messages(context.bot, state, chat.id):
        text += "\n" + state.wording.say("autowarn_privacy_note")
    reply_to = update.effective_message.message_id
    await send_text(context.bot, state.store, chat.id, text, reply_to=reply_to)


async def sees_group_messages(bot: Bot, state: TelegramState, chat_id: int) -> bool:
    """With privacy mode on, only an admin bot sees everyday group messages."""
    if bot.bot.can_read_all_group_messages:
        return True
    return await state.admins.is_admin(bot, chat_id, bot.id, time.monotonic())


async def on_unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await say(update, context, "help")
