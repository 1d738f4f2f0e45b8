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
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from . import signals
from .common import (
    EXIT_OK,
    EXIT_RUNTIME,
    UsageError,
    name_the_crash,
    open_session,
    pipeline_of,
    print_json_line,
    save_result,
    server_died,
)
from .exits import EXIT_FAILED
from .safe_text import error_line, markup

if TYPE_CHECKING:
    from ..config.settings import Settings
    from ..pipeline.batch import EndpointLimits
    from ..pipeline.questions import Outcome
    from ..pipeline.runner import Pipeline
    from ..pipeline.session import Session


def check_flags(args: argparse.Namespace) -> None:
    for flag in ("concurrency", "llm_inflight", "retrieval_inflight"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 1, got {value}")


def cmd_run_concurrent(
    args: argparse.Namespace, questions: list[str], settings: Settings, console: Console, status: Console
) -> int:
    """The body of `run` with --concurrency > 1 (same files, same printed lines, same exit codes)."""
    from ..pipeline.batch import EndpointLimits
    from ..pipeline.outputs import new_run_dir

    limits = EndpointLimits(args.llm_inflight or args.concurrency)
    session = open_session(settings, status)
    run_dir = None
    try:
        if not args.json:
            # on stderr: a reader of standard output that goes away (`| head`) must not lose the results
            Console(stderr=True).print(f"[dim]LLM: {markup(session.describe_llm())}[/dim]", highlight=False)
        endpoint = session.retriever_endpoint()
        if args.retrieval_inflight:
            limits.cap_retriever(endpoint, args.retrieval_inflight)
        run_dir = new_run_dir(settings.output_dir)
        batch = _Batch(args, session, limits, endpoint, run_dir, console)
        stopped = batch.answer_all(questions, status)
    finally:
        session.close()
        if run_dir is not None:
            status.print(f"[dim]outputs: {markup(run_dir)}[/dim]")
            status.print(f"[dim]view: pyrag-dsl view {markup(run_dir)}[/dim]")
    if batch.interrupted and stopped is not None:
        _exit_now_if_requests_in_flight(stopped)
    if stopped is not None:  # interrupted (130/143) or the embedded server died (3)
        return stopped
    if batch.unsaved:
        return EXIT_RUNTIME
    return EXIT_OK if batch.failed == 0 else EXIT_FAILED


class _Batch:
    """The questions of one `run --concurrency N`: each gets its own pipeline with metered views of the
    session's LLM clients and retriever; what run_questions hands over is saved and printed here."""

    def __init__(
        self,
        args: argparse.Namespace,
        session: Session,
        limits: EndpointLimits,
        endpoint: str,
        run_dir: Path,
        console: Console,
    ) -> None:
        self.args, self.session, self.limits, self.endpoint = args, session, limits, endpoint
        self.base = pipeline_of(session)
        self.run_dir, self.console = run_dir, console
        self.saved: dict[int, Path | None] = {}  # finished questions, and where their files went
        self.partial: dict[int, Path | None] = {}  # questions in flight at Ctrl-C, saved with what they had
        self.failed = self.unsaved = 0
        self.interrupted = False
        self.stop = threading.Event()

    def answer_all(self, questions: list[str], status: Console) -> int | None:
        """Run them all; None, or the exit code of a Ctrl-C / SIGTERM or of a dead embedded server."""
        from ..pipeline.questions import run_questions

        try:
            run_questions(
                self.make,
                questions,
                self.args.concurrency,
                on_finished=self.on_finished,
                on_ordered=self.on_ordered,
                on_interrupted=self.on_interrupted,
                stop=self.stop,
            )
            crash = self.session.server_crash()
            if crash is not None:
                return server_died(status, crash, len(self.saved), len(questions))
        except KeyboardInterrupt:
            self.interrupted = True
            n = len(self.partial)
            status.print(
                f"[red]{signals.interrupt_word()}[/red]: {len(self.saved)} of {len(questions)} questions "
                f"finished and saved; {n} in flight saved with what they had computed "
                f"(question{'s' if n != 1 else ''} {', '.join(map(str, sorted(self.partial))) or '-'}); "
                "the others were not started",
                highlight=False,
            )
            return signals.interrupt_exit_code()
        return None

    def make(self, _n: int) -> Pipeline:
        from ..pipeline.batch import MeteredRetriever, metered_llms
        from ..pipeline.runner import Pipeline

        base, limits = self.base, self.limits
        llm, plan = metered_llms(*self.session.entered_llms(), limits)
        return Pipeline(
            llm,
            MeteredRetriever(base.retriever, self.endpoint, limits),
            plan_llm=plan,
            config=base.config,
            extra_tools=base.extra_tools,
        )

    def on_finished(self, o: Outcome) -> None:
        name_the_crash(o.result, self.session.server_crash())
        self.saved[o.n] = save_result(self.run_dir, o.n, o.result)
        self.unsaved += self.saved[o.n] is None
        self.failed += o.result.error is not None
        if self.session.server_crash() is not None:  # a dead embedded server: ask no more questions
            self.stop.set()

    def on_ordered(self, o: Outcome) -> None:
        res = o.result
        if self.args.json:
            print_json_line(o.n, self.saved.get(o.n), res)
        else:
            self.console.print(
                f"[bold]{o.n}.[/bold] {markup(o.question)}\n   → {markup(res.final_answer)}"
                + (f"  {error_line(res.error)}" if res.error else ""),
                highlight=False,
            )

    def on_interrupted(self, o: Outcome) -> None:
        signals.name_the_signal(o.result)
        self.partial[o.n] = save_result(self.run_dir, o.n, o.result)
        if self.args.json:
            print_json_line(o.n, self.partial[o.n], o.result)


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
