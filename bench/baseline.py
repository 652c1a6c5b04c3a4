"""The textbook reference: jieba + TfidfVectorizer + LinearSVC, every setting at its default.

Trained on exactly the project's training set (``classifier.corpus.load_corpus``) and scored
on the challenge set it never sees, so the report can put the project's pipeline beside it
as a ratio, for speed and for accuracy. Run as a child (``python -m bench.baseline``) so
that its peak memory is its own; it prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import pickle
import tempfile
import time
from pathlib import Path

from bench.common import child_env, combine, corpus_texts, latency_summary, messages_of_length, run_child


def jieba_cut(text: str) -> list[str]:
    """``jieba.lcut`` with its defaults (a named function, so the fitted pipeline pickles)."""
    import jieba

    return jieba.lcut(text)


def build_baseline():
    """jieba.lcut (its defaults, HMM on) into a default TfidfVectorizer and a default LinearSVC."""
    import jieba
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    jieba.setLogLevel(60)
    return make_pipeline(TfidfVectorizer(tokenizer=jieba_cut, token_pattern=None), LinearSVC())


def challenge_report(labels: list[str], predicted: list[str], flagged: list[bool]) -> dict:
    """The figures ``fanzha evaluate`` prints, from classifier.evaluate.score."""
    from classifier.evaluate import score

    report = score(labels, predicted, flagged)
    return {
        "n": report.n,
        "macro_f1": round(report.macro_f1, 4),
        "accuracy": round(report.accuracy, 4),
        "fraud_recall": round(report.fraud_flagged, 4),
        "benign_false_alarm": round(report.benign_flagged, 4),
    }


def challenge_rows() -> list[tuple[str, str]]:
    from classifier.corpus import challenge_path, read_labelled

    return read_labelled(challenge_path())


def measure(single: int, batch: int) -> dict:
    """Train, time single messages and a batch, score the challenge set, size the model."""
    started = time.perf_counter()
    examples = corpus_texts()
    pipeline = build_baseline()
    fit_started = time.perf_counter()
    pipeline.fit([t for t, _ in examples], [label for _, label in examples])
    trained = time.perf_counter()

    pool = [t for t, _ in examples]
    typical = messages_of_length(pool, 120, single, seed=1)
    for text in typical[:5]:
        pipeline.predict([text])
    seconds = []
    for text in typical:
        t0 = time.perf_counter()
        pipeline.predict([text])
        seconds.append(time.perf_counter() - t0)

    texts = messages_of_length(pool, 120, batch, seed=2)
    t0 = time.perf_counter()
    pipeline.predict(texts)
    batch_seconds = time.perf_counter() - t0

    rows = challenge_rows()
    predicted = [str(p) for p in pipeline.predict([t for t, _ in rows])]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "baseline.pkl"
        path.write_bytes(pickle.dumps(pipeline))
        size_mb = path.stat().st_size / 1e6
    return {
        "train_s": trained - fit_started,
        "load_corpus_s": fit_started - started,
        "single_ms": latency_summary(seconds),
        "batch": {"lines": batch, "seconds": batch_seconds, "msgs_per_s": batch / batch_seconds},
        "model_size_mb": round(size_mb, 2),
        "challenge": challenge_report([label for _, label in rows], predicted, [p != "benign" for p in predicted]),
        "features": len(pipeline.named_steps["tfidfvectorizer"].vocabulary_),
    }


def project_on_same_work(classifier, pool: list[str], single: int, batch: int) -> dict:
    """The project's classifier on the very texts :func:`measure` uses (in process, warm)."""
    typical = messages_of_length(pool, 120, single, seed=1)
    for text in typical[:5]:
        classifier.classify(text)
    seconds = []
    for text in typical:
        t0 = time.perf_counter()
        classifier.classify(text)
        seconds.append(time.perf_counter() - t0)
    # The batch goes through classify_many a chunk at a time, as `fanzha classify` does (the
    # baseline's batch is one predict call over the whole list).
    from bot.batch import CHUNK_LINES

    texts = messages_of_length(pool, 120, batch, seed=2)
    t0 = time.perf_counter()
    for start in range(0, len(texts), CHUNK_LINES):
        classifier.classify_many(texts[start : start + CHUNK_LINES])
    batch_seconds = time.perf_counter() - t0
    rows = challenge_rows()
    verdicts = [classifier.classify(t) for t, _ in rows]
    return {
        "single_ms": latency_summary(seconds),
        "batch": {"lines": batch, "seconds": batch_seconds, "msgs_per_s": batch / batch_seconds},
        "challenge": challenge_report(
            [label for _, label in rows], [v.label for v in verdicts], [v.is_fraud for v in verdicts]
        ),
    }


def ratios(project: dict, baseline: dict) -> dict:
    """How the project's pipeline compares (>1: the project is faster / better)."""
    return {
        "single_message_speedup": round(baseline["single_ms"]["median"] / project["single_ms"]["median"], 2),
        "batch_speedup": round(project["batch"]["msgs_per_s"] / baseline["batch"]["msgs_per_s"], 2),
        "macro_f1_ratio": round(project["challenge"]["macro_f1"] / max(1e-9, baseline["challenge"]["macro_f1"]), 3),
    }


def run(classifier, pool: list[str], *, repeats: int, single: int, batch: int, note=print) -> dict:
    """Baseline (fresh child per run, for its memory) and the project on the same work."""
    note(f"  textbook baseline {repeats}x: train, {single} single messages, a batch of {batch:,}, challenge set")
    baseline_runs = []
    for _ in range(repeats):
        args = ["-m", "bench.baseline", "--single", str(single), "--batch", str(batch)]
        child = run_child(args, env=child_env())
        if child.returncode != 0:
            raise RuntimeError(f"the baseline failed:\n{child.stderr[-2000:]}")
        data = json.loads(child.stdout)
        data["peak_mb"] = child.peak_rss_mb
        baseline_runs.append(data)
    project_runs = [project_on_same_work(classifier, pool, single, batch) for _ in range(repeats)]
    return {
        "baseline": combine(baseline_runs),
        "project": combine(project_runs),
        "project_vs_baseline": combine([ratios(p, b) for p, b in zip(project_runs, baseline_runs, strict=True)]),
        "baseline_settings": "jieba.lcut (HMM on) + TfidfVectorizer() + LinearSVC(), all defaults",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=1000, help="typical messages timed one by one")
    parser.add_argument("--batch", type=int, default=20000, help="typical messages predicted in one call")
    args = parser.parse_args()
    print(json.dumps(measure(args.single, args.batch)))


if __name__ == "__main__":
    main()
