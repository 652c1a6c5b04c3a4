"""Thin PTB handlers for messages, groups and forwarded batches: read the update, build an
:class:`IncomingMessage`, await the core, send what it decided.

Private chats get an answer to everything. In groups the bot speaks only when addressed (a
mention, a reply to one of its messages, ``/check``), or, when admins turned auto-warning
on, with one short warning on a high-risk message. Photos and image documents go to
:class:`bot.ocr.PictureReader` (per-chat limit, OCR in a worker thread), downloaded only
when the core will look at them.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time

from telegram import Bot, Message, MessageEntity, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.adapters.telegram_io import PLATFORM, send_reply, show_typing, typing_if_slow
from bot.adapters.telegram_state import STATE_KEY, PendingBatch, TelegramState
from bot.messages import GROUP, PRIVATE, IncomingMessage, Outcome
from bot.ocr import MAX_FILE_BYTES, ImageRefused

log = logging.getLogger("fanzha.telegram")

#: A flush that finds the batch window not quite closed (clock jitter) tries again this soon.
FLUSH_RETRY_SECONDS = 0.1
MAX_FLUSH_RETRIES = 50


def state_of(context: ContextTypes.DEFAULT_TYPE) -> TelegramState:
    """The adapter's state, from a handler's context (or the Application: both have bot_data)."""
    return context.bot_data[STATE_KEY]


def chat_kind(chat_type: str) -> str:
    return PRIVATE if chat_type == ChatType.PRIVATE else GROUP


def text_of(message: Message) -> str:
    """The words of a message: its text, or a picture's caption."""
    for value in (message.text, message.caption):
        if isinstance(value, str) and value:
            return value
    return ""


def has_picture(message: Message) -> bool:
    document = message.document
    return bool(message.photo) or bool(document and str(document.mime_type or "").startswith("image/"))


async def download_picture(message: Message) -> bytes:
    """The bytes of a photo (its largest size) or an image document, size-checked first."""
    item = message.photo[-1] if message.photo else message.document
    if item is None:
        raise ImageRefused("the message has no picture", "not_an_image")
    if item.file_size and item.file_size > MAX_FILE_BYTES:
        raise ImageRefused(f"the file has {item.file_size} bytes", "too_large")
    try:
        file = await item.get_file()
        return bytes(await file.download_as_bytearray())
    except BadRequest as exc:  # too big for the Bot API, or gone; network errors go to on_error
        raise ImageRefused(f"Telegram did not hand over the file ({exc.message})", "download_failed") from None


def incoming_from(
    message: Message,
    chat_id: int,
    kind: str,
    *,
    user_id: str,
    addressed: bool,
    text: str | None = None,
    may_batch: bool = False,
) -> IncomingMessage:
    """The neutral message for *message*: its text or a picture's caption (the picture itself
    is read by :func:`answer`).

    Only a forward sent straight to the bot in a private chat is marked forwarded (and so
    waits for its batch); one named by /check is checked at once.
    """
    text = text_of(message) if text is None else text
    forwarded = may_batch and kind == PRIVATE and message.forward_origin is not None and not has_picture(message)
    return IncomingMessage(
        text, str(chat_id), PLATFORM, kind, user_id=user_id, forwarded=forwarded, addressed=addressed
    )


async def answer(state: TelegramState, message: Message, incoming: IncomingMessage) -> Outcome:
    """The core's outcome for *incoming*; a picture is read first (downloaded only if needed)."""
    if has_picture(message):
        return await state.pictures.respond(incoming, lambda: download_picture(message))
    return state.consultation.respond(incoming, time.monotonic())


async def deliver(
    bot: Bot,
    state: TelegramState,
    chat_id: int | str,
    kind: str,
    outcome: Outcome,
    *,
    text: str = "",
    reply_to: int | None = None,
) -> None:
    """Send the core's replies; remember the checked text (in memory) for the consent question."""
    if outcome.consultation_id is not None and kind == PRIVATE and text:
        state.drafts.put(outcome.consultation_id, str(chat_id), text, time.monotonic())
    for reply in outcome.replies:
        if await send_reply(bot, state.store, state.wording, chat_id, reply, reply_to=reply_to) is None:
            return


async def consult(
    bot: Bot,
    context: ContextTypes.DEFAULT_TYPE,
    message: Message,
    *,
    chat_id: int,
    kind: str,
    user_id: str,
    reply_to: int | None = None,
    text: str | None = None,
    may_batch: bool = False,
) -> None:
    """Ask the core about *message* (or *text* in its place) and answer; with *may_batch* a
    forwarded message waits for its batch."""
    state = state_of(context)
    incoming = incoming_from(message, chat_id, kind, user_id=user_id, addressed=True, text=text, may_batch=may_batch)
    picture = has_picture(message)
    if picture:
        await show_typing(bot, chat_id)  # reading a picture always takes a while
    async with contextlib.nullcontext() if picture else typing_if_slow(bot, chat_id):
        outcome = await answer(state, message, incoming)
        if outcome.action == "batched":
            # The answer comes when the batch window closes: show that it is on its way.
            await show_typing(bot, chat_id)
            hold_for_batch(context, state, str(chat_id), kind, incoming.text, outcome.flush_after or 0.0)
            return
        checked = outcome.image_text if outcome.image_text is not None else incoming.text
        await deliver(bot, state, chat_id, kind, outcome, text=checked, reply_to=reply_to)


