"""The classifier, measured: per-stage latency by message length, ``fanzha classify``
throughput, model load, training, peak memory of each, and model size on disk.

Stage timings run in this process on a warm classifier (they are microseconds; a child
would add nothing). Everything that has a memory figure runs in a fresh child process.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bench.common import (
    WORK,
    child_env,
    combine,
    dir_size_mb,
    latency_summary,
    messages_of_length,
    run_child,
    write_jsonl,
)

#: Message lengths (characters) the issue asks about.
LENGTHS = {"short": 20, "typical": 120, "long": 2000}
STAGES = ("normalise", "tokenise", "vectorise", "model", "rules", "total")
#: Where the bench keeps its model: ``fanzha train`` with FANZHA_HOME=TRAIN_HOME writes it.
TRAIN_HOME = WORK / "home"
MODEL_DIR = TRAIN_HOME / "model"


# Training and loading (fresh processes) ------------------------------------------------------
def train_once() -> dict:
    """``fanzha train`` in a fresh process: wall time, the fit time it reports, peak memory."""
    TRAIN_HOME.mkdir(parents=True, exist_ok=True)
    child = run_child(["-m", "bot", "train"], env=child_env(TRAIN_HOME))
    if child.returncode != 0:
        raise RuntimeError(f"fanzha train failed:\n{child.stderr[-2000:]}")
    manifest = json.loads((MODEL_DIR / "manifest.json").read_text(encoding="utf-8"))
    return {
        "train_s": manifest["train_seconds"],
        "train_command_s": child.seconds,
        "train_peak_mb": child.peak_rss_mb,
    }


def ensure_model() -> Path:
    """The bench model, trained only when missing or stale (quick runs reuse it)."""
    from classifier.engine import Classifier

    Classifier.open(MODEL_DIR)
    return MODEL_DIR


_LOAD_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from classifier.engine import Classifier
t1 = time.perf_counter()
classifier = Classifier.open(__import__('pathlib').Path(sys.argv[1]), auto_train=False)
t2 = time.perf_counter()
classifier.classify(sys.argv[2])
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "model_load_s": t2 - t1, "first_classify_ms": (t3 - t2) * 1000}))
"""


def load_once(model_dir: Path, sample: str) -> dict:
    """Import, ``Classifier.open`` and a first message in a fresh process, with its peak memory."""
    child = run_child(["-c", _LOAD_CHILD, str(model_dir), sample], env=child_env())
    if child.returncode != 0:
        raise RuntimeError(f"loading the model failed:\n{child.stderr[-2000:]}")
    result = json.loads(child.stdout)
    result["process_s"] = child.seconds
    result["peak_mb"] = child.peak_rss_mb
    return result


# Per-stage latency (in process) ---------------------------------------------------------------
def stage_latencies(classifier, texts: list[str]) -> dict[str, list[float]]:
    """Seconds per message for each stage of ``Classifier.classify``, then the whole call.

    The stages repeat what classify does step by step (normalise; word and character
    analysers; TF-IDF vector; SVM margins and softmax; entities and red flags) through the
    scorer's public stages, ``tokens``, ``vector`` and ``probabilities``, on a batch of one
    message (the bot's path).
    """
    from classifier.entities import extract_entities
    from classifier.normalize import normalize
    from classifier.red_flags import find_red_flags

    scorer, knowledge = classifier.scorer, classifier.knowledge
    clock = time.perf_counter
    out: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for text in texts:
        t0 = clock()
        clean = normalize(text)
        t1 = clock()
        tokens = scorer.tokens([clean])
        t2 = clock()
        features = scorer.vector(tokens)
        t3 = clock()
        scorer.probabilities(features)
        t4 = clock()
        find_red_flags(clean, extract_entities(clean), knowledge)
        t5 = clock()
        for stage, seconds in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=False):
            out[stage].append(seconds)
    for text in texts:
        t0 = clock()
        classifier.classify(text)
        out["total"].append(clock() - t0)
    return out


def latency_run(classifier, messages: dict[str, list[str]]) -> dict:
    """One run over every length: {length: {stage: {median, p99, max (ms)}}}."""
    return {
        name: {stage: latency_summary(seconds) for stage, seconds in stage_latencies(classifier, texts).items()}
        for name, texts in messages.items()
    }


