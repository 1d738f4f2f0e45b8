"""Engine overhead versus plain exec() and RestrictedPython, measured in one run.

    python benchmarks/engine_overhead.py [--repeat N] [--skip-hostile]

Prints (1) validation time per program and execution overhead per tool call (tools are no-ops) for
programs of 5, 20 and 100 statements, with ratios to plain exec() and to RestrictedPython
(compile_restricted + exec with its safe guards); (2) how many programs of the adversarial suite
each approach rejects before any tool call. RestrictedPython runs each hostile program in a
subprocess with a 3 s timeout and a 1 GiB memory cap, since some of them loop or eat memory.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from corpus import HOSTILE, chain_program  # noqa: E402

from pyrag_dsl import Limits, execute, parse_program, validate  # noqa: E402

try:
    from RestrictedPython import compile_restricted, safe_globals
    from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
    from RestrictedPython.Guards import full_write_guard, guarded_iter_unpack_sequence, safer_getattr
except ImportError:  # pragma: no cover
    sys.exit("RestrictedPython is needed: pip install -e '.[bench]'")


def noop_retrieve(query, topk=5):
    return ()


def noop_answer(query, docs=None):
    return "x"


TOOLS = {"retrieve": noop_retrieve, "answer": noop_answer}


def restricted_globals(tools: dict) -> dict:
    g = dict(safe_globals)
    g.update(_getattr_=safer_getattr, _getitem_=default_guarded_getitem, _getiter_=default_guarded_getiter,
             _iter_unpack_sequence_=guarded_iter_unpack_sequence, _write_=full_write_guard, **tools)
    return g


def best_of(fn, repeat: int, inner: int) -> float:
    """Best mean seconds per call of fn over `repeat` rounds of `inner` calls."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        best = min(best, (time.perf_counter() - t0) / inner)
    return best


