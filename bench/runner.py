"""``python -m bench``: every section in turn, one JSON result file, a short table.

``--quick`` runs a reduced version of everything (under a minute) and prints the JSON; the
full run takes a while (the broadcast alone is 10,000 / 30 s) and is what BENCHMARKS.md
reports. ``--only`` runs some sections (e.g. ``--only classifier,wechat``).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import report
from bench.common import ROOT, corpus_texts, messages_of_length

SECTIONS = ("classifier", "baseline", "telegram", "wechat", "broadcast", "ocr")
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "latest.json"


@dataclass(frozen=True)
class Plan:
    """How much of everything to run."""

    repeats: int
    per_length: dict[str, int]
    batch_lines: int
    batch_repeats: int
    train: bool
    baseline_single: int
    baseline_batch: int
    baseline_repeats: int
    telegram_load: dict
    telegram_repeats: int
    telegram_limits: dict
    wechat: dict
    wechat_repeats: int
    broadcast_chats: int
    ocr_quick: bool
    notes: list[str] = field(default_factory=list)


FULL = Plan(
    repeats=3,
    per_length={"short": 2000, "typical": 2000, "long": 300},
    batch_lines=50_000,
    batch_repeats=2,
    train=True,
    baseline_single=1000,
    baseline_batch=20_000,
    baseline_repeats=2,
    telegram_load={"chats": 500, "per_chat": 10, "paced_rate": 200.0, "paced_count": 2000},
    telegram_repeats=1,
    telegram_limits={"private": 100, "per_private": 3, "groups": 2, "per_group": 22},
    wechat={"rate": 200.0, "count": 3000, "followers": 500},
    wechat_repeats=2,
    broadcast_chats=10_000,
    ocr_quick=True,
    notes=["ocr: the 4 scam + 2 benign scene subset (the full scene set takes tens of minutes here)"],
)

QUICK = Plan(
    repeats=2,
    per_length={"short": 200, "typical": 200, "long": 30},
    batch_lines=1000,
    batch_repeats=1,
    train=False,
    baseline_single=100,
    baseline_batch=1000,
    baseline_repeats=1,
    telegram_load={"chats": 100, "per_chat": 2, "paced_rate": 200.0, "paced_count": 200},
    telegram_repeats=1,
    telegram_limits={"private": 10, "per_private": 2, "groups": 0, "per_group": 0},
    wechat={"rate": 200.0, "count": 400, "followers": 100},
    wechat_repeats=1,
    broadcast_chats=90,
    ocr_quick=True,
    notes=["quick: reduced counts, training not re-measured, no group in the rate-limit check, no ocr"],
)


#: Sections whose measuring side (a Bot API stand-in, a load generator) runs in this process.
LOAD_SECTIONS = ("telegram", "wechat", "broadcast")


def run_sections(plan: Plan, sections: tuple[str, ...], *, quick: bool, note=print) -> dict:
    """Run the chosen *sections* with *plan*; returns the results dict (without the machine)."""
    from bench import baseline, broadcast_load, classifier_timings, ocr_section, telegram_load, wechat_load

    results: dict = {"notes": list(plan.notes)}
    timings: dict[str, float] = {}
    pool = [text for text, _ in corpus_texts()]
    texts = messages_of_length(pool, 120, 1000, seed=5)
    model_dir = classifier_timings.ensure_model()
    classifier = None

    def classifier_once():
        nonlocal classifier
        if classifier is None:
            from classifier.engine import Classifier

            classifier = Classifier.open(model_dir, auto_train=False)
        return classifier

    for section in sections:
        started = time.perf_counter()
        note(f"[{section}]")
        if section in LOAD_SECTIONS:
            # The stand-ins and load generators run in this process: keep its collector from
            # walking what earlier sections loaded (the model, the corpus, scikit-learn) while
            # it is the bot's counterpart. Full runs measured the bot slower than --only runs.
            gc.collect()
            gc.freeze()
        if section == "classifier":
            results[section] = classifier_timings.run(
                pool,
                repeats=plan.repeats,
                per_length=plan.per_length,
                batch_lines=plan.batch_lines,
                batch_repeats=plan.batch_repeats,
                train=plan.train,
                note=note,
            )
        elif section == "baseline":
            results[section] = baseline.run(
                classifier_once(),
                pool,
                repeats=plan.baseline_repeats,
                single=plan.baseline_single,
                batch=plan.baseline_batch,
                note=note,
            )
        elif section == "telegram":
            results[section] = telegram_load.run(
                model_dir,
                texts,
                repeats=plan.telegram_repeats,
                load=plan.telegram_load,
                limits=plan.telegram_limits,
                note=note,
            )
        elif section == "wechat":
            results[section] = wechat_load.run(model_dir, texts, repeats=plan.wechat_repeats, **plan.wechat, note=note)
        elif section == "broadcast":
            results[section] = broadcast_load.run(model_dir, classifier_once(), chats=plan.broadcast_chats, note=note)
        elif section == "ocr":
            if quick:
                results[section] = {"skipped": "not in --quick (screenshots take minutes to read)"}
            else:
                results[section] = ocr_section.run(model_dir, quick=plan.ocr_quick, note=note)
        timings[section] = round(time.perf_counter() - started, 1)
    results["section_seconds"] = timings
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced run (< 1 minute); prints the JSON")
    parser.add_argument("--output", type=Path, help=f"result file (default: {DEFAULT_OUTPUT.relative_to(ROOT)})")
    parser.add_argument("--only", help=f"comma-separated sections to run ({','.join(SECTIONS)})")
    args = parser.parse_args(argv)
    if args.only:
        chosen = tuple(s.strip() for s in args.only.split(",") if s.strip())
        unknown = sorted(set(chosen) - set(SECTIONS))
        if unknown:
            parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
        args.sections = chosen
    else:
        args.sections = SECTIONS
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    output = args.output or (DEFAULT_OUTPUT.with_name("quick.json") if args.quick else DEFAULT_OUTPUT)

    def note(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    started = time.perf_counter()
    results = {
        "command": "python -m bench" + (" --quick" if args.quick else ""),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": report.machine(),
    }
    results.update(run_sections(plan, args.sections, quick=args.quick, note=note))
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    results["summary"] = report.quick_keys(results)
    report.write(results, output)
    note("\n" + report.format_table(results))
    note(f"\nresults: {output}  ({results['total_seconds']:.0f} s)")
    if args.quick:
        print(json.dumps(report.without_nan(results["summary"]), indent=2))
    return 0
