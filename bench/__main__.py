"""``python -m bench [--quick]`` from a repo checkout (see bench/runner.py)."""

import sys
from pathlib import Path

# The Bot API stand-in and the screenshot generator live with the tests (tests/fakes,
# tests/imagegen.py); the benchmark reuses them, so it runs from a checkout.
_ROOT = Path(__file__).resolve().parents[1]
for _path in (str(_ROOT), str(_ROOT / "tests")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from bench.runner import main  # noqa: E402

sys.exit(main())