def overhead_table(repeat: int) -> list[dict]:
    rows = []
    inline = Limits(tool_timeout_s=None, run_timeout_s=None)
    for n in (5, 20, 100):
        src = chain_program(n)
        inner = max(20, 2000 // n)
        v_ours = best_of(lambda: validate(src), repeat, inner)
        v_exec = best_of(lambda: compile(src, "<program>", "exec"), repeat, inner)
        v_rp = best_of(lambda: compile_restricted(src, "<program>", "exec"), repeat, inner)

        prog_sup = parse_program(src)  # default limits: supervised run with hard timeouts
        prog_inl = parse_program(src, limits=inline)
        code = compile(src, "<program>", "exec")
        rcode = compile_restricted(src, "<program>", "exec")
        e_sup = best_of(lambda: execute(prog_sup, TOOLS), repeat, inner) / n
        e_inl = best_of(lambda: execute(prog_inl, TOOLS), repeat, inner) / n
        e_exec = best_of(lambda: exec(code, {"__builtins__": {}, **TOOLS}), repeat, inner) / n
        e_rp = best_of(lambda: exec(rcode, restricted_globals(TOOLS)), repeat, inner) / n
        rows.append(dict(n=n, v_ours=v_ours, v_exec=v_exec, v_rp=v_rp, e_inl=e_inl, e_sup=e_sup, e_exec=e_exec,
                         e_rp=e_rp))
    return rows


_WORKER = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from RestrictedPython import compile_restricted, safe_globals
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import full_write_guard, guarded_iter_unpack_sequence, safer_getattr
calls = []
def retrieve(query, topk=5):
    calls.append("retrieve"); return ()
def answer(query, docs=None):
    calls.append("answer"); return "x"
src = sys.stdin.read()
out = {"calls": 0}
try:
    code = compile_restricted(src, "<program>", "exec")
except BaseException as e:
    out["outcome"] = "compile_error"
else:
    g = dict(safe_globals)
    g.update(_getattr_=safer_getattr, _getitem_=default_guarded_getitem, _getiter_=default_guarded_getiter,
             _iter_unpack_sequence_=guarded_iter_unpack_sequence, _write_=full_write_guard,
             retrieve=retrieve, answer=answer)
    try:
        exec(code, g)
        out["outcome"] = "ran"
    except BaseException as e:
        out["outcome"] = "runtime_error:" + type(e).__name__
out["calls"] = len(calls)
print(json.dumps(out))
"""


def restricted_python_verdict(source: str) -> dict:
    try:
        proc = subprocess.run([sys.executable, "-c", _WORKER], input=source, capture_output=True, text=True,
                              timeout=3)
    except subprocess.TimeoutExpired:
        return {"outcome": "timeout", "calls": 0}
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"outcome": f"crashed(rc={proc.returncode})", "calls": 0}


def hostile_table() -> tuple[dict, dict, list]:
    ours = {"rejected": 0, "total": len(HOSTILE)}
    for case in HOSTILE:
        if not validate(case.source).ok:
            ours["rejected"] += 1
    with ThreadPoolExecutor(2) as pool:
        verdicts = list(pool.map(lambda c: restricted_python_verdict(c.source), HOSTILE))
    rp = {"rejected": 0, "total": len(HOSTILE), "compile_error": 0, "runtime_error": 0, "ran": 0, "timeout": 0,
          "called_tools": 0, "other": 0}
    leaks = []
    for case, v in zip(HOSTILE, verdicts):
        outcome = v["outcome"]
        key = outcome.split(":")[0]
        if v["calls"]:
            rp["called_tools"] += 1
        if key in ("compile_error", "runtime_error") and not v["calls"]:
            rp["rejected"] += 1
        else:
            leaks.append((case.name, outcome, v["calls"]))
        rp[key if key in rp else "other"] += 1
    return ours, rp, leaks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="rounds per measurement; the best round counts")
    ap.add_argument("--skip-hostile", action="store_true", help="skip the RestrictedPython adversarial run")
    args = ap.parse_args()

    print(f"Python {sys.version.split()[0]}; times are the best of {args.repeat} rounds; tools are no-ops.\n")
    rows = overhead_table(args.repeat)
    print("Validation time per program (us)")
    print(f"{'stmts':>5} {'pyrag-dsl':>10} {'compile()':>10} {'RestrictedPy':>13} {'ours/compile':>13} {'ours/RP':>8}")
    for r in rows:
        print(f"{r['n']:>5} {r['v_ours'] * 1e6:>10.1f} {r['v_exec'] * 1e6:>10.1f} {r['v_rp'] * 1e6:>13.1f} "
              f"{r['v_ours'] / r['v_exec']:>13.2f} {r['v_ours'] / r['v_rp']:>8.2f}")
    print("\nExecution time per tool call (us), program already validated/compiled")
    print(f"{'stmts':>5} {'ours inline':>12} {'ours supervised':>16} {'exec()':>8} {'RestrictedPy':>13} "
          f"{'inline/exec':>12} {'inline/RP':>10} {'sup/exec':>9}")
    for r in rows:
        print(f"{r['n']:>5} {r['e_inl'] * 1e6:>12.2f} {r['e_sup'] * 1e6:>16.2f} {r['e_exec'] * 1e6:>8.2f} "
              f"{r['e_rp'] * 1e6:>13.2f} {r['e_inl'] / r['e_exec']:>12.1f} {r['e_inl'] / r['e_rp']:>10.1f} "
              f"{r['e_sup'] / r['e_exec']:>9.1f}")
    worst = max(max(r["e_inl"], r["e_sup"]) for r in rows) * 1e6
    print(f"\nEngine overhead per tool call, worst case above: {worst:.1f} us (target < 50 us): "
          f"{'MET' if worst < 50 else 'NOT MET'}")
    print("(inline: no wall-clock limits; supervised: default limits, the walk runs in a worker thread watched "
          "for per-call and per-run timeouts)")

    if args.skip_hostile:
        return
    ours, rp, leaks = hostile_table()
    print(f"\nAdversarial suite: {ours['total']} hostile programs")
    print(f"  pyrag-dsl rejects before any tool call: {ours['rejected']}/{ours['total']}")
    print(f"  RestrictedPython rejects before any tool call: {rp['rejected']}/{rp['total']} "
          f"(compile errors {rp['compile_error']}, runtime errors {rp['runtime_error']}, ran to the end "
          f"{rp['ran']}, timed out {rp['timeout']}, crashed {rp['other']}, called a tool {rp['called_tools']})")
    by_outcome: dict[str, list[str]] = {}
    for name, outcome, calls in leaks:
        by_outcome.setdefault(outcome, []).append(f"{name}({calls} calls)" if calls else name)
    for outcome, names in sorted(by_outcome.items()):
        print(f"    not rejected by RestrictedPython, {outcome}: {', '.join(names)}")


if __name__ == "__main__":
    main()
