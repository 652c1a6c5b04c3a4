"""``fanzha classify``: JSON Lines in, one verdict per line out, in the same order.

Large inputs are classified by several worker processes forked after the model is loaded
(they share it copy-on-write, so a worker starts in milliseconds); output order is kept.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from typing import BinaryIO, TextIO

from classifier.engine import Classifier

#: Lines handed to a worker at a time: big enough to hide the hand-off, small enough to stream.
CHUNK_LINES = 256

_worker_classifier: Classifier | None = None  # set in the parent before the workers fork


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


def _classify_chunk(classifier: Classifier, chunk: list[bytes]) -> tuple[str, int, int]:
    """(output text, bad lines, lines) for a chunk of input lines."""
    results = [classify_line(classifier, raw) for raw in chunk]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
    return text, sum("error" in r for r in results), len(chunk)


def _in_worker(chunk: list[bytes]) -> tuple[str, int, int]:
    assert _worker_classifier is not None, "workers are forked after the classifier is set"
    return _classify_chunk(_worker_classifier, chunk)


def _chunks(source: Iterable[bytes]) -> Iterator[list[bytes]]:
    lines = (raw for raw in source if raw.strip())
    while chunk := list(islice(lines, CHUNK_LINES)):
        yield chunk


def classify_stream(classifier: Classifier, source: BinaryIO, target: TextIO, jobs: int = 1) -> dict[str, int]:
    """Classify every non-blank line of *source*; blank lines are skipped, bad ones reported.

    With ``jobs`` > 1 and more than one chunk of input, chunks go to that many forked workers.
    """
    global _worker_classifier
    chunks = _chunks(source)
    head = list(islice(chunks, 2))
    parallel = jobs > 1 and len(head) > 1 and "fork" in multiprocessing.get_all_start_methods()
    lines = errors = 0
    with contextlib.ExitStack() as stack:
        if parallel:
            _worker_classifier = classifier
            pool = stack.enter_context(multiprocessing.get_context("fork").Pool(jobs))
            results = pool.imap(_in_worker, chain(head, chunks))
        else:
            results = (_classify_chunk(classifier, chunk) for chunk in chain(head, chunks))
        for text, bad, n in results:
            target.write(text)
            lines, errors = lines + n, errors + bad
    target.flush()
    return {"lines": lines, "errors": errors}
