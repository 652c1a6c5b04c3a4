"""The conversation core: what a resident sent in, the right replies out, for every platform.

Order of decisions for one message (first match wins):
bad input -> quick-reply answer / follow-up answer -> "I already paid" (urgent, no detour)
-> greeting, thanks, help -> a question from the knowledge base -> a number or link to check
-> classify (rate-limited) -> small talk when nothing suspicious was said.
In groups the bot speaks only when addressed, or to warn on a high-risk message when the
group's admins turned auto-warning on.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Protocol

from bot import compose
from bot.intents import find_question, is_advert, matches_intent
from bot.messages import GROUP, IncomingMessage, Outcome, Reply
from bot.session import Sessions
from classifier.engine import Classifier
from classifier.entities import extract_entities
from classifier.normalize import MAX_CHARS, chinese_share, has_content, normalize
from classifier.verdict import Verdict

#: A message is "just a number or link" when this little Chinese text remains around it.
ENTITY_ONLY_CHARS = 12
#: Short, unsuspicious, self-typed messages get the small-talk reply instead of a verdict.
SMALL_TALK_CHARS = 15
_CHECKABLE = ("url", "phone", "bank_card", "qq", "wechat")
_CJK = re.compile(r"[\u3400-\u9fff]")


class ConsultationLog(Protocol):
    """What the core needs from storage (see bot.storage.Store)."""

    def record_consultation(
        self, *, platform: str, chat_id: str, chat_kind: str, verdict: Verdict, text_hash: str
    ) -> int: ...

    def autowarn_enabled(self, platform: str, chat_id: str) -> bool: ...


class Consultation:
    """Turns an :class:`IncomingMessage` into an :class:`Outcome`; no platform types inside."""

    def __init__(
        self,
        classifier: Classifier,
        *,
        log: ConsultationLog | None = None,
        sessions: Sessions | None = None,
        hash_key: bytes = b"",
    ) -> None:
        self.classifier = classifier
        self.knowledge = classifier.knowledge
        self.wording = compose.Wording(self.knowledge)
        self.log = log
        self.sessions = sessions or Sessions()
        self._hash_key = hash_key

    # Entry points ---------------------------------------------------------------------------
    def respond(self, message: IncomingMessage, now: float) -> Outcome:
        """Decide the replies to one message. *now* is a monotonic time in seconds."""
        if message.chat_kind == GROUP and not message.addressed:
            return self._watch_group(message, now)
        if message.quick_reply:
            return self._follow_up_answer(message.chat_key, message.quick_reply)
        if message.image_unreadable:
            return Outcome("image_unreadable", [self.wording.one_block("image_unsupported")])

        text = message.image_text if message.image_text is not None else message.text
        text = text or ""
        if not text.strip():
            key = "no_text_content" if message.image_text is not None else "empty"
            return Outcome("empty", [self.wording.one_block(key)])
        clean = normalize(text)
        if not has_content(clean):
            return Outcome("no_content", [self.wording.one_block("no_text_content")])

        if message.forwarded and message.image_text is None and self.sessions.batch_window > 0:
            self.sessions.add_to_batch(message.chat_key, text, now)
            return Outcome("batched", flush_after=self.sessions.batch_window)

        typed = not message.forwarded and message.image_text is None
        if typed:
            outcome = self._conversational(message.chat_key, clean, now)
            if outcome is not None:
                return outcome
        return self._check(message, text, clean, now, typed=typed)

    def flush(self, platform: str, chat_id: str, chat_kind: str, now: float) -> Outcome | None:
        """Judge a forwarded batch once its window closed; None while more may arrive."""
        key = f"{platform}:{chat_id}"
        batch = self.sessions.take_batch(key, now)
        if batch is None:
            return None
        text = "\n".join(batch)
        message = IncomingMessage(text, chat_id, platform, chat_kind, forwarded=True, addressed=True)
        notes = (self.wording.say("batch_note", count=len(batch)),) if len(batch) > 1 else ()
        return self._check(message, text, normalize(text), now, typed=False, notes=notes)

    # Paths ----------------------------------------------------------------------------------
    def _conversational(self, chat_key: str, clean: str, now: float) -> Outcome | None:
        knowledge = self.knowledge
        if self.sessions.pending_follow_up(chat_key, now):
            if matches_intent(knowledge, "answer_not_paid", clean):
                return self._follow_up_answer(chat_key, "not_paid")
            if matches_intent(knowledge, "answer_paid", clean):
                return self._follow_up_answer(chat_key, "paid")
        if matches_intent(knowledge, "already_paid", clean):
            self.sessions.clear_follow_up(chat_key)
            return Outcome("urgent", [compose.urgent_reply(self.wording)])
        for intent in ("greeting", "thanks", "help"):
            if matches_intent(knowledge, intent, clean):
                return Outcome(intent, [self.wording.one_block(intent)])
        question = find_question(knowledge, clean)
        if question is not None:
            return Outcome(f"question:{question.id}", [compose.answer_reply(question.answer)])
        entities = [e for e in extract_entities(clean) if e.kind in _CHECKABLE]
        if entities and len(_CJK.findall(clean)) <= ENTITY_ONLY_CHARS:
            return Outcome("entity", [compose.entity_reply(self.wording, entities)])
        if chinese_share(clean) < 0.3 and sum(ch.isalpha() for ch in clean) >= 8:
            return Outcome("not_chinese", [self.wording.one_block("not_chinese")])
        return None

    def _follow_up_answer(self, chat_key: str, answer: str) -> Outcome:
        self.sessions.clear_follow_up(chat_key)
        if answer == "paid":
            return Outcome("urgent", [compose.urgent_reply(self.wording)])
        return Outcome("not_paid", [self.wording.one_block("not_paid_reply")])

    def _check(
        self,
        message: IncomingMessage,
        text: str,
        clean: str,
        now: float,
        *,
        typed: bool,
        notes: tuple[str, ...] = (),
    ) -> Outcome:
        # Per person: in a group, one member asking a lot never uses up everyone else's checks.
        asker = f"{message.chat_key}:{message.user_id}" if message.chat_kind == GROUP and message.user_id else None
        if not self.sessions.allow_check(asker or message.chat_key, now):
            return Outcome("rate_limited", [self.wording.one_block("rate_limited")])
        verdict = self.classifier.classify(text)
        if (
            typed
            and verdict.label == "benign"
            and verdict.risk == "none"
            and len(clean) <= SMALL_TALK_CHARS
            and not verdict.entities
        ):
            return Outcome("small_talk", [self.wording.one_block("small_talk")], verdict)
        consultation_id = self._record(message, clean, verdict)
        notes = list(notes)
        if message.image_text is not None:
            notes.insert(0, self.wording.say("image_read_note"))
        if len(text) > MAX_CHARS:
            notes.append(self.wording.say("too_long_note"))
        key_line = _key_line(message.image_text, verdict) if message.image_text else None
        reply = compose.verdict_reply(
            self.wording, verdict, advert=is_advert(clean), notes=tuple(notes), key_line=key_line
        )
        if consultation_id is not None:
            reply = Reply(reply.blocks, reply.quick_replies, feedback_for=consultation_id)
        if reply.quick_replies:
            self.sessions.expect_follow_up(message.chat_key, verdict.label, now)
        return Outcome("verdict", [reply], verdict, consultation_id)

    def _watch_group(self, message: IncomingMessage, now: float) -> Outcome:
        """Everyday group chat: silent, unless auto-warning is on and the message is high risk."""
        text = message.image_text or message.text or ""
        if not text.strip() or self.log is None:
            return Outcome("silent")
        if not self.log.autowarn_enabled(message.platform, message.chat_id):
            return Outcome("silent")
        verdict = self.classifier.classify(text)
        if verdict.risk != "high":
            return Outcome("silent", verdict=verdict)
        consultation_id = self._record(message, normalize(text), verdict)
        return Outcome("group_warning", [compose.group_warning(self.wording, verdict)], verdict, consultation_id)

    def _record(self, message: IncomingMessage, clean: str, verdict: Verdict) -> int | None:
        if self.log is None:
            return None
        return self.log.record_consultation(
            platform=message.platform,
            chat_id=message.chat_id,
            chat_kind=message.chat_kind,
            verdict=verdict,
            text_hash=self.text_hash(clean),
        )

    def text_hash(self, clean: str) -> str:
        """Keyed hash of normalised text: counts repeats of a campaign, reveals no text."""
        return hmac.new(self._hash_key, clean.encode(), hashlib.sha256).hexdigest()[:32]


def _key_line(image_text: str, verdict: Verdict) -> str | None:
    """The line of a screenshot that carries the most telling evidence."""
    lines = [line.strip() for line in image_text.splitlines() if line.strip()]
    if not lines:
        return None
    evidence = [r.evidence for r in verdict.reasons] + verdict.top_terms

    def weight(line: str) -> int:
        clean = normalize(line)
        return sum(1 for e in evidence if e and e in clean)

    return max(lines, key=weight)