# Forwarded batches ----------------------------------------------------------------------------
def hold_for_batch(
    context: ContextTypes.DEFAULT_TYPE, state: TelegramState, chat_id: str, kind: str, text: str, delay: float
) -> None:
    pending = state.batches.setdefault(chat_id, PendingBatch(kind))
    pending.texts.append(text)
    pending.seq += 1
    context.job_queue.run_once(flush_job, delay + 0.05, data=(chat_id, pending.seq, 0), name=f"flush:{chat_id}")


async def flush_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """The batch window of a chat may have closed: judge its forwarded messages as one."""
    state = state_of(context)
    chat_id, seq, retries = context.job.data
    pending = state.batches.get(chat_id)
    if pending is None or pending.seq != seq:
        return  # answered already, forgotten, or a later forward has its own flush
    outcome = state.consultation.flush(PLATFORM, chat_id, pending.chat_kind, time.monotonic())
    if outcome is None:
        if retries < MAX_FLUSH_RETRIES:
            context.job_queue.run_once(flush_job, FLUSH_RETRY_SECONDS, data=(chat_id, seq, retries + 1))
        return
    del state.batches[chat_id]
    async with typing_if_slow(context.bot, chat_id):
        await deliver(context.bot, state, chat_id, pending.chat_kind, outcome, text="\n".join(pending.texts))


async def flush_all_batches(bot: Bot, state: TelegramState) -> None:
    """On shutdown: answer every batch still waiting, so no forwarded message goes unanswered."""
    later = time.monotonic() + state.consultation.sessions.batch_window + 1
    for chat_id, pending in list(state.batches.items()):
        outcome = state.consultation.flush(PLATFORM, chat_id, pending.chat_kind, later)
        state.batches.pop(chat_id, None)
        if outcome is not None:
            await deliver(bot, state, chat_id, pending.chat_kind, outcome, text="\n".join(pending.texts))


# Private chats -------------------------------------------------------------------------------
async def on_private_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return
    user = update.effective_user
    user_id = str(user.id) if user else ""
    await consult(context.bot, context, message, chat_id=chat.id, kind=PRIVATE, user_id=user_id, may_batch=True)


# Groups ---------------------------------------------------------------------------------------
def mentions_bot(message: Message, bot: Bot) -> bool:
    handle = f"@{bot.username}".lower()
    for entity, value in {**message.parse_entities(), **message.parse_caption_entities()}.items():
        if entity.type == MessageEntity.MENTION and value.lower() == handle:
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot.id:
            return True
    return False


def replies_to_bot(message: Message, bot: Bot) -> bool:
    target = message.reply_to_message
    return bool(target and target.from_user and target.from_user.id == bot.id)


def without_mention(text: str, bot: Bot) -> str:
    return re.sub(re.escape(f"@{bot.username}"), "", text, flags=re.IGNORECASE).strip()


async def on_group_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return
    bot, state = context.bot, state_of(context)
    user_id = str(update.effective_user.id) if update.effective_user else ""
    mentioned, to_bot = mentions_bot(message, bot), replies_to_bot(message, bot)
    if not (mentioned or to_bot):
        await watch(bot, state, message, chat.id, user_id)
        return
    target, text = message, without_mention(text_of(message), bot) if mentioned else None
    if mentioned and not text and message.reply_to_message and not to_bot:
        target, text = message.reply_to_message, None  # "@bot" in reply to a suspicious message: check that one
    await consult(
        bot, context, target, chat_id=chat.id, kind=GROUP, user_id=user_id, reply_to=message.message_id, text=text
    )


async def watch(bot: Bot, state: TelegramState, message: Message, chat_id: int, user_id: str) -> None:
    """Everyday group chat: the core stays silent unless auto-warning is on and it is high risk
    (a picture is read only then, within the group's pictures-a-minute limit)."""
    incoming = IncomingMessage(text_of(message), str(chat_id), PLATFORM, GROUP, user_id=user_id, addressed=False)
    outcome = await answer(state, message, incoming)
    if outcome.action == "group_warning" and state.may_warn(str(chat_id), time.monotonic()):
        await deliver(bot, state, chat_id, GROUP, outcome, reply_to=message.message_id)


async def on_my_membership(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Added to a group: introduce once. Blocked or removed: stop sending tips there."""
    change = update.my_chat_member
    if change is None:
        return
    state, chat = state_of(context), change.chat
    old, new = change.old_chat_member.status, change.new_chat_member.status
    gone = (ChatMemberStatus.LEFT, ChatMemberStatus.BANNED)
    if new in gone:
        state.store.unsubscribe(PLATFORM, str(chat.id))
        log.info("removed from or blocked in chat %s; unsubscribed", chat.id)
    elif old in gone and chat.type != ChatType.PRIVATE:
        reply = state.wording.one_block("group_intro")
        await send_reply(context.bot, state.store, state.wording, chat.id, reply)


async def on_migration(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A group became a supergroup: its settings, subscription and history follow the new id."""
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return
    if message.migrate_to_chat_id:
        old, new = chat.id, message.migrate_to_chat_id
    elif message.migrate_from_chat_id:
        old, new = message.migrate_from_chat_id, chat.id
    else:
        return
    state_of(context).store.move_chat(PLATFORM, str(old), str(new))
    log.info("group %s migrated to %s; settings moved", old, new)
