"""Embedded model speed, and what the no-AMX build flags change on this machine.

    python benchmarks/llama_speed.py [--model qwen2.5-coder-0.5b] [--rounds 7]

1. Starts the embedded llama.cpp server once and measures prompt and decode tokens/s `--rounds` times with
   the probe `pyrag-dsl doctor` uses (a one-token completion over a ~100-token prompt; the gaps between
   streamed tokens of a 32-token reply). Prints medians with min-max, the load average and the CPU.
2. Asks gcc which instruction sets `-march=native` turns on here, with and without the README's
   `-mno-amx-*` flags: where the predefined macros are identical, the build flags compile llama.cpp to the
   same code as before and cannot change its speed on this machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess

from pyrag_dsl.agents.cpu import NO_AMX_CFLAGS, cpu_flags, cpu_model
from pyrag_dsl.agents.local_server import LocalLLMServer
from pyrag_dsl.cli.doctor import measure_speed


def native_macros(extra: str = "") -> set[str]:
    out = subprocess.run(f"echo | gcc {extra} -march=native -dM -E -", shell=True, capture_output=True, text=True)
    return set(out.stdout.splitlines())


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="a model name or GGUF path (default: the default model)")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    flags = cpu_flags()
    print(f"CPU: {cpu_model()}; avx2={'avx2' in flags} avx512f={'avx512f' in flags} amx_tile={'amx_tile' in flags}")
    plain, no_amx = native_macros(), native_macros(NO_AMX_CFLAGS)
    print(
        f"gcc -march=native vs -march=native {NO_AMX_CFLAGS}: "
        + (
            "identical predefined macros (same code)"
            if plain == no_amx
            else f"differ in {sorted(m.split()[1] for m in plain ^ no_amx)}"
        )
    )
    load_before = os.getloadavg()[0]
    prompt, decode = [], []
    with LocalLLMServer(args.model) as server:
        print(f"server: {server.describe()}")
        measure_speed(server.base_url, server.alias)  # warm the caches once, not counted
        for n in range(1, args.rounds + 1):
            p, d = measure_speed(server.base_url, server.alias, nonce=n)
            prompt.append(p)
            decode.append(d)
    print(
        f"prompt tokens/s: {spread(prompt)}; decode tokens/s: {spread(decode)} ({args.rounds} rounds; "
        f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after)"
    )


if __name__ == "__main__":
    main()
