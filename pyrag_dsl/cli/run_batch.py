"""`pyrag-dsl run --concurrency N`: N questions in flight, results saved as they finish and printed in
input order.

The batch runner is pyrag_dsl.pipeline.questions; the per-server caps are the eval command's mechanism
(pyrag_dsl.pipeline.batch): every question gets its own metered views of the session's shared LLM clients
and retriever, which take a slot of the endpoint's semaphore around each request. A question that fails (an
error result or an unexpected exception) is recorded as failed; the others go on. Ctrl-C / SIGTERM stops
submitting, saves and prints what finished, and saves each question in flight with what it had computed
(error Interrupted), without waiting for it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from rich.console import Console

from . import signals
from .common import EXIT_OK, EXIT_RUNTIME, UsageError, name_the_crash, open_session, save_result, server_died
from .safe_text import error_line, markup

if TYPE_CHECKING:
    from ..pipeline.questions import Outcome

EXIT_FAILED = 1


def check_flags(args: argparse.Namespace) -> None:
    for flag in ("concurrency", "llm_inflight", "retrieval_inflight"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")


def cmd_run_concurrent(
    args: argparse.Namespace, questions: list[str], settings: Any, console: Console, status: Console
) -> int:
    """The body of `run` with --concurrency > 1 (same files, same printed lines, same exit codes)."""
    from ..pipeline.batch import EndpointLimits, MeteredLLM, MeteredRetriever
    from ..pipeline.outputs import new_run_dir
    from ..pipeline.questions import run_questions
    from ..pipeline.runner import Pipeline

    quiet = args.json
    limits = EndpointLimits(args.llm_inflight or args.concurrency)
    session = open_session(settings, status)
    run_dir = None
    counts = {"failed": 0, "unsaved": 0}
    try:
        if not quiet:
            # on stderr: a reader of standard output that goes away (`| head`) must not lose the results
            Console(stderr=True).print(f"[dim]LLM: {markup(session.describe_llm())}[/dim]", highlight=False)
        base = session.pipeline
        r = session.settings.retriever
        endpoint = str(r.url or r.index or "embedded")
        if args.retrieval_inflight:
            limits.overrides[f"retriever:{endpoint}"] = args.retrieval_inflight
        run_dir = new_run_dir(settings.output_dir)
        saved: dict[int, Any] = {}

        def make(_n: int) -> Any:
            llm = MeteredLLM(base.llm, limits)
            plan = llm if base.plan_llm is base.llm else MeteredLLM(base.plan_llm, limits)
            return Pipeline(
                llm,
                MeteredRetriever(base.retriever, endpoint, limits),
                plan_llm=plan,
                config=base.config,
                extra_tools=base.extra_tools,
            )

        def on_finished(o: Outcome) -> None:
            name_the_crash(o.result, session.server_crash())
            saved[o.n] = save_result(run_dir, o.n, o.result)
            counts["unsaved"] += saved[o.n] is None
            counts["failed"] += o.result.error is not None
            if session.server_crash() is not None:  # a dead embedded server: ask no more questions
                stop.set()

        def on_ordered(o: Outcome) -> None:
            res = o.result
            if quiet:
                out = saved.get(o.n)
                print(
                    json.dumps({"n": o.n, "output": str(out) if out else None, **res.to_dict()}, ensure_ascii=False),
                    flush=True,
                )
            else:
                console.print(
                    f"[bold]{o.n}.[/bold] {markup(o.question)}\n   → {markup(res.final_answer)}"
                    + (f"  {error_line(res.error)}" if res.error else ""),
                    highlight=False,
                )

        partial: dict[int, Any] = {}

        def on_interrupted(o: Outcome) -> None:
            signals.name_the_signal(o.result)
            partial[o.n] = save_result(run_dir, o.n, o.result)
            if quiet:
                print(
                    json.dumps(
                        {"n": o.n, "output": str(partial[o.n]) if partial[o.n] else None, **o.result.to_dict()},
                        ensure_ascii=False,
                    ),
                    flush=True,
                )

        stop = threading.Event()
        try:
            run_questions(
                make,
                questions,
                args.concurrency,
                on_finished=on_finished,
                on_ordered=on_ordered,
                on_interrupted=on_interrupted,
                stop=stop,
            )
            if session.server_crash() is not None:
                counts["crashed"] = server_died(status, session.server_crash(), len(saved), len(questions))
        except KeyboardInterrupt:
            status.print(
                f"[red]{signals.interrupt_word()}[/red]: {len(saved)} of {len(questions)} questions "
                f"finished and saved; {len(partial)} in flight saved with what they had computed "
                f"(question{'s' if len(partial) != 1 else ''} {', '.join(map(str, sorted(partial))) or '-'}); "
                "the others were not started",
                highlight=False,
            )
            counts["interrupted"] = signals.interrupt_exit_code()
    finally:
        session.close()
        if run_dir is not None:
            status.print(f"[dim]outputs: {markup(run_dir)}[/dim]")
            status.print(f"[dim]view: pyrag-dsl view {markup(run_dir)}[/dim]")
    if "interrupted" in counts:
        _exit_now_if_requests_in_flight(counts["interrupted"])
        return counts["interrupted"]
    if "crashed" in counts:
        return counts["crashed"]
    if counts["unsaved"]:
        return EXIT_RUNTIME
    return EXIT_OK if counts["failed"] == 0 else EXIT_FAILED


def _exit_now_if_requests_in_flight(code: int) -> None:
    """After Ctrl-C / SIGTERM everything finished is saved and printed; questions still in flight sit in
    worker threads that Python would join at exit (until their requests time out, minutes on a slow
    server). End the process now instead."""
    if any(t.name.startswith("batch") and t.is_alive() for t in threading.enumerate()):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


__all__ = ["check_flags", "cmd_run_concurrent"]
