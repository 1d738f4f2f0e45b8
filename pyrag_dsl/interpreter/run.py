"""The front door: `execute` and `Run` wire a run's state (state.py) to a scheduler (schedule.py) and the
supervisor (supervisor.py).

resolve (grammar.validate, call plans included) -> schedule (chosen by the caller) -> walk (walker.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config.limits import DEFAULT_MAX_WORKERS
from ..grammar.errors import DslError
from ..grammar.language import FINAL_ANSWER
from ..grammar.program import Program, Statement
from .record import EventSink, StepLog
from .schedule import SCHEDULERS
from .state import CallCache, RunState, Stop, Tool
from .supervisor import supervise
from .trace import TraceEvent
from .walker import run_statement


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


class Run(RunState):
    """One execution. `run_statements(indexes)` runs statements with the chosen scheduler ("sequential" or
    "dataflow"); it may be called again to re-run some (adaptive retrieval)."""

    def __init__(
        self,
        program: Program,
        tools: Mapping[str, Tool],
        *,
        settings: Mapping[str, Any] | None = None,
        cache: CallCache | None = None,
        on_event: EventSink | None = None,
        mode: str = "sequential",
        max_workers: int = DEFAULT_MAX_WORKERS,
        batch_window_s: float = 0.005,
    ) -> None:
        if mode not in SCHEDULERS:
            raise ValueError(f"mode must be one of {', '.join(SCHEDULERS)}, got {mode!r}")
        super().__init__(program, tools, settings=settings, cache=cache, on_event=on_event)
        self.mode = mode
        self.scheduler = SCHEDULERS[mode]
        self.max_workers = max_workers
        self.batch_window_s = batch_window_s

    def run_all(self) -> None:
        self.run_statements(range(len(self.program.statements)))

    def run_statements(self, indexes: Iterable[int]) -> None:
        """Run the given statements with this run's scheduler; stops at the first error."""
        self.scheduler(self, list(indexes), self.max_workers, self.batch_window_s)

    def evaluate(self, stmt: Statement) -> StepLog:
        """Walk one statement outside any scheduler, without committing it (the streamed plan's prefetch);
        its value is in the returned log, and in this run's state when it succeeded."""
        return run_statement(self, stmt)

    def result(self, started: float) -> ExecutionResult:
        with self.recorder.lock:
            return ExecutionResult(
                program=self.program,
                variables=self.variables,
                trace=list(self.events),
                error=self.error,
                tool_calls=self.tool_calls,
                cache_hits=self.cache_hits,
                elapsed_s=time.monotonic() - started,
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
    max_workers: int = DEFAULT_MAX_WORKERS,
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
    run = Run(
        program,
        tools,
        settings=settings,
        cache=cache if cache is not None else CallCache(),
        on_event=on_event,
        mode=mode,
        max_workers=max_workers,
        batch_window_s=batch_window_s,
    )
    supervise(run, run.run_all)
    return run.result(started)


__all__ = ["CallCache", "ExecutionResult", "Run", "Stop", "execute", "supervise"]
