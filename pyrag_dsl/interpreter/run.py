"""One execution of a resolved program: per-statement values, counters, limits and the committed trace.

resolve (grammar.validate) -> schedule (schedule.py, chosen by the caller) -> walk (walker.py).
Values are stored per defining statement; `variables` is the view by name at the end of the run
(each name's last committed definition).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..grammar.errors import DslError, LimitExceeded
from ..grammar.language import FINAL_ANSWER
from ..grammar.limits import Limits
from ..grammar.program import Program, Statement
from ..grammar.tools import ToolSpec
from .record import EventSink, Recorder, StepLog
from .schedule import SCHEDULERS
from .supervisor import ABANDONED, supervise
from .trace import TraceEvent
from .walker import CallCache, Frame, Stop, Tool

UNSET: Any = object()


@dataclass
class ExecutionResult:
    program: Program
    variables: dict[str, Any]
    trace: list[TraceEvent]
    error: DslError | None = None
    tool_calls: int = 0
    cache_hits: int = 0
    elapsed_s: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def final_answer(self) -> str | None:
        value = self.variables.get(FINAL_ANSWER)
        return None if value is None else str(value)

    def raise_for_error(self) -> "ExecutionResult":
        if self.error is not None:
            raise self.error
        return self


class Run:
    """The state of one execution. `run_statements(indexes)` runs statements with the chosen scheduler
    ("sequential" or "dataflow"); it may be called again to re-run some (adaptive retrieval)."""

    def __init__(
        self,
        program: Program,
        tools: Mapping[str, Tool],
        *,
        settings: Mapping[str, Any] | None = None,
        cache: CallCache | None = None,
        on_event: EventSink | None = None,
        mode: str = "sequential",
        max_workers: int = 4,
        batch_window_s: float = 0.005,
    ) -> None:
        if mode not in SCHEDULERS:
            raise ValueError(f"mode must be one of {', '.join(SCHEDULERS)}, got {mode!r}")
        self.program = program
        self.limits: Limits = program.limits
        self.language = program.language
        self.tools = dict(tools)
        self.settings = dict(settings or {})
        self.cache = cache
        self.mode = mode
        self.scheduler = SCHEDULERS[mode]
        self.max_workers = max_workers
        self.batch_window_s = batch_window_s
        n = len(program.statements)
        self.values: list[Any] = [UNSET] * n
        self.committed: list[bool] = [False] * n
        self.recorder = Recorder(self.limits.max_trace_bytes, on_event)
        self.overrides: dict[int, dict[str, Any]] = {}  # id(call node) -> arguments to force (adaptive top-k)
        self.tool_calls = 0
        self.cache_hits = 0
        self.abandoned = False
        self.inflight: dict[int, tuple[float, Statement | None]] = {}  # token -> (monotonic start, statement)
        self._lock = threading.Lock()
        missing = sorted(program.tools_used - self.tools.keys())
        if missing:
            raise ValueError(f"no implementation given for tool(s): {', '.join(missing)}")

    # -- running --------------------------------------------------------------------------------
    def run_all(self) -> None:
        self.run_statements(range(len(self.program.statements)))

    def run_statements(self, indexes) -> None:
        """Run the given statements with this run's scheduler; stops at the first error."""
        self.scheduler(self, list(indexes))

    def commit(self, log: StepLog) -> bool:
        """Add a finished statement's events to the trace, in statement order; False when the run stops."""
        if self.abandoned:
            return False
        ok = self.recorder.commit(log, self._over_budget)
        if ok:
            self.committed[log.index] = True
        return ok

    def _over_budget(self, index: int) -> DslError:
        """The error of a trace over its byte budget, at statement `index`."""
        return self.program.smap.error(LimitExceeded, f"trace is over {self.limits.max_trace_bytes} bytes",
                                       self.program.statements[index].node, limit="max_trace_bytes")

    def abandon(self, err: DslError, stmt: Statement | None = None) -> None:
        """Called by the supervisor on a timeout or interrupt: record the error, ignore what comes later."""
        with self._lock:
            if stmt is not None and err.span is None:
                err = self.program.smap.error(type(err), err.message, stmt.node, **err.details)
            self.recorder.fail(err, stmt.index if stmt is not None else None)
            self.abandoned = True
            ABANDONED.add(list(self.inflight))

    def oldest_call(self) -> tuple[float, Statement | None] | None:
        """(monotonic start, statement) of the oldest tool call in flight, for the supervisor."""
        calls = list(self.inflight.values())
        return min(calls, key=lambda c: c[0]) if calls else None

    # -- values -----------------------------------------------------------------------------------
    def value(self, index: int) -> Any:
        """The value of statement `index` (None when it has not run)."""
        v = self.values[index]
        return None if v is UNSET else v

    @property
    def variables(self) -> dict[str, Any]:
        """Each name's value at the end of the run: its last committed definition."""
        defs = self.program.last_definitions(i for i, c in enumerate(self.committed) if c)
        return {name: self.values[i] for name, i in defs.items()}

    env = variables  # the name earlier versions used

    @property
    def error(self) -> DslError | None:
        return self.recorder.error

    @property
    def events(self) -> list[TraceEvent]:
        return self.recorder.events

    # -- helpers for the walker -------------------------------------------------------------------
    def cache_key(self, spec: ToolSpec, kwargs: dict[str, Any]) -> tuple | None:
        return (spec.name, tuple(kwargs.items())) if (self.cache is not None and spec.memoize) else None

    def spend(self, n: int, frame: Frame, node) -> None:
        with self._lock:
            if self.tool_calls + n <= self.limits.max_tool_calls:
                self.tool_calls += n
                return
        frame.fail(LimitExceeded, f"tool call budget of {self.limits.max_tool_calls} is spent", node,
                   limit="max_tool_calls")

    def count_hit(self) -> None:
        with self._lock:
            self.cache_hits += 1

    def result(self, started: float) -> ExecutionResult:
        with self.recorder.lock:
            return ExecutionResult(
                program=self.program, variables=self.variables, trace=list(self.events), error=self.error,
                tool_calls=self.tool_calls, cache_hits=self.cache_hits, elapsed_s=time.monotonic() - started,
                settings=dict(self.settings),
            )


def execute(
    program: Program,
    tools: Mapping[str, Tool],
    *,
    settings: Mapping[str, Any] | None = None,
    cache: CallCache | None = None,
    on_event: EventSink | None = None,
    mode: str = "sequential",
    max_workers: int = 4,
    batch_window_s: float = 0.005,
) -> ExecutionResult:
    """Execute a validated program with the given tool implementations.

    `settings` feeds run defaults such as `topk`; `cache` memoizes calls by their arguments (pass
    one CallCache to several runs to reuse results). Errors end the run and are returned, not
    raised: the variables and trace computed so far are kept in the result. `mode="dataflow"` runs
    statements as soon as their inputs are ready (up to `max_workers` at once) and batches retrieve
    calls; values, trace and errors equal those of sequential mode.
    """
    if not isinstance(program, Program):
        raise TypeError("execute() takes a validated Program; use parse_program(source) first")
    started = time.monotonic()
    run = Run(program, tools, settings=settings, cache=cache if cache is not None else CallCache(), on_event=on_event,
              mode=mode, max_workers=max_workers, batch_window_s=batch_window_s)
    supervise(run, run.run_all)
    return run.result(started)


__all__ = ["CallCache", "ExecutionResult", "Run", "Stop", "execute", "supervise"]
