"""Aggregate statistics for officers: what is circulating, how often the bot was right.

Everything here is counts over stored verdicts: no message text (there is none to read) and
no chat ids in exports, so a report can leave the building.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import timedelta

from bot.storage import Store, utcnow


def collect_stats(store: Store, days: int = 30, top: int = 10) -> dict:
    """Counts over the last *days* days (per category, per day, red flags, campaigns)."""
    since = (utcnow() - timedelta(days=days)).isoformat()
    rows = store.query(
        "SELECT day, category, label, is_fraud, red_flags, text_hash FROM consultations WHERE created_at >= ?",
        (since,),
    )
    total = len(rows)
    flagged = sum(r["is_fraud"] for r in rows)
    per_category = Counter(r["label"] for r in rows)
    per_day: dict[str, dict[str, int]] = {}
    for r in rows:
        day = per_day.setdefault(r["day"], {"consultations": 0, "flagged": 0})
        day["consultations"] += 1
        day["flagged"] += r["is_fraud"]
    flags = Counter(f for r in rows for f in r["red_flags"].split(",") if f)
    repeated = Counter(r["text_hash"] for r in rows)
    labels = {r["text_hash"]: r["label"] for r in rows}
    feedback = store.query(
        "SELECT f.helpful FROM feedback f JOIN consultations c ON c.id = f.consultation_id WHERE c.created_at >= ?",
        (since,),
    )
    helpful = sum(f["helpful"] for f in feedback)
    return {
        "days": days,
        "consultations": total,
        "flagged": flagged,
        "flagged_share": round(flagged / total, 4) if total else 0.0,
        "per_category": dict(per_category.most_common()),
        "per_day": dict(sorted(per_day.items())),
        "feedback": {
            "answers": len(feedback),
            "helpful": helpful,
            "accuracy": round(helpful / len(feedback), 4) if feedback else None,
        },
        "red_flags": dict(flags.most_common(top)),
        "repeated_messages": [
            {"hash": h[:12], "count": n, "label": labels[h]} for h, n in repeated.most_common(top) if n > 1
        ],
    }


def format_stats(stats: dict) -> str:
    lines = [
        f"最近 {stats['days']} 天：咨询 {stats['consultations']} 次，判为诈骗 {stats['flagged']} 次"
        f"（{stats['flagged_share']:.0%}）",
        "",
        "按类别 / per category:",
    ]
    lines += [f"  {label:26} {n:6d}" for label, n in stats["per_category"].items()]
    lines += ["", "按天 / per day (consultations, flagged):"]
    lines += [f"  {day}  {v['consultations']:6d} {v['flagged']:6d}" for day, v in stats["per_day"].items()]
    fb = stats["feedback"]
    accuracy = f"{fb['accuracy']:.0%}" if fb["accuracy"] is not None else "-"
    lines += ["", f"反馈 / feedback: {fb['answers']} answers, {fb['helpful']} helpful, accuracy {accuracy}"]
    lines += ["", "常见疑点 / most-seen red flags:"]
    lines += [f"  {name:26} {n:6d}" for name, n in stats["red_flags"].items()]
    if stats["repeated_messages"]:
        lines += ["", "重复出现的消息（可能是正在传播的骗局）/ repeated messages:"]
        lines += [f"  {m['hash']}  x{m['count']:<5d} {m['label']}" for m in stats["repeated_messages"]]
    return "\n".join(lines)


def plot_stats(stats: dict, path) -> None:
    """Per-day consultations and flagged counts as a PNG (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = list(stats["per_day"])
    totals = [stats["per_day"][d]["consultations"] for d in days]
    flagged = [stats["per_day"][d]["flagged"] for d in days]
    fig, ax = plt.subplots(figsize=(max(6, len(days) * 0.4), 4), dpi=100)
    ax.bar(days, totals, label="consultations", color="#9ecae1")
    ax.bar(days, flagged, label="flagged as fraud", color="#de2d26")
    ax.set_title(f"fanzha consultations per day (last {stats['days']} days)")
    ax.set_ylabel("messages")
    ax.legend()
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def export_rows(store: Store, days: int) -> list[dict]:
    """Per day and category counts for a police report; no chat ids, hashes or text."""
    since = (utcnow() - timedelta(days=days)).isoformat()
    return store.query(
        "SELECT day, label, risk, platform, count(*) AS consultations FROM consultations "
        "WHERE created_at >= ? GROUP BY day, label, risk, platform ORDER BY day, label, risk, platform",
        (since,),
    )


def export_text(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, ensure_ascii=False, indent=2)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["day", "label", "risk", "platform", "consultations"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
