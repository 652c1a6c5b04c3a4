"""Recognise what a resident means when they are not sending a message to check.

Deliberately simple keyword rules from intents.yaml: officers can read and change them, and
every decision can be explained. Long texts are never taken for chat (``max_chars``), so a
forwarded scam is always classified.
"""

from __future__ import annotations

import re

from classifier.knowledge import Knowledge, Question

_PUNCT = re.compile(r"[\s\W_]+")
_QUESTION_WORDS = re.compile(r"什么|吗|怎么|如何|是不是|是否|真的|哪|么|呢|\?|？|啥|咋|能不能|可以")
#: A question longer than this is a description to classify, not a definition to look up.
MAX_QUESTION_CHARS = 30


def _bare(text: str) -> str:
    return _PUNCT.sub("", text.lower())


def matches_intent(knowledge: Knowledge, name: str, text: str) -> bool:
    """True when *text* is short enough for intent *name* and has one of its keywords.

    One-character keywords ("是", "1") must be the whole message, so they never match
    inside ordinary words.
    """
    intent = knowledge.intents[name]
    lowered = text.strip().lower()
    if not lowered or len(lowered) > intent.max_chars:
        return False
    bare = _bare(lowered)
    for keyword in intent.keywords:
        if len(keyword) <= 1:
            if bare == keyword:
                return True
        elif keyword in lowered:
            return True
    return False


def find_question(knowledge: Knowledge, text: str) -> Question | None:
    """The knowledge-base question a short question is about, if any."""
    lowered = text.strip().lower()
    if len(lowered) > MAX_QUESTION_CHARS or not _QUESTION_WORDS.search(lowered):
        return None
    for question in knowledge.questions:
        if any(k in lowered for k in question.keywords):
            return question
    return None


def is_advert(text: str) -> bool:
    """A marketing SMS: a 【sender】 signature and an unsubscribe line."""
    return bool(re.search(r"【[^】]{1,20}】", text)) and bool(
        re.search(r"退订|拒收|回t|回td|回n|回复r|td退|不再接收", text.lower())
    )
