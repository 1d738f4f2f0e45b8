"""Engine overhead versus plain exec() and RestrictedPython, measured in one run.

    python benchmarks/engine_overhead.py [--repeat N] [--skip-hostile]

Prints (1) validation time per program and execution overhead per tool call for programs of 5, 20
and 100 statements, with ratios to plain exec() and to RestrictedPython (compile_restricted + exec
with its safe guards). Tools return realistic results at no cost: `retrieve` 5 documents of about
1 kB (as our retrievers do: a fresh Docs of fresh Doc objects per call), `answer` a short text; the same
tools for every approach, so the difference is the engine's own work (conversion, trace events, sizes,
memo keys). --shared-result returns one Docs object every time instead (earlier rounds did that; the
engine's per-object memo then hides the sizing and hashing a real result costs). (2) CPU time and
peak memory of validating hostile sources at the size cap. (3) How many programs of the
adversarial suite each approach rejects before any tool call. RestrictedPython runs each hostile
program in a subprocess with a 3 s timeout and a 1 GiB memory cap, since some loop or eat memory.
Times are medians over --repeat rounds, with min-max; the approaches take turns within each round and the
overhead is taken per round (this VM's speed drifts by up to 2x); say how loaded the machine was (uptime).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from corpus import HOSTILE, chain_program  # noqa: E402

from pyrag_dsl import Doc, Docs, Limits, execute, parse_program, validate  # noqa: E402

try:
    from RestrictedPython import compile_restricted, safe_globals
    from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
    from RestrictedPython.Guards import full_write_guard, guarded_iter_unpack_sequence, safer_getattr
except ImportError:  # pragma: no cover
    sys.exit("RestrictedPython is needed: pip install -e '.[bench]'")


_WORDS = (
    "the river city was founded by a merchant family in the year when the old bridge opened and "
    "its first mayor served two terms before the war "
).split()
DOCS = Docs(
    tuple(
        Doc(
            id=str(1000 + i),
            title=f"Passage {i}",
            text=" ".join(_WORDS[(i + j) % len(_WORDS)] for j in range(190))[:1000],
            score=10.0 - i,
        )
        for i in range(5)
    )
)  # 5 documents of about 1 kB


SHARED_RESULT = False  # --shared-result: return the one DOCS object every time (what rounds before 2026-11-26 did)


def noop_retrieve(query, topk=5):
    """A fresh result per call, as our retrievers build one (new Doc objects over the corpus's strings)."""
    if SHARED_RESULT:
        return DOCS
    return Docs(tuple(Doc(d.id, d.title, d.text, d.score) for d in DOCS.items))


def noop_answer(query, docs=None):
    return "December 7, 1973"


TOOLS = {"retrieve": noop_retrieve, "answer": noop_answer}


def restricted_globals(tools: dict) -> dict:
    g = dict(safe_globals)
    g.update(
        _getattr_=safer_getattr,
        _getitem_=default_guarded_getitem,
        _getiter_=default_guarded_getiter,
        _iter_unpack_sequence_=guarded_iter_unpack_sequence,
        _write_=full_write_guard,
        **tools,
    )
    return g


class Timing(tuple):
    """(median, min, max) mean seconds per call over rounds; divides like a number (by its median)."""

    def __truediv__(self, other):
        if isinstance(other, Timing):
            return self[0] / other[0]
        return Timing((self[0] / other, self[1] / other, self[2] / other))


def spread(rounds: list[float]) -> Timing:
    """Median and min-max of per-round values."""
    rounds = sorted(rounds)
    return Timing((rounds[len(rounds) // 2], rounds[0], rounds[-1]))


def interleaved(fns: dict, repeat: int, inner: int) -> dict[str, list[float]]:
    """Mean seconds per call of each fn in each of `repeat` rounds of `inner` calls; within a round the fns run
    one after the other, so that a change of the machine's speed (this VM's runs at times half as fast) hits
    all of them alike and differences taken per round stay fair."""
    out: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():  # warm up
        fn()
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            out[name].append((time.perf_counter() - t0) / inner)
    return out


def fmt(t: Timing, scale: float = 1e6) -> str:
    return f"{t[0] * scale:.1f} ({t[1] * scale:.1f}-{t[2] * scale:.1f})"


def overhead_table(repeat: int) -> list[dict]:
    rows = []
    inline = Limits(tool_timeout_s=None, run_timeout_s=None)
    for n in (5, 20, 100):
        src = chain_program(n)
        inner = max(20, 2000 // n)
        v = interleaved(
            {
                "ours": lambda: validate(src),
                "exec": lambda: compile(src, "<program>", "exec"),
                "rp": lambda: compile_restricted(src, "<program>", "exec"),
            },
            repeat,
            inner,
        )
        v_ours, v_exec, v_rp = spread(v["ours"]), spread(v["exec"]), spread(v["rp"])

        prog_sup = parse_program(src)  # default limits: supervised run with hard timeouts
        prog_inl = parse_program(src, limits=inline)
        code = compile(src, "<program>", "exec")
        rcode = compile_restricted(src, "<program>", "exec")
        e = interleaved(
            {
                "sup": lambda: execute(prog_sup, TOOLS),
                "inl": lambda: execute(prog_inl, TOOLS),
                "exec": lambda: exec(code, {"__builtins__": {}, **TOOLS}),
                "rp": lambda: exec(rcode, restricted_globals(TOOLS)),
            },
            repeat,
            inner,
        )
        per_call = {k: [t / n for t in ts] for k, ts in e.items()}
        rows.append(
            dict(
                n=n,
                v_ours=v_ours,
                v_exec=v_exec,
                v_rp=v_rp,
                e_inl=spread(per_call["inl"]),
                e_sup=spread(per_call["sup"]),
                e_exec=spread(per_call["exec"]),
                e_rp=spread(per_call["rp"]),
                o_inl=spread([a - b for a, b in zip(per_call["inl"], per_call["exec"])]),
                o_sup=spread([a - b for a, b in zip(per_call["sup"], per_call["exec"])]),
            )
        )
    return rows


def hostile_sources() -> dict[str, str]:
    cap = Limits().max_source_bytes - 200
    surplus = 'd = retrieve("q")\nfinal_answer = answer("q", d, ' + '"a", ' * ((cap - 60) // 5) + ")\n"
    undefined = 'final_answer = answer(f"' + "".join(f"{{n_{i}_xyz}}" for i in range(cap // 12)) + '")\n'
    long_names = "".join(f'v{i} = answer(f"{{{"q" * 300}{i}}}")\n' for i in range(190)) + 'final_answer = "x"\n'
    deep = "final_answer = " + "answer(" * 180 + '"q"' + ")" * 180 + "\n"
    return {
        "12,748 surplus arguments (one line)": surplus,
        "5,316 undefined names": undefined,
        "190 long undefined names": long_names[:cap],
        "180 nested calls": deep,
    }


def validate_cost(source: str) -> tuple[float, float, int]:
    import tracemalloc

    t0 = time.process_time()
    n = len(validate(source).errors)
    cpu = time.process_time() - t0
    tracemalloc.start()
    validate(source)
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return cpu, peak, n


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
        proc = subprocess.run([sys.executable, "-c", _WORKER], input=source, capture_output=True, text=True, timeout=3)
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
    rp = {
        "rejected": 0,
        "total": len(HOSTILE),
        "compile_error": 0,
        "runtime_error": 0,
        "ran": 0,
        "timeout": 0,
        "called_tools": 0,
        "other": 0,
    }
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


def print_overhead(rows: list[dict]) -> None:
    print("Validation time per program (us)")
    print(f"{'stmts':>5} {'pyrag-dsl':>24} {'compile()':>22} {'RestrictedPy':>22} {'ours/compile':>13} {'ours/RP':>8}")
    for r in rows:
        print(
            f"{r['n']:>5} {fmt(r['v_ours']):>24} {fmt(r['v_exec']):>22} {fmt(r['v_rp']):>22} "
            f"{r['v_ours'] / r['v_exec']:>13.2f} {r['v_ours'] / r['v_rp']:>8.2f}"
        )
    print("\nExecution time per tool call (us), program already validated/compiled")
    print(f"{'stmts':>5} {'ours inline':>20} {'ours supervised':>20} {'exec()':>16} {'RestrictedPy':>18}")
    for r in rows:
        print(
            f"{r['n']:>5} {fmt(r['e_inl'], 1e6):>20} {fmt(r['e_sup']):>20} {fmt(r['e_exec']):>16} {fmt(r['e_rp']):>18}"
        )
    print("\nEngine overhead per tool call (us): ours minus exec() in the same round, median (min-max) of rounds")
    print(f"{'stmts':>5} {'inline':>20} {'supervised':>20}")
    for r in rows:
        print(f"{r['n']:>5} {fmt(r['o_inl']):>20} {fmt(r['o_sup']):>20}")
    worst = max(max(r["o_inl"][0], r["o_sup"][0]) for r in rows) * 1e6
    # The 25 us target is retired (issue 21); benchmarks/engine_instructions.py tracks the engine's cost.
    print(f"Worst median above: {worst:.1f} us")
    print(
        "(inline: no wall-clock limits; supervised: default limits, the walk runs in a worker thread watched "
        "for per-call and per-run timeouts)"
    )


def print_hostile_sources() -> None:
    print("\nHostile sources at the size cap (CPU s, peak MB of validate(); target < 1 s and < 100 MB)")
    for name, src in hostile_sources().items():
        cpu, peak, n_err = validate_cost(src)
        print(f"  {name:<32} {len(src.encode()):>6} bytes  {cpu:>6.3f} s  {peak:>6.1f} MB  {n_err} errors reported")


def print_adversarial() -> None:
    ours, rp, leaks = hostile_table()
    print(f"\nAdversarial suite: {ours['total']} hostile programs")
    print(f"  pyrag-dsl rejects before any tool call: {ours['rejected']}/{ours['total']}")
    print(
        f"  RestrictedPython rejects before any tool call: {rp['rejected']}/{rp['total']} "
        f"(compile errors {rp['compile_error']}, runtime errors {rp['runtime_error']}, ran to the end "
        f"{rp['ran']}, timed out {rp['timeout']}, crashed {rp['other']}, called a tool {rp['called_tools']})"
    )
    by_outcome: dict[str, list[str]] = {}
    for name, outcome, calls in leaks:
        by_outcome.setdefault(outcome, []).append(f"{name}({calls} calls)" if calls else name)
    for outcome, names in sorted(by_outcome.items()):
        print(f"    not rejected by RestrictedPython, {outcome}: {', '.join(names)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="rounds per measurement (median and min-max reported)")
    ap.add_argument("--skip-hostile", action="store_true", help="skip the RestrictedPython adversarial run")
    ap.add_argument(
        "--shared-result",
        action="store_true",
        help="retrieve returns the same Docs object every call (as rounds before 2026-11-26 measured)",
    )
    args = ap.parse_args()
    global SHARED_RESULT
    SHARED_RESULT = args.shared_result
    print(
        f"Python {sys.version.split()[0]}; medians of {args.repeat} rounds (min-max); load average "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; retrieve returns 5 x 1 kB documents "
        f"({'one shared object' if SHARED_RESULT else 'a fresh result per call'}).\n"
    )
    print_overhead(overhead_table(args.repeat))
    print_hostile_sources()
    if not args.skip_hostile:
        print_adversarial()


if __name__ == "__main__":
    main()
