"""Named checks that say, in a resident's words, why a message looks like a scam.

Each check returns a :class:`RedFlag` with a stable ``name`` (for JSON, storage and tests),
the ``label`` shown to residents (from intents.yaml) and the ``evidence``: the words in the
message that triggered it, so the reply can quote them.
"""

from __future__ import annotations

from dataclasses import dataclass

from classifier.entities import Entity
from classifier.knowledge import Knowledge

_CONTEXT = 6


@dataclass(frozen=True)
class RedFlag:
    name: str
    label: str
    evidence: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "label": self.label, "evidence": self.evidence}


def _snippet(text: str, start: int, end: int) -> str:
    """The keyword with a few characters around it, not crossing a line break."""
    left = max(0, start - _CONTEXT)
    newline = text.rfind("\n", left, start)
    if newline != -1:
        left = newline + 1
    right = min(len(text), end + _CONTEXT)
    newline = text.find("\n", end, right)
    if newline != -1:
        right = newline
    return text[left:right].strip()


def find_red_flags(text: str, entities: list[Entity], knowledge: Knowledge) -> list[RedFlag]:
    """Red flags in normalised *text*, at most one per rule, in intents.yaml order."""
    lowered = text.lower()
    flags: list[RedFlag] = []
    for rule in knowledge.red_flags.values():
        evidence = None
        if rule.any_keyword.search(lowered):
            # The evidence is the rule's first keyword (in intents.yaml order) that occurs.
            for keyword in rule.keywords:
                at = lowered.find(keyword)
                if at != -1:
                    evidence = _snippet(text, at, at + len(keyword))
                    break
        if evidence is None and rule.name == "link_or_app":
            link = next((e for e in entities if e.kind == "url" and not e.note.startswith("official")), None)
            evidence = link.value if link else None
        if evidence is None and rule.name == "off_platform_contact":
            account = next((e for e in entities if e.kind in ("qq", "wechat")), None)
            evidence = account.value if account else None
        if evidence is not None:
            flags.append(RedFlag(rule.name, rule.label, evidence))
    return flags
