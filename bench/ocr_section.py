"""Screenshot reading (bench/ocr_bench.py) as a section of the suite, in its own process.

Skipped, with a note saying what is missing, when the OCR extra (``fanzha[ocr]``) or a CJK
font to draw the test screenshots is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from bench.common import ROOT, child_env, run_child


def missing() -> str | None:
    """Why the OCR section cannot run here, or None when it can."""
    for module, what in (("rapidocr_onnxruntime", "the OCR extra"), ("PIL", "Pillow")):
        if importlib.util.find_spec(module) is None:
            return f"skipped: {what} is not installed (pip install 'fanzha[ocr]')"
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    import imagegen

    if imagegen.find_cjk_font() is None:
        return f"skipped: no CJK font to draw screenshots ({imagegen.FONT_HINT})"
    return None


def run(model_dir: Path, *, quick: bool, note=print) -> dict:
    reason = missing()
    if reason:
        note(f"  ocr: {reason}")
        return {"skipped": reason}
    note(f"  ocr: generated screenshots read by the real engine ({'quick' if quick else 'all scenes'})")
    args = ["-m", "bench.ocr_bench", "--model-dir", str(model_dir), *(["--quick"] if quick else [])]
    child = run_child(args, env=child_env(), timeout=1800)
    if child.returncode != 0:
        return {"skipped": f"failed: {child.stderr.strip().splitlines()[-1] if child.stderr.strip() else '?'}"}
    result = json.loads(child.stdout)
    result["bench_process_peak_mb"] = child.peak_rss_mb
    result["seconds"] = round(child.seconds, 1)
    return result
