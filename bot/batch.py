"""``fanzha classify``: JSON Lines in, one verdict per line out, in the same order.

Lines are classified a chunk at a time (one batch for the model's arithmetic). Large inputs
are classified by several worker processes forked after the model is loaded (they share it
copy-on-write, so a worker starts in milliseconds); output order is kept.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from typing import BinaryIO

import orjson

from classifier.engine import Classifier

#: Lines handed to a worker at a time: big enough to hide the hand-off, small enough to stream.
CHUNK_LINES = 256

_worker_classifier: Classifier | None = None  # set in the parent before the workers fork


def parse_line(raw: bytes) -> tuple[str | None, dict]:
    """(the text to classify, the fields to put in front of its verdict) for one input line;
    the text is None when the line is bad, and the fields say why."""
    try:
        item = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, {"error": "not a JSON object"}
    if not isinstance(item, dict):
        return None, {"error": 'each line must be a JSON object like {"text": "..."}'}
    if isinstance(item.get("id"), float):
        item = json.loads(raw)  # orjson reads integers beyond 64 bits as floats: keep the id exact
    text = item.get("text", item.get("content"))
    if not isinstance(text, str):
        return None, {"error": "missing 'text' (a string)"}
    return text, ({"id": item["id"]} if "id" in item else {})


def _classify_chunk(classifier: Classifier, chunk: list[bytes]) -> tuple[bytes, int, int]:
    """(output lines, bad lines, lines) for a chunk of input lines."""
    parsed = [parse_line(raw) for raw in chunk]
    verdicts = iter(classifier.classify_many([text for text, _ in parsed if text is not None]))
    out = bytearray()
    for text, head in parsed:
        result = head if text is None else {**head, **next(verdicts).to_dict()}
        out += _dumps_line(result)
    return bytes(out), sum(text is None for text, _ in parsed), len(chunk)


def _dumps_line(result: dict) -> bytes:
    try:
        return orjson.dumps(result, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:  # an id orjson cannot write (an integer beyond 64 bits)
        return json.dumps(result, ensure_ascii=False).encode() + b"\n"


def _in_worker(chunk: list[bytes]) -> tuple[bytes, int, int]:
    assert _worker_classifier is not None, "workers are forked after the classifier is set"
    return _classify_chunk(_worker_classifier, chunk)


def _chunks(source: Iterable[bytes]) -> Iterator[list[bytes]]:
    lines = (raw for raw in source if raw.strip())
    while chunk := list(islice(lines, CHUNK_LINES)):
        yield chunk


def classify_stream(classifier: Classifier, source: BinaryIO, target: BinaryIO, jobs: int = 1) -> dict[str, int]:
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
