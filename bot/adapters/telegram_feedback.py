"""The buttons under a verdict: quick answers, feedback, the right category, and consent.

Callback data (at most 64 bytes, and forgeable by a modified client, so every consultation
id is checked against the chat it belongs to):

- ``q:paid`` / ``q:not_paid``     a follow-up answer, handed to the core as a quick reply
- ``fb:<id>:ok`` / ``fb:<id>:bad`` "有帮助" / "判断有误"
- ``fc:<id>:<category>``           the category the person says is right
- ``fk:<id>:yes`` / ``fk:<id>:no``  may the message text be kept for review?

The text waits in memory (:class:`ReviewDrafts`) and reaches the database only on "yes".
The consent question is asked in private chats only: in a group the checked message is
often someone else's, and nobody there can agree on its author's behalf.
"""

from __future__ import annotations

import contextlib
import time

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.adapters.telegram_handlers import chat_kind, deliver, state_of
from bot.adapters.telegram_io import PLATFORM, drop_buttons, send_text
from bot.adapters.telegram_state import TelegramState
from bot.messages import IncomingMessage
from classifier.knowledge import CATEGORY_IDS, FRAUD_IDS

QUICK_PATTERN = r"^q:(paid|not_paid)$"
FEEDBACK_PATTERN = r"^fb:(\d+):(ok|bad)$"
CATEGORY_PATTERN = r"^fc:(\d+):([a-z_]+)$"
KEEP_PATTERN = r"^fk:(\d+):(yes|no)$"


def category_keyboard(state: TelegramState, consultation_id: int) -> InlineKeyboardMarkup:
    """Every scam category by its Chinese name, two a row, then "不是诈骗"."""
    categories = state.consultation.knowledge.categories
    buttons = [InlineKeyboardButton(categories[c].name, callback_data=f"fc:{consultation_id}:{c}") for c in FRAUD_IDS]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    not_fraud = state.wording.say("feedback_not_fraud_button")
    rows.append([InlineKeyboardButton(not_fraud, callback_data=f"fc:{consultation_id}:benign")])
    return InlineKeyboardMarkup(rows)


def keep_keyboard(state: TelegramState, consultation_id: int) -> InlineKeyboardMarkup:
    say, cid = state.wording.say, consultation_id
    yes = InlineKeyboardButton(say("feedback_keep_yes_button"), callback_data=f"fk:{cid}:yes")
    no = InlineKeyboardButton(say("feedback_keep_no_button"), callback_data=f"fk:{cid}:no")
    return InlineKeyboardMarkup([[yes, no]])


def _query(update: Update) -> tuple[CallbackQuery, Message] | None:
    query = update.callback_query
    if query is None or not isinstance(query.message, Message):
        return None  # the message is too old to touch ("inaccessible"): nothing to do
    return query, query.message


def _belongs(state: TelegramState, consultation_id: int, chat_id: int) -> bool:
    row = state.store.consultation(consultation_id)
    return bool(row and row["platform"] == PLATFORM and row["chat_id"] == str(chat_id))


async def _answer(query: CallbackQuery, text: str | None = None) -> None:
    """Stop the button's spinner (a late answer is refused by Telegram; that is fine)."""
    with contextlib.suppress(TelegramError):
        await query.answer(text)


async def on_quick_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """已转账 / 没有: the core's follow-up answer, as if the person had typed it."""
    found = _query(update)
    if found is None:
        return
    query, message = found
    state, chat = state_of(context), message.chat
    await _answer(query)
    await drop_buttons(message, "q:")
    kind = chat_kind(chat.type)
    incoming = IncomingMessage(
        "",
        str(chat.id),
        PLATFORM,
        kind,
        user_id=str(query.from_user.id),
        addressed=True,
        quick_reply=context.match.group(1),
    )
    outcome = state.consultation.respond(incoming, time.monotonic())
    reply_to = message.message_id if chat.type != ChatType.PRIVATE else None
    await deliver(context.bot, state, chat.id, kind, outcome, reply_to=reply_to)


async def on_feedback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """有帮助: thanks. 判断有误: ask which category is right."""
    found = _query(update)
    if found is None:
        return
    query, message = found
    state = state_of(context)
    consultation_id, helpful = int(context.match.group(1)), context.match.group(2) == "ok"
    if not _belongs(state, consultation_id, message.chat.id):
        await _answer(query)
        return
    state.store.record_feedback(consultation_id, helpful)
    await drop_buttons(message, "fb:")
    if helpful:
        await _answer(query, state.wording.say("feedback_thanks"))
        return
    await _answer(query)
    await send_text(
        context.bot,
        state.store,
        message.chat.id,
        state.wording.say("feedback_pick_category"),
        reply_to=message.message_id,
        reply_markup=category_keyboard(state, consultation_id),
    )


async def on_category(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The right category is recorded; then, separately, may we keep the text?"""
    found = _query(update)
    if found is None:
        return
    query, message = found
    state, chat = state_of(context), message.chat
    consultation_id, label = int(context.match.group(1)), context.match.group(2)
    if label not in CATEGORY_IDS or not _belongs(state, consultation_id, chat.id):
        await _answer(query)
        return
    state.store.record_feedback(consultation_id, False, corrected_label=label)
    await _answer(query)
    thanks = state.wording.say("feedback_thanks")
    with contextlib.suppress(TelegramError):
        await message.edit_text(thanks)
    draft = state.drafts.get(consultation_id, str(chat.id), time.monotonic())
    if draft is None or chat.type != ChatType.PRIVATE:
        return
    draft.label = label
    await send_text(
        context.bot,
        state.store,
        chat.id,
        state.wording.say("feedback_ask_keep"),
        reply_markup=keep_keyboard(state, consultation_id),
    )


async def on_keep(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Only an explicit "yes" stores the message text; "no" or a lost draft stores nothing."""
    found = _query(update)
    if found is None:
        return
    query, message = found
    state, chat = state_of(context), message.chat
    consultation_id, yes = int(context.match.group(1)), context.match.group(2) == "yes"
    if not _belongs(state, consultation_id, chat.id):
        await _answer(query)
        return
    draft = state.drafts.pop(consultation_id, str(chat.id), time.monotonic())
    if yes and draft is not None:
        state.store.keep_for_review(consultation_id, draft.text, draft.label)
        key = "feedback_kept"
    else:
        key = "feedback_draft_expired" if yes else "feedback_not_kept"
    await _answer(query)
    with contextlib.suppress(TelegramError):
        await message.edit_text(state.wording.say(key))


async def on_stale_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A button this version does not know (or forged data): just stop the spinner."""
    if update.callback_query is not None:
        await _answer(update.callback_query)