def first_verdict_once(home: Path, sample: str) -> dict:
    """``python -m bot check --json TEXT`` with a cached model: process start to the verdict
    printed, as a resident's first ``fanzha check`` sees it (interpreter start included)."""
    import subprocess
    import sys

    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "-m", "bot", "check", "--json", sample],
        env=child_env(home),
        capture_output=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if child.returncode != 0 or not child.stdout.strip():
        raise RuntimeError(f"fanzha check failed:\n{child.stderr.decode(errors='replace')[-2000:]}")
    return {"seconds": seconds}


# fanzha classify (fresh process, one core) ------------------------------------------------------
def classify_once(home: Path, input_path: Path, lines: int, jobs: int = 1) -> dict:
    """``python -m bot classify --jobs N < input``: messages a second, peak memory (of the
    parent process). One job is pinned to one core; more jobs use every core."""
    output = input_path.with_name(input_path.stem + "-out.jsonl")
    child = run_child(
        ["-m", "bot", "classify", "--jobs", str(jobs)],
        env=child_env(home),
        stdin_path=input_path,
        stdout_path=output,
        cpu=0 if jobs == 1 else None,
    )
    if child.returncode != 0:
        raise RuntimeError(f"fanzha classify failed:\n{child.stderr[-2000:]}")
    with output.open("rb") as fh:
        written = sum(1 for _ in fh)
    output.unlink()
    return {
        "lines": lines,
        "lines_out": written,
        "seconds": child.seconds,
        "msgs_per_s": lines / child.seconds,
        "peak_mb": child.peak_rss_mb,
    }


# The section ---------------------------------------------------------------------------------
def run(
    pool: list[str],
    *,
    repeats: int,
    per_length: dict[str, int],
    batch_lines: int,
    batch_repeats: int,
    train: bool,
    note=print,
) -> dict:
    """Everything about the classifier; every figure is a spread over *repeats* runs."""
    from bench.common import make_home
    from classifier.engine import Classifier

    result: dict = {}
    if train:
        note(f"  training the model {repeats}x (fanzha train, fresh processes)")
        result["training"] = combine([train_once() for _ in range(repeats)])
    else:
        result["training"] = {"note": "skipped in --quick (the cached bench model is reused)"}
    model_dir = ensure_model()
    result["model_size_mb"] = round(dir_size_mb(model_dir), 2)
    manifest = json.loads((model_dir / "manifest.json").read_text(encoding="utf-8"))
    result["model"] = {"version": manifest["version"], "features": manifest["features"]}

    sample = messages_of_length(pool, LENGTHS["typical"], 1, seed=99)[0]
    note(f"  model load {repeats}x (fresh processes)")
    result["load"] = combine([load_once(model_dir, sample) for _ in range(repeats)])

    home = make_home("classify", model_dir)
    note(f"  process start to first verdict {repeats * 3}x (fanzha check, fresh processes)")
    result["first_verdict"] = combine([first_verdict_once(home, sample) for _ in range(repeats * 3)])

    note("  per-stage latency: " + ", ".join(f"{per_length[k]} x {v} chars" for k, v in LENGTHS.items()))
    classifier = Classifier.open(model_dir, auto_train=False)
    messages = {k: messages_of_length(pool, n, per_length[k], seed=1) for k, n in LENGTHS.items()}
    latency_runs = []
    for _ in range(repeats):
        for texts in messages.values():  # warm caches (OpenCC, jieba) outside the timing
            for text in texts[:5]:
                classifier.classify(text)
        latency_runs.append(latency_run(classifier, messages))
    result["latency_ms"] = combine(latency_runs)

    note(f"  fanzha classify on {batch_lines:,} lines {batch_repeats}x (one core)")
    input_path = WORK / "classify-in.jsonl"
    write_jsonl(input_path, messages_of_length(pool, LENGTHS["typical"], batch_lines, seed=2))
    result["batch"] = combine([classify_once(home, input_path, batch_lines) for _ in range(batch_repeats)])
    cores = os.cpu_count() or 1
    note(f"  fanzha classify on {batch_lines:,} lines {batch_repeats}x (--jobs {cores}, every core)")
    result["batch_all_cores"] = combine(
        [classify_once(home, input_path, batch_lines, jobs=cores) for _ in range(batch_repeats)]
    )
    input_path.unlink()
    return result
