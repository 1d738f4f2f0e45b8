"""Helpers shared by the command modules."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.text import Text

from ..grammar import DslError
from .safe_text import plain

# 0 ok; 1 invalid program or some questions failed; 2 usage; 3 runtime failure (I/O, a server down);
# 130 / 143 stopped by SIGINT / SIGTERM; 141 standard output closed by its reader.
EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_RUNTIME, EXIT_PIPE = 0, 1, 2, 3, 141


class UsageError(Exception):
    """A problem with how the command was called (missing file...): exit code 2."""


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


def progress_bar(console: Console):
    """A rich progress bar fed by (stage, done, total) callbacks; returns (callback, context manager)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=console, transient=False)
    tasks: dict[str, int] = {}

    def update(stage: str, done: int, total: int | None) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    return update, bar
