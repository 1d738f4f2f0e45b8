"""How the command ends on signals and closed pipes.

SIGTERM (Slurm, Docker, `timeout`) is handled like Ctrl-C: it raises KeyboardInterrupt in the main
thread, so a question in flight keeps its partial result and children are stopped by the same code
paths. The exit code names the signal: 130 for SIGINT, 143 for SIGTERM. A reader that closes
standard output early (`| head -1`) ends the command quietly, as other Unix tools do.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any, Callable

_received: int | None = None


def _on_terminate(signum: int, frame: object) -> None:
    global _received
    if _received is not None:
        return  # already stopping: let the cleanup that is running finish
    _received = signum
    raise KeyboardInterrupt(f"terminated by signal {signum}")


def install(*consoles: Any) -> None:
    """Handle SIGTERM like Ctrl-C (call once, from the main thread); a closed pipe under these rich
    consoles raises BrokenPipeError (rich's default exits with status 1, the "questions failed" code)."""
    global _received
    _received = None
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_terminate)
    for console in consoles:
        console.on_broken_pipe = _broken_pipe(console)


def _broken_pipe(console: Any) -> Callable[[], None]:
    def on_broken_pipe() -> None:
        console.quiet = True  # later prints (the `outputs:` line in a finally) are dropped
        silence_stdout()
        raise BrokenPipeError("standard output was closed by its reader")

    return on_broken_pipe


def interrupt_exit_code() -> int:
    """128 + the signal that stopped the command: 143 for SIGTERM, 130 for Ctrl-C."""
    return 128 + (_received or signal.SIGINT)


def interrupt_word() -> str:
    return "terminated (SIGTERM)" if _received == signal.SIGTERM else "interrupted"


def name_the_signal(result: object) -> None:
    """A result stopped by SIGTERM (not Ctrl-C) says so in its Interrupted error's message."""
    error = getattr(result, "error", None)
    if error and error.get("type") == "Interrupted" and interrupt_word() != "interrupted":
        error["message"] = interrupt_word()


def silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so that the final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


__all__ = ["install", "interrupt_exit_code", "interrupt_word", "silence_stdout"]
