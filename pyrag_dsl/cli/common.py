"""Helpers shared by the command modules: exit codes, input files, error rendering, the settings from the
flags, sessions, saved results."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from ..grammar import DslError
from .exits import EXIT_INVALID, EXIT_OK, EXIT_PIPE, EXIT_RUNTIME, EXIT_USAGE, UsageError
from .safe_text import plain, text

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from ..config.settings import Settings
    from ..pipeline.runner import Pipeline, PipelineResult
    from ..pipeline.session import Session
    from ..retrievers.base import Progress as ProgressCallback

# the settings flags (config.sources.FLAGS) that are not passed on as they are: --no-prompt-cache,
# --parallel and --no-grammar are store_true flags, given to the settings only when set (see below)
_SWITCHES = ("prompt_cache", "parallel", "no_grammar")


def read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    p = Path(path)
    if not p.exists():
        raise UsageError(f"no such file: {path}")
    if p.is_dir():
        raise UsageError(f"{path} is a directory, not a program file")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None


def render_error(console: Console, err: DslError, path: str) -> None:
    where = f"{path}:{err.span.line}:{err.span.col}: " if err.span else f"{path}: "
    head = Text(plain(where), style="bold")
    head.append(f"{err.kind}", style="bold red")
    head.append(f": {plain(err.message)}")
    console.print(head, highlight=False)
    if err.source_line is not None and err.span is not None:
        console.print(Text(f"  {err.span.line:>4} | ", style="dim") + Text(plain(err.source_line)), highlight=False)
        caret = err.caret_line()
        if caret:
            console.print(Text("       | ", style="dim") + Text(caret, style="bold red"), highlight=False)
    if err.hint:
        console.print(Text(f"  hint: {err.hint}", style="cyan"), highlight=False)


def progress_bar(console: Console) -> tuple[ProgressCallback, Progress]:
    """A rich progress bar fed by (stage, done, total) callbacks; returns (callback, context manager)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def update(stage: str, done: int, total: int | None) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return update, bar


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The resolved Settings of a pipeline command: its flags > --config file > the environment."""
    from ..config.sources import FLAGS
    from ..pipeline.session import Settings

    flags = {k: getattr(args, k, None) for k in FLAGS if k not in _SWITCHES}
    if getattr(args, "no_prompt_cache", False):
        flags["prompt_cache"] = False
    if getattr(args, "parallel", False):
        flags["parallel"] = True
    flags["no_grammar"] = getattr(args, "no_grammar", False)
    from ..agents.models import MODELS

    if getattr(args, "model", None) and args.model not in MODELS and not Path(args.model).is_file():
        raise UsageError(f"model file not found: {args.model} (or a model name: {', '.join(MODELS)})")
    return Settings.resolve(config_file=getattr(args, "config", None), flags=flags)


def open_session(settings: Settings, console: Console) -> Session:
    """An entered Session; a progress bar shows while the embedded index is built on first use."""
    from ..pipeline.session import Session

    update, bar = progress_bar(console)
    with bar:
        return Session(settings, progress=update).__enter__()


def pipeline_of(session: Session) -> Pipeline:
    """The pipeline of a session that open_session entered (Session.__enter__ sets it, or raises)."""
    if session.pipeline is None:
        raise RuntimeError("the session has no pipeline: it was not entered")
    return session.pipeline


def print_json_line(n: int, out: Path | None, result: PipelineResult) -> None:
    """`run --json`: question n's result as one JSON line, with where its files were saved (null: not saved)."""
    print(json.dumps({"n": n, "output": str(out) if out else None, **result.to_dict()}, ensure_ascii=False), flush=True)


def save_result(run_dir: Path, n: int, result: PipelineResult) -> Path | None:
    """Write question n's files; when that fails (disk full...), say which file in one line on stderr
    and return None: the caller still prints the answer."""
    from ..pipeline.outputs import OutputError, write_result
    from .trace_cmds import export_result

    export_result(result)  # with --otlp-endpoint: the question's spans, now that it is done
    try:
        return write_result(run_dir, n, result)
    except OutputError as e:
        Console(stderr=True, soft_wrap=True).print(
            Text("error: ", style="red") + Text(f"question {n}: {e}; its answer is printed, not saved")
        )
        return None


def name_the_crash(result: PipelineResult, crash: Exception | None) -> None:
    """A question that failed while the embedded server died records the crash as its error (the pipeline
    may have reported a consequence, such as no valid program after the failed plan calls)."""
    if crash is not None and result.error is not None:
        result.error = {"type": type(crash).__name__, "message": str(crash)}


def server_died(status: Console, crash: Exception, done: int, total: int) -> int:
    """One line naming the dead embedded server and its fix; the questions not asked keep their place."""
    status.print(Text("error: ", style="red") + text(f"{type(crash).__name__}: {crash}"), highlight=False)
    status.print(
        f"{done} of {total} question{'s' if total != 1 else ''} asked and saved; {total - done} not started",
        highlight=False,
    )
    return EXIT_RUNTIME


def wide(console: Console) -> Console:
    """Wide tables stay legible when the output is a file or a pipe (rich assumes 80 columns there)."""
    if console.is_terminal or console.width >= 160:
        return console
    return Console(file=console.file, width=200, soft_wrap=False)


__all__ = [
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_PIPE",
    "EXIT_RUNTIME",
    "EXIT_USAGE",
    "UsageError",
    "open_session",
    "pipeline_of",
    "print_json_line",
    "progress_bar",
    "read_text",
    "render_error",
    "save_result",
    "server_died",
    "settings_from_args",
    "wide",
]
