"""Screenshot reading, measured: character accuracy, scams still flagged, latency, memory.

Draws every scene of tests/imagegen.py (16 scams, 8 benign) in every look (SMS and chat,
720x1280 and 1080x1920, light and dark, seeded noise and JPEG quality), reads each with the
real OCR engine and prints one JSON object:

- ``char_accuracy``: 1 - edit distance / length, the bubbles' true text against what was read
  (whitespace ignored), mean and worst;
- ``scam_flagged_share``: generated scam screenshots the classifier still flags after OCR
  (the same texts typed are the baseline); ``benign_flagged_share`` for the other side; the
  same for the raw OCR text (engine order, no layout) to show what the layout step buys;
- ``chrome_leaks``: status-bar / title / input-bar texts that reached the message;
- ``latency_s``: per screenshot (decode, downscale, OCR, layout), median and p95 by size, plus
  the engine's one-time load, a 1440x3200 picture (downscaled) and a long screenshot (tiled);
- ``memory_mb``: resident set before the engine, after loading it, and the peak.

Usage: .venv/bin/python bench/ocr_bench.py [--quick] [--seed N] [--model-dir DIR]; it is also the
``ocr`` section of ``python -m bench`` (bench/ocr_section.py runs it in its own process).
Needs fanzha[ocr] and a CJK font (tests/imagegen.py names both).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import imagegen  # noqa: E402


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def char_accuracy(truth: str, read: str) -> float:
    truth, read = "".join(truth.split()), "".join(read.split())
    return max(0.0, 1.0 - edit_distance(truth, read) / max(1, len(truth)))


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "median": round(statistics.median(values), 3),
        "p95": round(percentile(values, 0.95), 3),
        "max": round(max(values), 3),
    }


class RecordingEngine:
    """The real engine, keeping the raw boxes of the last call (for the no-layout baseline)."""

    def __init__(self, engine) -> None:
        self.engine, self.boxes = engine, []

    def __call__(self, image):
        self.boxes = list(self.engine(image))
        return self.boxes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 scam and 2 benign scenes only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model-dir", type=Path, help="classifier model (default: FANZHA_HOME's)")
    args = parser.parse_args()
    if imagegen.find_cjk_font() is None:
        sys.exit(f"no CJK font: {imagegen.FONT_HINT}")

    from bot.config import Settings
    from bot.ocr import read_image_bytes
    from classifier.engine import Classifier

    classifier = Classifier.open(args.model_dir or Settings.from_env().model_dir)
    rss_before = rss_mb()
    started = time.perf_counter()
    from bot.adapters.ocr_engine import load_engine

    engine = RecordingEngine(load_engine())
    load_seconds = time.perf_counter() - started
    rss_loaded = rss_mb()

    scams, benign = imagegen.SCAM_SCENES, imagegen.BENIGN_SCENES
    if args.quick:
        scams, benign = scams[:4], benign[:2]
    looks = imagegen.looks(args.seed)
    rows = []
    for scene in (*scams, *benign):
        for look in looks:
            shot = imagegen.render(scene, look)
            t0 = time.perf_counter()
            read = read_image_bytes(shot.image_bytes, engine=engine)
            seconds = time.perf_counter() - t0
            raw = " ".join(b.text for b in engine.boxes)
            rows.append(
                {
                    "scene": scene.name,
                    "scam": scene.scam,
                    "size": f"{look.size[0]}x{look.size[1]}",
                    "seconds": seconds,
                    "accuracy": char_accuracy("\n".join(shot.truth), read.text),
                    "bubbles_ok": len(read.bubbles) == len(shot.truth),
                    "leaks": [c for c in shot.chrome if "".join(c.split()) in "".join(read.text.split())],
                    "flagged": classifier.classify(read.text).is_fraud,
                    "raw_flagged": classifier.classify(raw).is_fraud,
                }
            )

    extra = {}
    for name, scene, size in (
        ("1440x3200_downscaled", scams[0], (1440, 3200)),
        ("1080x5400_long_tiled", _long_scene(scams), (1080, 5400)),
    ):
        shot = imagegen.render(scene, imagegen.Look("chat", size, seed=args.seed))
        t0 = time.perf_counter()
        read = read_image_bytes(shot.image_bytes, engine=engine)
        extra[name] = {
            "seconds": round(time.perf_counter() - t0, 3),
            "read_size": list(read.read_size),
            "accuracy": round(char_accuracy("\n".join(shot.truth), read.text), 4),
            "bubbles": f"{len(read.bubbles)}/{len(shot.truth)}",
        }

    def share(items, key) -> float:
        return round(sum(r[key] for r in items) / max(1, len(items)), 4)

    scam_rows = [r for r in rows if r["scam"]]
    benign_rows = [r for r in rows if not r["scam"]]
    typed_flagged = sum(classifier.classify(s.text).is_fraud for s in scams) / len(scams)
    result = {
        "images": len(rows),
        "scenes": {"scam": len(scams), "benign": len(benign)},
        "looks_per_scene": len(looks),
        "char_accuracy": {
            "mean": round(statistics.mean(r["accuracy"] for r in rows), 4),
            "min": round(min(r["accuracy"] for r in rows), 4),
            "share_exact": share([{"x": r["accuracy"] == 1.0} for r in rows], "x"),
        },
        "bubbles_separated_share": share(rows, "bubbles_ok"),
        "chrome_leaks": sum(len(r["leaks"]) for r in rows),
        "scam_flagged_share": share(scam_rows, "flagged"),
        "scam_flagged_share_typed_baseline": round(typed_flagged, 4),
        "scam_flagged_share_raw_ocr_no_layout": share(scam_rows, "raw_flagged"),
        "benign_flagged_share": share(benign_rows, "flagged"),
        "benign_flagged_share_raw_ocr_no_layout": share(benign_rows, "raw_flagged"),
        "missed_scams": sorted({f"{r['scene']}@{r['size']}" for r in scam_rows if not r["flagged"]}),
        "latency_s": {
            "engine_load": round(load_seconds, 3),
            "all": summary([r["seconds"] for r in rows]),
            **{
                size: summary([r["seconds"] for r in rows if r["size"] == size])
                for size in sorted({r["size"] for r in rows})
            },
            **extra,
        },
        "memory_mb": {
            "rss_before_engine": round(rss_before, 1),
            "rss_after_engine_load": round(rss_loaded, 1),
            "rss_now": round(rss_mb(), 1),
            "peak_rss": round(rss_mb("VmHWM"), 1),
            "bot_process_reading_one_picture": fresh_process_memory(scams[0], args.seed),
        },
    }
    print(json.dumps(result, ensure_ascii=False, indent=2))


_CHILD = """
import json, sys
from pathlib import Path
def mb(field):
    line = next(x for x in Path('/proc/self/status').read_text().splitlines() if x.startswith(field + ':'))
    return round(int(line.split()[1]) / 1024, 1)
import bot.ocr
before = mb('VmHWM')
for path in sys.argv[1:]:
    bot.ocr.read_image_file(path)
print(json.dumps({'rss_before_first_picture': before, 'rss_after': mb('VmRSS'), 'peak_rss': mb('VmHWM')}))
"""


def fresh_process_memory(scene, seed: int) -> dict:
    """Memory a bot process pays for pictures: a fresh interpreter with only bot.ocr, per screen size."""
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        for size in imagegen.SIZES:
            path = Path(folder) / f"{size[0]}.png"
            path.write_bytes(imagegen.render(scene, imagegen.Look("chat", size, seed=seed)).image_bytes)
            child = subprocess.run(
                [sys.executable, "-c", _CHILD, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120
            )
            out[f"{size[0]}x{size[1]}"] = json.loads(child.stdout) if child.returncode == 0 else child.stderr[-300:]
    return out


def _long_scene(scenes) -> imagegen.Scene:
    """Several conversations one after the other: what a 'long screenshot' of a chat looks like."""
    bubbles = tuple(b for scene in scenes[:6] for b in scene.bubbles)
    return imagegen.Scene("long", True, "群聊", bubbles)


if __name__ == "__main__":
    main()
