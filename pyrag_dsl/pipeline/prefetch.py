"""Streamed plan execution: statements run while the Plan agent is still writing the program.

The Plan agent tells the prefetcher the program so far, cut from the reply as the finished reply will
be cut (agents.plan.settled_program: no thinking, no prose, no draft before the fence). That text, with
a stand-in last line for `final_answer`, must validate against the language, the names bound so far and
the limits. A statement of it is dispatched when it is final (another statement follows it, so no
continued line can still change it), the statements it reads from are done, its calls are memoized (their
results are reused, not made again) and the calls dispatched so far leave room for its own within
`max_tool_calls`. The results go to the question's call cache; the finished program then runs as usual
and answers those calls from the cache (a repair reuses them the same way). Nothing of a prefix that
does not validate is dispatched. What streaming cannot know is whether the rest of the reply will be
valid: when it is not, the calls of its valid prefix were made, and a repair that keeps those
statements finds them in the cache.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable

from ..config.limits import DEFAULT_MAX_WORKERS
from ..grammar import FINAL_ANSWER, Language, Limits, Program, Statement, validate
from ..grammar.program import tool_name
from ..interpreter import CallCache, Run
from ..interpreter.record import StepLog
from ..interpreter.supervisor import abandon_if_overrun

_STAND_IN = f'\n{FINAL_ANSWER} = "..."\n'


@dataclass
class Dispatched:
    statement: int
    source: str
    at_s: float  # seconds after streaming began
    done_s: float | None = None
    ok: bool | None = None


@dataclass
class PrefetchReport:
    dispatched: list[Dispatched] = field(default_factory=list)
    plan_done_s: float | None = None


class Prefetcher:
    """Feed it the program so far as the Plan reply grows (`feed`); call `finish()` when the reply is complete."""

    def __init__(
        self,
        language: Language,
        limits: Limits,
        tools: dict[str, Callable[..., Any]],
        cache: CallCache,
        settings: dict[str, Any],
        max_workers: int = DEFAULT_MAX_WORKERS,
    ) -> None:
        self.language, self.limits, self.tools, self.cache = language, limits, tools, cache
        self.settings = settings
        self.pool = ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="pyrag-dsl-prefetch")
        self.lock = threading.Lock()
        self.t0 = time.monotonic()
        self.report = PrefetchReport()
        self._text = ""  # the program prefix (complete lines) last looked at
        self._program: Program | None = None
        self._run: Run | None = None
        self._started: set[int] = set()
        self._done: dict[int, Any] = {}  # statement index -> value
        self._generation = 0  # a new reply (a retry) starts a new generation
        self._closed = False
        self._futures: dict[Future[None], Run] = {}  # each dispatched statement and the run it belongs to
        self._calls = 0  # tool calls of the statements dispatched, over every retry of the reply

    # -- the stream ---------------------------------------------------------------------------------------
    def feed(self, program_so_far: str) -> None:
        """The program written so far (agents.plan.settled_program of the reply): dispatch what is ready."""
        with self.lock:
            if self._closed or program_so_far == self._text or not program_so_far.strip():
                return
            if not program_so_far.startswith(self._text):  # the reply started again (a retry): start over
                self._started, self._done, self._program, self._run = set(), {}, None, None
                self._generation += 1
            self._text = program_so_far
            program = validate(program_so_far + _STAND_IN, self.language, self.limits).program
            if program is None:
                return  # not (yet) a valid prefix: nothing new is dispatched
            run = Run(program, self.tools, settings=self.settings, cache=self.cache)
            for i, value in self._done.items():
                run.seed_value(i, value)
            self._program, self._run = program, run
            self._dispatch_ready(program, run)

    def _reused(self, program: Program, stmt: Statement) -> bool:
        """Whether the finished program will find this statement's calls in the cache (memoized tools only)."""
        return all(self.language.tools[tool_name(call)].memoize for call in program.calls(stmt))

    def _dispatch_ready(self, program: Program, run: Run) -> None:
        """Dispatch the statements of the current program (`program`, run by `run`) that are ready."""
        final = len(program.statements) - 2  # the last is the stand-in; the one before it may still be continued
        for stmt in program.statements[: max(final, 0)]:
            i = stmt.index
            if i in self._started or not all(d in self._done for d in stmt.deps) or not self._reused(program, stmt):
                continue
            if self._calls + stmt.calls > self.limits.max_tool_calls:
                continue  # the run's call budget: retries of the reply share it
            self._started.add(i)
            self._calls += stmt.calls
            record = Dispatched(i, stmt.source, round(time.monotonic() - self.t0, 4))
            self.report.dispatched.append(record)
            self._futures[self.pool.submit(self._execute, run, stmt, record, self._generation)] = run

    def _execute(self, run: Run, stmt: Statement, record: Dispatched, generation: int) -> None:
        log: StepLog | None
        try:
            log = run.evaluate(stmt)
        except Exception:  # noqa: BLE001 - a prefetch failure only means the final run does the work
            log = None
        with self.lock:
            record.done_s = round(time.monotonic() - self.t0, 4)
            record.ok = bool(log and log.ok)
            if log is None or not log.ok or self._closed or generation != self._generation:
                return
            self._done[stmt.index] = log.value
            if self._run is not None and self._program is not None:  # both are set together, in feed()
                self._run.seed_value(stmt.index, log.value)
                self._dispatch_ready(self._program, self._run)

    # -- the end ------------------------------------------------------------------------------------------
    def finish(self, wait: bool = True) -> PrefetchReport:
        """The reply is complete: dispatch nothing more; wait for calls in flight (their results are needed
        by the program that now runs, and waiting avoids making the same call twice), but no longer than the
        limits allow: a call past `tool_timeout_s`, or everything past `run_timeout_s` from the start of the
        stream, is abandoned (its late result is ignored and counted as the supervisor counts its own)."""
        with self.lock:
            self._closed = True
            self.report.plan_done_s = round(time.monotonic() - self.t0, 4)
            futures = dict(self._futures)
        self.pool.shutdown(wait=False, cancel_futures=True)
        if wait:
            self._wait_within_limits(futures)
        return self.report

    def _wait_within_limits(self, futures: dict[Future[None], Run]) -> None:
        run_s = self.limits.run_timeout_s
        deadline = self.t0 + run_s if run_s is not None else None
        limited = self.limits.tool_timeout_s is not None or deadline is not None
        pending = {f for f in futures if not f.done()}
        while pending:
            wait(pending, timeout=0.02 if limited else None, return_when=FIRST_COMPLETED)
            now = time.monotonic()
            for f in list(pending):
                run = futures[f]
                if f.done() or run.abandoned or abandon_if_overrun(run, now, deadline):
                    pending.discard(f)
