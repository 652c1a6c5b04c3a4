"""Score the classifier: per-category precision/recall/F1, confusion, false alarms, misses.

The figures that matter for residents are the share of benign messages flagged (false
alarms) and the share of scams missed; per-category accuracy among flagged scams tells
whether the advice in the reply fits the script.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from classifier.knowledge import CATEGORY_IDS

LABELS = (*CATEGORY_IDS, "uncertain")


@dataclass
class Report:
    n: int
    per_label: dict[str, dict[str, float]]
    confusion: dict[str, dict[str, int]]
    benign_flagged: float
    fraud_missed: float
    fraud_flagged: float
    category_accuracy: float
    accuracy: float
    macro_f1: float
    uncertain_share: float
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "fraud_flagged": round(self.fraud_flagged, 4),
            "fraud_missed": round(self.fraud_missed, 4),
            "benign_flagged": round(self.benign_flagged, 4),
            "category_accuracy": round(self.category_accuracy, 4),
            "uncertain_share": round(self.uncertain_share, 4),
            "per_label": self.per_label,
            "confusion": self.confusion,
            **self.extra,
        }


def score(truth: Sequence[str], predicted: Sequence[str], flagged: Sequence[bool]) -> Report:
    """Metrics for true labels vs predicted labels (``uncertain`` allowed) and fraud flags.

    ``uncertain`` counts as not flagged for scams (a miss) and as flagged for benign
    messages (the reply is not the reassuring one), so it never flatters the figures.
    """
    n = len(truth)
    pairs = Counter(zip(truth, predicted, strict=True))
    labels = [label for label in LABELS if any(label in (t, p) for t, p in pairs)]
    per_label: dict[str, dict[str, float]] = {}
    f1s = []
    for label in labels:
        tp = pairs[(label, label)]
        predicted_n = sum(c for (t, p), c in pairs.items() if p == label)
        actual_n = sum(c for (t, p), c in pairs.items() if t == label)
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / actual_n if actual_n else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": actual_n,
        }
        if actual_n:
            f1s.append(f1)
    confusion = {
        t: {p: pairs[(t, p)] for p in labels if pairs[(t, p)]} for t in labels if any(pairs[(t, p)] for p in labels)
    }
    benign = [i for i, t in enumerate(truth) if t == "benign"]
    fraud = [i for i, t in enumerate(truth) if t != "benign"]
    benign_flagged = (
        sum(1 for i in benign if flagged[i] or predicted[i] == "uncertain") / len(benign) if benign else 0.0
    )
    fraud_hits = [i for i in fraud if flagged[i]]
    fraud_flagged = len(fraud_hits) / len(fraud) if fraud else 0.0
    category_accuracy = sum(1 for i in fraud_hits if predicted[i] == truth[i]) / len(fraud_hits) if fraud_hits else 0.0
    return Report(
        n=n,
        per_label=per_label,
        confusion=confusion,
        benign_flagged=benign_flagged,
        fraud_missed=1 - fraud_flagged if fraud else 0.0,
        fraud_flagged=fraud_flagged,
        category_accuracy=category_accuracy,
        accuracy=sum(c for (t, p), c in pairs.items() if t == p) / n if n else 0.0,
        macro_f1=sum(f1s) / len(f1s) if f1s else 0.0,
        uncertain_share=sum(1 for p in predicted if p == "uncertain") / n if n else 0.0,
    )


def format_report(title: str, report: Report) -> str:
    """A plain-text table for the terminal."""
    lines = [
        f"== {title} ({report.n} messages)",
        f"scams flagged as fraud : {report.fraud_flagged:6.1%}   (missed {report.fraud_missed:.1%})",
        f"benign flagged (alarm) : {report.benign_flagged:6.1%}",
        f"right category, flagged: {report.category_accuracy:6.1%}",
        f"accuracy {report.accuracy:.1%}  macro-F1 {report.macro_f1:.3f}  uncertain {report.uncertain_share:.1%}",
        "",
        f"{'label':26} {'prec':>6} {'recall':>6} {'F1':>6} {'n':>5}",
    ]
    for label, m in report.per_label.items():
        lines.append(f"{label:26} {m['precision']:6.2f} {m['recall']:6.2f} {m['f1']:6.2f} {m['support']:5d}")
    labels = list(report.per_label)
    short = {label: label[:5] for label in labels}
    lines += ["", "confusion (rows: true, columns: predicted)", " " * 26 + " ".join(f"{short[p]:>5}" for p in labels)]
    for t in labels:
        row = report.confusion.get(t, {})
        lines.append(f"{t:26} " + " ".join(f"{row.get(p, 0):5d}" for p in labels))
    return "\n".join(lines)


def cross_validate(knowledge, backend: str, folds: int = 5, seed: int = 0) -> tuple[Report, list]:
    """Grouped, stratified k-fold CV of the whole pipeline (template fills share a group,
    so near-duplicates never sit on both sides of a split)."""
    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    from classifier.corpus import load_corpus
    from classifier.pipeline import build_pipeline
    from classifier.tokens import Tokenizer
    from classifier.verdict import decide

    examples = load_corpus(knowledge)
    texts = [e.text for e in examples]
    labels = np.array([e.label for e in examples])
    groups = [e.source if ":t" in e.source else f"example{i}" for i, e in enumerate(examples)]
    predicted: list[str] = [""] * len(examples)
    flagged: list[bool] = [False] * len(examples)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    tokenizer = Tokenizer(backend, knowledge.domain_words())
    for train_idx, test_idx in splitter.split(texts, labels, groups):
        pipeline = build_pipeline(tokenizer)
        pipeline.fit([texts[i] for i in train_idx], labels[train_idx])
        probs = pipeline.predict_proba([texts[i] for i in test_idx])
        classes = list(pipeline.classes_)
        for row, i in zip(probs, test_idx, strict=True):
            label, _, is_fraud, *_ = decide(dict(zip(classes, row, strict=True)), [])
            predicted[i], flagged[i] = label, is_fraud
    return score(list(labels), predicted, flagged), [
        (examples[i], predicted[i]) for i in range(len(examples)) if predicted[i] != labels[i]
    ]
