"""What the classifier concludes about one message, and the rule for when it should not guess."""

from __future__ import annotations

from dataclasses import dataclass, field

from classifier.entities import Entity
from classifier.red_flags import RedFlag

#: Fraud probability at or above which a message is flagged as fraud.
FRAUD_THRESHOLD = 0.5
#: Between this and FRAUD_THRESHOLD the model does not guess: the outcome is ``uncertain``.
UNCERTAIN_THRESHOLD = 0.35
#: At or above this a flagged message is high risk (below it: medium).
HIGH_RISK_THRESHOLD = 0.8
#: A benign verdict below this fraud probability, with no red flags, is risk "none".
NONE_RISK_THRESHOLD = 0.15

RISK_LEVELS = ("high", "medium", "low", "none")


@dataclass(frozen=True)
class Verdict:
    """A label (a category id, or ``uncertain``), how sure the model is, and why."""

    label: str
    category: str
    is_fraud: bool
    confidence: float
    fraud_probability: float
    risk: str
    scores: dict[str, float]
    reasons: list[RedFlag] = field(default_factory=list)
    top_terms: list[str] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)
    truncated: bool = False
    model_version: str = ""

    @property
    def uncertain(self) -> bool:
        return self.label == "uncertain"

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "category": self.category,
            "is_fraud": self.is_fraud,
            "confidence": round(self.confidence, 4),
            "fraud_probability": round(self.fraud_probability, 4),
            "risk": self.risk,
            "reasons": [r.to_dict() for r in self.reasons],
            "top_terms": self.top_terms,
            "entities": [e.to_dict() for e in self.entities],
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "truncated": self.truncated,
            "model_version": self.model_version,
        }


def decide(scores: dict[str, float], reasons: list[RedFlag]) -> tuple[str, str, bool, float, float, str]:
    """(label, category, is_fraud, confidence, fraud probability, risk) from probabilities.

    Fraud vs benign is decided on the summed probability of all fraud categories, so a
    scam the model can't place in one category is still flagged; the category is the most
    probable fraud class.
    """
    p_fraud = 1.0 - scores.get("benign", 0.0)
    fraud_scores = {k: v for k, v in scores.items() if k != "benign"}
    best_fraud = max(fraud_scores, key=fraud_scores.__getitem__)
    if p_fraud >= FRAUD_THRESHOLD:
        risk = "high" if p_fraud >= HIGH_RISK_THRESHOLD else "medium"
        return best_fraud, best_fraud, True, p_fraud, p_fraud, risk
    if p_fraud >= UNCERTAIN_THRESHOLD:
        return "uncertain", best_fraud, False, 1.0 - p_fraud, p_fraud, "low"
    risk = "low" if p_fraud >= NONE_RISK_THRESHOLD or reasons else "none"
    return "benign", "benign", False, 1.0 - p_fraud, p_fraud, risk
