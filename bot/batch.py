"""``fanzha classify``: JSON Lines in, one verdict per line out, in the same order."""

from __future__ import annotations

import json
from typing import BinaryIO, TextIO

from classifier.engine import Classifier


def classify_line(classifier: Classifier, raw: bytes) -> dict:
    """Verdict for one input line, or {"error": ...} explaining what is wrong with it."""
    try:
        item = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {"error": "not a JSON object"}
    if not isinstance(item, dict):
        return {"error": 'each line must be a JSON object like {"text": "..."}'}
    text = item.get("text", item.get("content"))
    if not isinstance(text, str):
        return {"error": "missing 'text' (a string)"}
    result = classifier.classify(text).to_dict()
    if "id" in item:
        result = {"id": item["id"], **result}
    return result


def classify_stream(classifier: Classifier, source: BinaryIO, target: TextIO) -> dict[str, int]:
    """Classify every non-blank line of *source*; blank lines are skipped, bad ones reported."""
    lines = errors = 0
    write = target.write
    for raw in source:
        if not raw.strip():
            continue
        lines += 1
        result = classify_line(classifier, raw)
        errors += "error" in result
        write(json.dumps(result, ensure_ascii=False) + "\n")
    target.flush()
    return {"lines": lines, "errors": errors}
