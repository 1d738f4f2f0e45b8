"""Wall-clock supervision: per-call and per-run time limits, and a cap on abandoned tool calls.

Python cannot kill a thread: a tool call that overruns its limit is abandoned (the run stops and
ignores its late result). Abandoned calls still running are counted process-wide (state.ABANDONED); past
MAX_ABANDONED_CALLS a supervised run refuses to start, so stuck threads cannot grow without bound.
The supervisor sees a run only through the `Supervised` protocol.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ..grammar.errors import DslError, LimitExceeded
from ..grammar.limits import Limits
from ..grammar.program import Statement
from .state import ABANDONED

MAX_ABANDONED_CALLS = 32


class Supervised(Protocol):
    """What the supervisor needs of a run: its limits, its oldest call in flight, and a way to stop it."""

    limits: Limits

    def oldest_call(self) -> tuple[float, Statement | None] | None: ...

    def abandon(self, err: DslError, stmt: Statement | None = None) -> None: ...


class _Workers:
    """Reusable daemon threads for supervised runs: starting a thread per run costs more than a run."""

    max_idle = 8

    def __init__(self) -> None:
        self._idle: list[queue.SimpleQueue[Callable[[], None]]] = []
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], None]) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._loop, args=(inbox,), name="pyrag-dsl-run", daemon=True).start()
        inbox.put(fn)

    def _loop(self, inbox: queue.SimpleQueue[Callable[[], None]]) -> None:
        while True:
            inbox.get()()  # the callable catches everything itself
            with self._lock:
                if len(self._idle) >= self.max_idle:
                    return
                self._idle.append(inbox)


_WORKERS = _Workers()


def abandon_if_overrun(run: Supervised, now: float, run_deadline: float | None) -> bool:
    """Abandon `run` (True) when it is past `run_deadline` or its oldest call in flight is past the per-call
    limit; the supervisor's check, also used for statements run outside it (streamed-plan prefetch)."""
    limits = run.limits
    if run_deadline is not None and now >= run_deadline:
        run.abandon(LimitExceeded(f"run took longer than {limits.run_timeout_s} s", limit="run_timeout_s"))
        return True
    oldest = run.oldest_call()
    if oldest is not None and limits.tool_timeout_s is not None and now - oldest[0] >= limits.tool_timeout_s:
        run.abandon(
            LimitExceeded(f"a tool call took longer than {limits.tool_timeout_s} s", limit="tool_timeout_s"), oldest[1]
        )
        return True
    return False


def supervise(run: Supervised, work: Callable[[], None]) -> None:
    """Run `work` in a worker thread and enforce the per-call and per-run wall-clock limits.

    Without timeouts the work runs inline in the caller's thread.
    """
    limits = run.limits
    if limits.tool_timeout_s is None and limits.run_timeout_s is None:
        work()
        return
    if ABANDONED.count >= MAX_ABANDONED_CALLS:
        run.abandon(
            LimitExceeded(
                f"{ABANDONED.count} timed-out tool calls are still running; no new run starts until they return",
                limit="abandoned_calls",
            )
        )
        return
    done = threading.Lock()  # held until the work ends: a bare lock wakes the waiter with less work than an Event
    done.acquire()
    ctx = contextvars.copy_context()
    crash: list[BaseException] = []

    def target() -> None:
        try:
            ctx.run(work)
        except BaseException as e:  # an engine bug: re-raised in the caller's thread below
            crash.append(e)
        finally:
            done.release()

    run_deadline = time.monotonic() + limits.run_timeout_s if limits.run_timeout_s else None
    _WORKERS.submit(target)
    try:
        while not done.acquire(timeout=0.02):
            if abandon_if_overrun(run, time.monotonic(), run_deadline):
                return
        if crash:
            raise crash[0]
    except BaseException:  # Ctrl-C while waiting: keep what was computed, stop the walker
        run.abandon(LimitExceeded("run interrupted", limit="interrupted"))
        raise
