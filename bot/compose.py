"""Compose replies from intents.yaml wording: every sentence a resident reads comes from there.

Functions here are pure: knowledge + facts in, :class:`Reply` out. They decide content and
order, never markup (that is :mod:`bot.render`'s job).
"""

from __future__ import annotations

from bot.messages import Block, QuickReply, Reply
from classifier.entities import Entity
from classifier.knowledge import Knowledge
from classifier.verdict import Verdict

#: Below this confidence a flagged verdict carries the "not certain" note.
SURE_ENOUGH = 0.75
MAX_FLAGS_SHOWN = 4
MAX_QUOTE = 40


class Wording:
    """Reply texts with the hotline facts filled in."""

    def __init__(self, knowledge: Knowledge) -> None:
        self.knowledge = knowledge
        hot = knowledge.hotline
        self._common = {"consult": hot.consult, "police": hot.police, "app": hot.app, "rule": hot.rule}

    def say(self, key: str, **values: object) -> str:
        text = self.knowledge.replies[key]
        assert isinstance(text, str), key
        return text.format(**self._common, **values)

    def say_all(self, key: str, **values: object) -> list[str]:
        items = self.knowledge.replies[key]
        items = (items,) if isinstance(items, str) else items
        return [item.format(**self._common, **values) for item in items]

    def one_block(self, key: str, **values: object) -> Reply:
        return Reply((Block(self.say(key, **values)),))

    def follow_up_options(self) -> tuple[QuickReply, ...]:
        return (
            QuickReply(self.say("follow_up_paid_option"), "paid"),
            QuickReply(self.say("follow_up_not_paid_option"), "not_paid"),
        )


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 1] + "…"


def verdict_reply(
    wording: Wording,
    verdict: Verdict,
    *,
    advert: bool = False,
    notes: tuple[str, ...] = (),
    key_line: str | None = None,
) -> Reply:
    """The answer to a message that was checked: banner, script, signs, advice, referral."""
    knowledge = wording.knowledge
    blocks: list[Block] = [Block(n, "note") for n in notes]
    if key_line:
        blocks.append(Block(wording.say("image_key_line", text=_quote(key_line)), "quote"))
    quick: tuple[QuickReply, ...] = ()
    if verdict.is_fraud:
        category = knowledge.categories[verdict.category]
        banner = "banner_high" if verdict.risk == "high" else "banner_medium"
        script = "script_line" if verdict.risk == "high" else "script_line_medium"
        blocks += [
            Block(wording.say(banner), "banner"),
            Block(wording.say(script, name=category.name, explanation=category.explanation)),
        ]
        blocks += _flag_blocks(wording, verdict)
        blocks.append(Block(wording.say("advice_heading"), "heading"))
        blocks += [Block(a, "item") for a in category.advice]
        blocks.append(Block(wording.say("referral")))
        if verdict.confidence < SURE_ENOUGH:
            blocks.append(Block(wording.say("low_confidence_note"), "note"))
        blocks.append(Block(wording.say("follow_up_question"), "heading"))
        quick = wording.follow_up_options()
    elif verdict.uncertain:
        blocks += [Block(wording.say("banner_uncertain"), "banner"), Block(wording.say("uncertain_body"))]
        blocks += _flag_blocks(wording, verdict)
        blocks.append(Block(wording.say("referral")))
        blocks.append(Block(wording.say("follow_up_question"), "heading"))
        quick = wording.follow_up_options()
    else:
        blocks += [
            Block(wording.say("banner_low"), "banner"),
            Block(wording.say("benign_advert" if advert else "benign_body")),
            Block(wording.say("benign_rule")),
        ]
    return Reply(tuple(blocks), quick)


def _flag_blocks(wording: Wording, verdict: Verdict) -> list[Block]:
    if not verdict.reasons:
        return []
    blocks = [Block(wording.say("flags_heading"), "heading")]
    for flag in verdict.reasons[:MAX_FLAGS_SHOWN]:
        blocks.append(Block(f"{flag.label}（“{_quote(flag.evidence)}”）", "item"))
    return blocks


def urgent_reply(wording: Wording) -> Reply:
    """Already paid or gave a code: the few steps that matter in the first minutes."""
    blocks = [Block(wording.say("urgent_heading"), "banner")]
    blocks += [Block(step, "item") for step in wording.say_all("urgent_steps")]
    return Reply(tuple(blocks))


_PHONE_KEYS = {
    "overseas": "entity_phone_overseas",
    "service": "entity_phone_service",
    "hotline": "entity_phone_service",
    "mobile": "entity_phone_mobile",
    "landline": "entity_phone_landline",
}


def entity_reply(wording: Wording, entities: list[Entity]) -> Reply:
    """What can be said about numbers, links and accounts from the text alone."""
    blocks = [Block(wording.say("entity_heading"), "heading")]
    for entity in entities:
        line = _describe_entity(wording, entity)
        if line:
            blocks.append(Block(line, "item"))
    blocks.append(Block(wording.say("entity_never_safe")))
    return Reply(tuple(blocks))


def _describe_entity(wording: Wording, entity: Entity) -> str | None:
    value = entity.value
    if entity.kind == "url":
        if entity.note == "shortener":
            return wording.say("entity_url_shortener", entity=value)
        if entity.note == "ip":
            return wording.say("entity_url_ip", entity=value)
        if entity.note.startswith("lookalike:"):
            return wording.say("entity_url_lookalike", entity=value, name=entity.note.split(":", 1)[1])
        if entity.note.startswith("official:"):
            return wording.say("entity_url", entity=value)
        return wording.say("entity_url_plain", entity=value)
    if entity.kind == "phone":
        return wording.say(_PHONE_KEYS.get(entity.note, "entity_phone_mobile"), entity=value)
    if entity.kind == "bank_card":
        return wording.say("entity_card", entity=value)
    if entity.kind in ("qq", "wechat"):
        return wording.say("entity_account", entity=value)
    return None


def answer_reply(text: str) -> Reply:
    return Reply((Block(text),))


def group_warning(wording: Wording, verdict: Verdict) -> Reply:
    name = wording.knowledge.categories[verdict.category].name
    return wording.one_block("group_warning", name=name)
