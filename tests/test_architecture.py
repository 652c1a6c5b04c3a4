"""The layering is checked, not hoped: platform libraries stay in bot/adapters/."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLATFORM = {"telegram", "wechatpy", "starlette", "uvicorn", "rapidocr_onnxruntime", "onnxruntime"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_modules_import_no_platform_library():
    for path in (ROOT / "bot").glob("*.py"):
        bad = imports(path) & PLATFORM
        assert not bad, f"{path.name} imports {bad}; platform code belongs in bot/adapters/"


def test_classifier_imports_nothing_from_bot_nor_sklearn_on_the_serving_path():
    for path in (ROOT / "classifier").glob("*.py"):
        assert "bot" not in imports(path), path.name
    serving = [
        "engine",
        "scorer",
        "normalize",
        "tokens",
        "entities",
        "red_flags",
        "verdict",
        "knowledge",
        "model_store",
    ]
    for name in serving:
        assert "sklearn" not in imports(ROOT / "classifier" / f"{name}.py"), name


def test_answering_does_not_import_sklearn(classifier):
    import subprocess
    import sys

    code = (
        "import sys; from conftest import MODEL_CACHE; from classifier.engine import Classifier;"
        "c = Classifier.open(MODEL_CACHE, auto_train=False); c.classify('你好');"
        "print('sklearn' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT / "tests",
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert out.stdout.strip() == "False", out.stderr
