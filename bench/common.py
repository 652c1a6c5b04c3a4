"""Shared helpers: summaries with spread, fresh child processes with their peak memory,
a throwaway FANZHA_HOME, and synthetic messages of a chosen length.

Measurements that include memory run in a fresh interpreter and read that child's own
``ru_maxrss`` from ``os.wait4``, so nothing the benchmark itself imported is counted.
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The benchmark's own cache (model, databases): never the user's FANZHA_HOME.
WORK = ROOT / ".cache" / "bench"


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (*share* in 0..1) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def latency_summary(seconds: Sequence[float], unit: float = 1000.0) -> dict[str, float]:
    """Median, p99 and max of one run's latencies, in milliseconds by default."""
    if not seconds:
        return {"n": 0, "median": math.nan, "p99": math.nan, "max": math.nan}
    return {
        "n": len(seconds),
        "median": statistics.median(seconds) * unit,
        "p99": percentile(seconds, 0.99) * unit,
        "max": max(seconds) * unit,
    }


def spread(values: Sequence[float]) -> dict[str, object]:
    """A metric over repeated runs: its median, min, max and the runs themselves."""
    clean = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not clean:
        return {"median": None, "min": None, "max": None, "runs": []}
    return {
        "median": _round(statistics.median(clean)),
        "min": _round(min(clean)),
        "max": _round(max(clean)),
        "runs": [_round(v) for v in clean],
    }


def _round(value: float) -> float:
    if value == 0 or math.isinf(value):
        return value
    digits = max(0, 3 - math.floor(math.log10(abs(value))))
    return round(value, digits)


def combine(runs: list[dict]) -> dict:
    """Many runs of the same flat-or-nested dict of numbers, as one dict of :func:`spread`s.

    Non-numeric leaves (notes, booleans) are kept from the first run; booleans are AND-ed.
    """
    first = runs[0]
    out: dict = {}
    for key, value in first.items():
        values = [r.get(key) for r in runs]
        if isinstance(value, bool):
            out[key] = all(bool(v) for v in values)
        elif isinstance(value, int | float):
            out[key] = spread([v for v in values if isinstance(v, int | float)])
        elif isinstance(value, dict):
            out[key] = combine([v for v in values if isinstance(v, dict)])
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class ChildResult:
    stdout: str
    stderr: str
    returncode: int
    seconds: float
    peak_rss_mb: float


def run_child(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    stdin_path: Path | None = None,
    stdout_path: Path | None = None,
    cpu: int | None = None,
    timeout: float = 900,
) -> ChildResult:
    """Run ``python *args*`` in a fresh process: its output, wall time and its own peak RSS.

    *args* are what follows ``python`` (``["-m", "bot", "classify"]`` or ``["-c", code, ...]``);
    :mod:`bench.peak` runs them and records the peak. *cpu* pins the child to one core
    (``fanzha classify`` is measured "on one core").
    """
    import tempfile

    def pin() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    peak_file = Path(tempfile.mkstemp(prefix="peak-")[1])
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        stdin = stdin_path.open("rb") if stdin_path else subprocess.DEVNULL
        stdout = stdout_path.open("wb") if stdout_path else out_file
        try:
            started = time.perf_counter()
            process = subprocess.Popen(
                peak_command(peak_file, args),
                cwd=ROOT,
                env=env,
                stdin=stdin,
                stdout=stdout,
                stderr=err_file,
                preexec_fn=pin,
            )
            status, _ = wait_with_usage(process, timeout)
            seconds = time.perf_counter() - started
        finally:
            for handle in (stdin, stdout):
                if handle not in (subprocess.DEVNULL, out_file):
                    handle.close()
        out_file.seek(0)
        err_file.seek(0)
        return ChildResult(
            out_file.read().decode("utf-8", "replace"),
            err_file.read().decode("utf-8", "replace"),
            os.waitstatus_to_exitcode(status),
            seconds,
            read_peak_mb(peak_file),
        )


def peak_command(peak_file: Path, args: Sequence[str]) -> list[str]:
    """``python -m bench.peak PEAK_FILE *args``: *args* run as usual, the peak RSS is recorded."""
    return [sys.executable, "-m", "bench.peak", str(peak_file), *args]


def read_peak_mb(peak_file: Path) -> float:
    """The peak RSS (MB) a :func:`peak_command` child recorded; NaN if it recorded none."""
    try:
        return int(peak_file.read_text() or 0) / 1024 or math.nan
    except (OSError, ValueError):
        return math.nan
    finally:
        peak_file.unlink(missing_ok=True)


def proc_peak_mb(pid: int) -> float:
    """VmHWM of a running process (MB): read just before stopping a server child, whose own
    shutdown may end in a re-raised signal that skips :mod:`bench.peak`'s record."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def wait_with_usage(process: subprocess.Popen, timeout: float):
    """Reap *process* with ``os.wait4`` for its CPU time (Popen.wait would drop its rusage)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return status, usage
        if time.monotonic() > deadline:
            process.kill()
            os.wait4(process.pid, 0)
            process.returncode = -9
            raise TimeoutError(f"{' '.join(map(str, process.args))[:80]} ran longer than {timeout:.0f}s")
        time.sleep(0.01)


def child_env(home: Path | None = None, **settings: str) -> dict[str, str]:
    """The environment for a child: this one, one BLAS thread, *home* and FANZHA_* *settings*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FANZHA_")}
    env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    if home is not None:
        env["FANZHA_HOME"] = str(home)
    env.update({f"FANZHA_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def make_home(name: str, model_dir: Path) -> Path:
    """A fresh FANZHA_HOME under the bench cache whose model is *model_dir* (no retraining)."""
    import shutil

    home = WORK / "homes" / name
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    (home / "model").symlink_to(model_dir.resolve(), target_is_directory=True)
    return home


def dir_size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.resolve().rglob("*") if p.is_file()) / 1e6


# Messages ---------------------------------------------------------------------------------
def corpus_texts() -> list[tuple[str, str]]:
    """(text, label) of the training corpus: realistic material to cut messages from."""
    from classifier.corpus import load_corpus
    from classifier.knowledge import load_knowledge

    return [(e.text, e.label) for e in load_corpus(load_knowledge())]


def messages_of_length(pool: Sequence[str], length: int, count: int, seed: int = 0) -> list[str]:
    """*count* messages of exactly *length* characters, made by joining random pool texts."""
    rng = random.Random(f"{seed}:{length}")
    out = []
    for _ in range(count):
        parts: list[str] = []
        size = 0
        while size <= length:
            text = rng.choice(pool)
            parts.append(text)
            size += len(text) + 1
        out.append("\n".join(parts)[:length])
    return out


def write_jsonl(path: Path, texts: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for text in texts:
            fh.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
