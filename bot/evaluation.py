"""``fanzha evaluate``: the model on an operator's data, or CV plus the held-out sets."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from classifier.corpus import HELD_OUT_SETS, read_labelled
from classifier.engine import Classifier
from classifier.evaluate import Report, cross_validate, score
from classifier.knowledge import CATEGORY_IDS, KnowledgeError
from classifier.resources import resource_path


@dataclass
class EvaluationResult:
    reports: dict[str, Report] = field(default_factory=dict)
    errors: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)


def parse_label_map(spec: str | None) -> dict[str, str]:
    """'theirs=ours,...' or a JSON file {"theirs": "ours"}; targets must be category ids."""
    if not spec:
        return {}
    path = Path(spec)
    if path.exists():
        try:
            mapping = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise KnowledgeError(f"--label-map {path}: not a JSON object: {exc}") from None
    else:
        mapping = {}
        for pair in spec.split(","):
            if "=" not in pair:
                raise KnowledgeError(f"--label-map: {pair!r} should look like theirs=ours")
            theirs, ours = pair.split("=", 1)
            mapping[theirs.strip()] = ours.strip()
    bad = sorted(v for v in mapping.values() if v not in CATEGORY_IDS)
    if bad:
        raise KnowledgeError(f"--label-map: {', '.join(bad)} are not category ids ({', '.join(CATEGORY_IDS)})")
    return mapping


def score_dataset(classifier: Classifier, rows: list[tuple[str, str]]) -> tuple[Report, list]:
    unknown = sorted({label for _, label in rows if label not in CATEGORY_IDS})
    if unknown:
        raise KnowledgeError(f"labels {', '.join(unknown[:10])} are not category ids: map them with --label-map")
    verdicts = [classifier.classify(text) for text, _ in rows]
    report = score([label for _, label in rows], [v.label for v in verdicts], [v.is_fraud for v in verdicts])
    errors = [(text, label, v.label) for (text, label), v in zip(rows, verdicts, strict=True) if v.label != label]
    return report, errors


def run_evaluation(
    classifier: Classifier, settings, data_path: Path | None, label_map: str | None, folds: int
) -> EvaluationResult:
    result = EvaluationResult()
    if data_path is not None:
        rows = read_labelled(data_path, parse_label_map(label_map))
        result.reports[data_path.name], result.errors[data_path.name] = score_dataset(classifier, rows)
        return result
    cv, cv_errors = cross_validate(classifier.knowledge, classifier.scorer.word_analyzer.tokenizer.backend, folds)
    result.reports[f"cross-validation ({folds} folds)"] = cv
    result.errors["cv"] = [(e.text, e.label, p) for e, p in cv_errors]
    for title, relative in HELD_OUT_SETS.items():
        path = resource_path(relative)
        if path.exists():
            result.reports[title], result.errors[path.stem] = score_dataset(classifier, read_labelled(path))
    return result
