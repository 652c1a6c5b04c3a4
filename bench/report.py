"""The result file and the short table printed beside it: medians, with [min-max] over runs."""

from __future__ import annotations

import json
import math
import platform
import subprocess
from pathlib import Path

from bench.common import ROOT

#: (label, path into the results, unit, target test or None, target text)
ROWS: list[tuple[str, tuple[str, ...], str, object, str]] = [
    (
        "classify typical (120 chars) median",
        ("classifier", "latency_ms", "typical", "total", "median"),
        "ms",
        lambda v: v <= 2,
        "<= 2 ms",
    ),
    (
        "classify typical p99",
        ("classifier", "latency_ms", "typical", "total", "p99"),
        "ms",
        lambda v: v <= 10,
        "<= 10 ms",
    ),
    ("classify short (20) median", ("classifier", "latency_ms", "short", "total", "median"), "ms", None, ""),
    ("classify long (2,000) median", ("classifier", "latency_ms", "long", "total", "median"), "ms", None, ""),
    ("fanzha classify, one core", ("classifier", "batch", "msgs_per_s"), "msg/s", lambda v: v >= 1000, ">= 1,000"),
    (
        "fanzha classify, every core (--jobs)",
        ("classifier", "batch_all_cores", "msgs_per_s"),
        "msg/s",
        lambda v: v >= 5000,
        ">= 5,000 (issue 2)",
    ),
    ("fanzha classify peak memory", ("classifier", "batch", "peak_mb"), "MB", lambda v: v <= 250, "<= 250 MB"),
    ("model load (Classifier.open)", ("classifier", "load", "model_load_s"), "s", lambda v: v <= 0.5, "<= 0.5 s"),
    (
        "process start to first verdict (fanzha check)",
        ("classifier", "first_verdict", "seconds"),
        "s",
        lambda v: v <= 0.5,
        "<= 0.5 s (issue 2)",
    ),
    ("model loaded, peak memory", ("classifier", "load", "peak_mb"), "MB", None, ""),
    ("training (fit)", ("classifier", "training", "train_s"), "s", None, ""),
    ("training peak memory", ("classifier", "training", "train_peak_mb"), "MB", None, ""),
    ("baseline single message median", ("baseline", "baseline", "single_ms", "median"), "ms", None, ""),
    (
        "project vs baseline, single message",
        ("baseline", "project_vs_baseline", "single_message_speedup"),
        "x",
        None,
        "",
    ),
    ("project vs baseline, batch", ("baseline", "project_vs_baseline", "batch_speedup"), "x", None, ""),
    ("challenge macro-F1, project", ("baseline", "project", "challenge", "macro_f1"), "", None, ""),
    ("challenge macro-F1, baseline", ("baseline", "baseline", "challenge", "macro_f1"), "", None, ""),
    (
        "telegram burst replies/s (limiter off)",
        ("telegram", "capacity", "burst_replies_per_s"),
        "/s",
        lambda v: v >= 200,
        ">= 200",
    ),
    (
        "telegram p99 at offered rate",
        ("telegram", "capacity", "paced_queued_to_reply_ms", "p99"),
        "ms",
        lambda v: v < 1000,
        "< 1 s",
    ),
    ("telegram bot peak memory", ("telegram", "capacity", "bot_peak_mb"), "MB", lambda v: v <= 300, "<= 300 MB"),
    ("wechat answered within 5 s", ("wechat", "answered_within_5s_share"), "share", lambda v: v >= 1.0, "100%"),
    ("wechat p99", ("wechat", "latency_ms", "p99"), "ms", None, ""),
    ("broadcast over the rate floor", ("broadcast", "over_floor"), "share", lambda v: v <= 0.10, "<= 10%"),
]


def dig(data: dict, path: tuple[str, ...]):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def table_rows(results: dict) -> list[tuple[str, str, str, str, str]]:
    """(what, median, [min-max], target, met) for every row whose figure was measured."""
    rows = []
    for label, path, unit, test, target in ROWS:
        cell = dig(results, path)
        if cell is None:
            continue
        if isinstance(cell, dict):
            median, low, high = cell.get("median"), cell.get("min"), cell.get("max")
            runs = len(cell.get("runs", []))
        else:
            median, low, high, runs = cell, None, None, 1
        if median is None:
            continue
        span = f"[{_fmt(low)}-{_fmt(high)}] n={runs}" if runs > 1 else "n=1"
        met = "" if test is None else ("met" if test(median) else "MISSED")
        rows.append((label, f"{_fmt(median)} {unit}".strip(), span, target, met))
    return rows


def format_table(results: dict) -> str:
    rows = [("measure", "median", "spread", "target", ""), *table_rows(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def machine() -> dict:
    """What the numbers came from."""
    import os

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        ),
        0,
    )
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": commit,
    }


def quick_keys(results: dict) -> dict:
    """The flat keys ``--quick`` promises (medians)."""

    def median(*path):
        cell = dig(results, path)
        return cell.get("median") if isinstance(cell, dict) else cell

    return {
        "classify_msgs_per_s": median("classifier", "batch", "msgs_per_s"),
        "classify_median_ms": median("classifier", "latency_ms", "typical", "total", "median"),
        "classify_p99_ms": median("classifier", "latency_ms", "typical", "total", "p99"),
        "model_load_s": median("classifier", "load", "model_load_s"),
        "first_verdict_s": median("classifier", "first_verdict", "seconds"),
        "bot_replies_per_s": median("telegram", "capacity", "burst_replies_per_s"),
        "bot_p99_s": _seconds(median("telegram", "capacity", "paced_queued_to_reply_ms", "p99")),
        "bot_peak_mb": median("telegram", "capacity", "bot_peak_mb"),
        "wechat_answered_within_5s": median("wechat", "answered_within_5s_share"),
        "broadcast_over_floor": median("broadcast", "over_floor"),
    }


def _seconds(ms):
    return None if ms is None else round(ms / 1000, 4)


def without_nan(value):
    """JSON has no NaN: an unmeasured figure is null."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, dict):
        return {k: without_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_nan(v) for v in value]
    return value


def write(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(without_nan(results), ensure_ascii=False, indent=2, allow_nan=False, default=str)
    path.write_text(text + "\n", encoding="utf-8")


def markdown_table(results: dict) -> str:
    """The same rows as :func:`format_table`, as a Markdown table (for BENCHMARKS.md)."""
    lines = ["| measure | median | spread [min-max], runs | target | |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(markdown_table(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))))
