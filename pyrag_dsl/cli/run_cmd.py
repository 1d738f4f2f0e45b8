"""`pyrag-dsl run`: answer the questions of a file, one after the other (or N in flight: run_batch), saving
each question's files as it finishes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from . import signals
from .common import (
    EXIT_OK,
    EXIT_RUNTIME,
    name_the_crash,
    open_session,
    pipeline_of,
    print_json_line,
    save_result,
    server_died,
    settings_from_args,
)
from .exits import EXIT_FAILED
from .questions_file import read_questions
from .render import show_result
from .safe_text import error_line, markup

if TYPE_CHECKING:
    from rich.progress import Progress

    from ..config.settings import Settings
    from ..pipeline.result import PipelineResult
    from ..pipeline.session import Session


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from .run_batch import check_flags, cmd_run_concurrent

    check_flags(args)
    questions = read_questions(args.questions)
    settings = settings_from_args(args)
    status = Console(stderr=True) if args.json else console
    if settings.embedded_llm and not args.json:
        from ..agents.models import DEFAULT_MODEL

        status.print(
            f"[dim]No LLM configured: starting the embedded llama.cpp server ({settings.gguf or DEFAULT_MODEL}; "
            "`pyrag-dsl models` lists the others; see README for a 7B model behind vLLM).[/dim]"
        )
    if getattr(args, "concurrency", 1) > 1 and len(questions) > 1:  # N in flight, printed in input order
        return cmd_run_concurrent(args, questions, settings, console, status)
    return _run_in_turn(args, questions, settings, console, status)


def _run_in_turn(
    args: argparse.Namespace, questions: list[str], settings: Settings, console: Console, status: Console
) -> int:
    """The questions one after the other in one session; where the outputs went is said however it ends."""
    from ..pipeline.outputs import new_run_dir

    session = open_session(settings, status)
    run_dir: Path | None = None
    try:
        if not args.json:
            # on stderr: a reader of standard output that goes away (`| head`) must not lose the results
            Console(stderr=True).print(f"[dim]LLM: {markup(session.describe_llm())}[/dim]", highlight=False)
        run_dir = new_run_dir(settings.output_dir)
        return _answer_each(args, questions, session, run_dir, console, status)
    finally:
        session.close()
        if run_dir is not None:
            status.print(f"[dim]outputs: {markup(run_dir)}[/dim]")
            status.print(f"[dim]view: pyrag-dsl view {markup(run_dir / '1' if len(questions) == 1 else run_dir)}[/dim]")


def _answer_each(
    args: argparse.Namespace,
    questions: list[str],
    session: Session,
    run_dir: Path,
    console: Console,
    status: Console,
) -> int:
    """Each question saved, then printed; Ctrl-C saves what the question in hand had computed and stops, and
    so does a dead embedded server. The exit code: 0, 1 when a question failed, 3 when a file was not saved."""
    from rich.progress import Progress

    from ..pipeline.result import Interrupted

    pipeline = pipeline_of(session)
    progress = Progress(console=status, transient=True) if len(questions) > 1 else None
    task = progress.add_task("questions", total=len(questions)) if progress is not None else None
    failed = unsaved = 0
    if progress is not None:
        progress.start()
    try:
        for n, question in enumerate(questions, 1):
            try:
                result = pipeline.run(question)
            except Interrupted as stop:  # keep what this question had computed, then stop
                return _save_interrupted(args, status, run_dir, n, stop.result)
            name_the_crash(result, session.server_crash())
            out = save_result(run_dir, n, result)  # on a failed write: one line on stderr, answer still shown
            unsaved += out is None
            failed += result.error is not None
            _print_answer(args, console, progress, n, question, result, out)
            if progress is not None and task is not None:
                progress.advance(task)
            crash = session.server_crash()
            if crash is not None:
                return server_died(status, crash, n, len(questions))
    finally:
        if progress is not None:
            progress.stop()
    if unsaved:
        return EXIT_RUNTIME
    return EXIT_OK if failed == 0 else EXIT_FAILED


def _print_answer(
    args: argparse.Namespace,
    console: Console,
    progress: Progress | None,
    n: int,
    question: str,
    result: PipelineResult,
    out: Path | None,
) -> None:
    """A finished question: its JSON line (--json), one line above the progress bar, or the whole result."""
    if args.json:
        print_json_line(n, out, result)
    elif progress is not None:
        progress.console.print(
            f"[bold]{n}.[/bold] {markup(question)}\n   → {markup(result.final_answer)}"
            + (f"  {error_line(result.error)}" if result.error else ""),
            highlight=False,
        )
    else:
        show_result(console, result)


def _save_interrupted(args: argparse.Namespace, status: Console, run_dir: Path, n: int, result: PipelineResult) -> int:
    """Question n stopped by Ctrl-C / SIGTERM: save and print what it had computed; the exit code (130/143)."""
    signals.name_the_signal(result)
    saved = save_result(run_dir, n, result)
    if args.json:  # its JSON line too, as for a finished question
        print_json_line(n, saved, result)
    status.print(
        f"[red]{signals.interrupt_word()}[/red] during question {n}"
        + (f"; partial result in {markup(saved)}" if saved else ""),
        highlight=False,
    )
    return signals.interrupt_exit_code()


__all__ = ["cmd_run"]
