"""User-space CPU instructions per tool call of the engine (`perf stat -e instructions:u`), which, unlike
wall time, barely moves with the machine's load: a check of engine changes on a busy machine.

    python benchmarks/engine_instructions.py [--calls 4000] [--root DIR]

For each chain program of engine_overhead.py (5, 20, 100 statements; inline and default limits), a child
process runs it K times and once with K = 0; the difference over the K x n tool calls is the count per call,
the tools' own work included (retrieve builds a fresh result of 5 x 1 kB documents per call, as in
engine_overhead.py). `--root` runs another checkout's engine (e.g. a `git worktree` of an older commit) with
this script's tools. Counts with Linux `perf` where it can read user-space counters; elsewhere (a virtual
machine without a PMU) with valgrind's callgrind (`--counter callgrind`, about 50x slower: use fewer
`--calls` and `--modes inline`). PYTHONHASHSEED is fixed so that repeated runs count the same to within
about 1%.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

_CHILD = r"""
import sys
root, here, n, mode, k = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
sys.path[:0] = [root, here, root + "/tests"]
import pyrag_dsl  # first: engine_overhead puts this script's checkout on sys.path
assert pyrag_dsl.__file__.startswith(root), pyrag_dsl.__file__
import engine_overhead as eo  # the tools (fresh 5 x 1 kB results)
from corpus import chain_program
from pyrag_dsl import Limits, execute, parse_program
limits = Limits(tool_timeout_s=None, run_timeout_s=None) if mode == "inline" else Limits()
prog = parse_program(chain_program(n), limits=limits)
for _ in range(5):
    execute(prog, eo.TOOLS)
for _ in range(k):
    execute(prog, eo.TOOLS)
"""


_COUNTERS = {
    "perf": ["perf", "stat", "-x,", "-e", "instructions:u"],
    "callgrind": ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"],
}


def instructions(root: str, n: int, mode: str, k: int, counter: str = "perf") -> int:
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.run(
        [*_COUNTERS[counter], sys.executable, "-c", _CHILD, root, str(HERE), str(n), mode, str(k)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    for line in proc.stderr.splitlines():
        if counter == "perf" and "instructions" in line and line.split(",")[0].isdigit():
            return int(line.split(",")[0])
        if counter == "callgrind" and "Collected :" in line:
            return int(line.rsplit(":", 1)[1])
    raise SystemExit(f"{counter} printed no instruction count: {proc.stderr.strip()[-300:]}")


def pick_counter() -> str:
    """perf when it counts user-space instructions here, else callgrind."""
    if shutil.which("perf") is not None:
        probe = subprocess.run(_COUNTERS["perf"] + ["true"], capture_output=True, text=True)
        if any(line.split(",")[0].isdigit() for line in probe.stderr.splitlines()):
            return "perf"
    if shutil.which("valgrind") is not None:
        return "callgrind"
    sys.exit("needs Linux perf with user-space counters (perf stat -e instructions:u) or valgrind")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=4000, help="tool calls measured per case")
    ap.add_argument("--root", default=str(HERE.parent), help="checkout whose pyrag_dsl is measured")
    ap.add_argument(
        "--counter",
        choices=("auto", *_COUNTERS),
        default="auto",
        help="perf where it can count, else callgrind (default: auto)",
    )
    ap.add_argument("--modes", nargs="+", choices=("inline", "supervised"), default=["inline", "supervised"])
    args = ap.parse_args()
    counter = pick_counter() if args.counter == "auto" else args.counter
    root = str(Path(args.root).resolve())
    print(f"user-space instructions per tool call (thousands, {counter}), engine of {root}; tools' own work included")
    print(f"{'stmts':>5}" + "".join(f" {mode:>10}" for mode in args.modes), flush=True)
    for n in (5, 20, 100):
        k = max(1, args.calls // n)
        row = [
            (instructions(root, n, mode, k, counter) - instructions(root, n, mode, 0, counter)) / (k * n) / 1000
            for mode in args.modes
        ]
        print(f"{n:>5}" + "".join(f" {x:>10.1f}" for x in row), flush=True)


if __name__ == "__main__":
    main()
