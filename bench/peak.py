"""Run a module or script as ``__main__`` and record the process's peak RSS when it ends.

``python -m bench.peak OUT -m bot classify`` behaves like ``python -m bot classify`` and then
writes VmHWM (KiB) to OUT. The kernel's ``ru_maxrss`` of a child is not usable for this: a
child started by vfork inherits the parent's high-water mark across exec, so a child of a
big benchmark process would report the benchmark's memory instead of its own.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def peak_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    out, target = Path(sys.argv[1]), sys.argv[2:]
    try:
        if target[0] == "-m":
            sys.argv = [target[1], *target[2:]]
            runpy.run_module(target[1], run_name="__main__", alter_sys=True)
        elif target[0] == "-c":
            sys.argv = ["-c", *target[2:]]
            exec(compile(target[1], "<bench>", "exec"), {"__name__": "__main__"})
        else:
            sys.argv = target
            runpy.run_path(target[0], run_name="__main__")
    finally:
        out.write_text(str(peak_kib()))


if __name__ == "__main__":
    main()
