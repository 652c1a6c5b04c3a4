"""The benchmark machinery, end to end on a tiny scale: real stage timings, a real
``Classifier.open`` in a fresh process, a real ``fanzha classify`` run, the result file and
the table. No timing is asserted, only that the figures exist and are sane numbers."""

from __future__ import annotations

import json
import math

import pytest
from conftest import MODEL_CACHE

from bench import classifier_timings, report
from bench.common import combine, messages_of_length, write_jsonl

pytestmark = pytest.mark.timeout(60)

POOL = [
    "您好，您的快递在运输途中丢失，我们将双倍赔偿，请添加客服微信办理退款",
    "我是公安局民警，你的银行卡涉嫌洗钱，请把钱转到安全账户配合调查",
    "今天晚上一起吃饭吗？我七点到小区门口等你",
    "物业通知：本周六上午九点至十一点停水检修，请提前储水",
]


def sane(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_a_tiny_classifier_section_gives_sane_numbers_and_a_readable_result_file(classifier, home, tmp_path):
    messages = {name: messages_of_length(POOL, n, 6) for name, n in classifier_timings.LENGTHS.items()}
    assert all(len(t) == classifier_timings.LENGTHS[name] for name, texts in messages.items() for t in texts)
    latency = combine([classifier_timings.latency_run(classifier, messages) for _ in range(2)])
    load = combine([classifier_timings.load_once(MODEL_CACHE, POOL[0])])
    lines = tmp_path / "in.jsonl"
    write_jsonl(lines, messages["typical"] * 5)
    batch = combine([classifier_timings.classify_once(home, lines, 30)])
    first = combine([classifier_timings.first_verdict_once(home, POOL[1])])
    results = {"classifier": {"latency_ms": latency, "load": load, "batch": batch, "first_verdict": first}}

    for stage in classifier_timings.STAGES:
        cell = latency["typical"][stage]["median"]
        assert sane(cell["median"]) and cell["min"] <= cell["median"] <= cell["max"] and len(cell["runs"]) == 2
    assert batch["lines_out"]["median"] == 30
    assert sane(load["peak_mb"]["median"]) and load["peak_mb"]["median"] < 2000
    summary = report.quick_keys(results)
    for key in ("classify_msgs_per_s", "classify_median_ms", "model_load_s", "first_verdict_s"):
        assert sane(summary[key]), key
    assert summary["bot_replies_per_s"] is None  # the telegram section did not run

    path = tmp_path / "result.json"
    report.write({**results, "summary": summary}, path)
    assert json.loads(path.read_text(encoding="utf-8"))["summary"]["classify_median_ms"] == summary["classify_median_ms"]
    table = report.format_table(results)
    assert "classify typical (120 chars) median" in table and "fanzha classify, one core" in table
    assert "process start to first verdict" in table
