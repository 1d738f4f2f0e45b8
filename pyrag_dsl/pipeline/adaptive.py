"""Running a validated program, and adaptive retrieval: when an answer comes back as a sentinel, only the
retrieve calls feeding it (with the boosted top-k) and what depends on them run again. Shared by the pipeline
and by replay."""

from __future__ import annotations

import ast
from typing import Any, Callable

from ..grammar import Program, Statement
from ..interpreter import CallCache, Run, supervise
from ..interpreter.trace import TraceEvent
from .config import PipelineConfig
from .events import AdaptiveRetryEvent, ExecuteEvent, append_event


class Executor:
    """Runs a validated program and applies the adaptive-retrieval policy; appends to `trace`.
    Shared by the pipeline and by replay."""

    def __init__(
        self,
        cfg: PipelineConfig,
        tools: dict[str, Callable[..., Any]],
        is_sentinel: Callable[[str], bool],
        trace: list[TraceEvent],
        flags: Any = None,
    ) -> None:
        self.cfg = cfg
        self.tools = tools
        self.is_sentinel = is_sentinel
        self.trace = trace
        self.flags = flags  # gets .retried_with_topk10 = True when a retry happens
        self.run: Run | None = None
        self.program: Program | None = None

    def _on_event(self, event: TraceEvent) -> None:
        # interpreter events are renumbered into the pipeline's trace
        self.trace.append(event.model_copy(update={"step": len(self.trace) + 1}))

    def execute(self, program: Program, cache: CallCache, attempt: int, topk: int | None = None) -> Run:
        settings = {"topk": topk or self.cfg.topk}
        append_event(self.trace, ExecuteEvent, attempt=attempt, program=program.source, settings=settings)
        run = Run(
            program,
            self.tools,
            settings=settings,
            cache=cache,
            on_event=self._on_event,
            mode="dataflow" if self.cfg.parallel else "sequential",
            max_workers=self.cfg.max_workers,
            batch_window_s=self.cfg.batch_window_s,
        )
        self.run, self.program, self.cache = run, program, cache  # before running: kept on Ctrl-C too
        supervise(run, run.run_all)
        return run

    def _retry(self, run: Run, s: Statement, retrieves: list[int], rerun: list[int], **policy: str) -> None:
        """Record an adaptive retry of the sentinel answer of `s` (an event; the result's flag)."""
        append_event(
            self.trace,
            AdaptiveRetryEvent,
            statement=s.index,
            target=s.target,
            answer=str(run.value(s.index)),
            retrieve_statements=retrieves,
            topk=self.cfg.boosted_topk,
            rerun=rerun,
            **policy,
        )
        if self.flags is not None:
            self.flags.retried_with_topk10 = True

    def _sentinel(self, run: Run, s: Statement) -> bool:
        value = run.value(s.index)
        return isinstance(value, str) and self.is_sentinel(value)

    def adaptive(self, attempt: int) -> None:
        """Re-retrieve with the boosted top-k for every answer that came back as a sentinel: only the
        retrieve statements feeding it and the statements that depend on them run again (the resolved
        program's bindings say which; a name reassigned later never changes what they read)."""
        run, program, cfg = self.run, self.program, self.cfg
        if run is None or program is None or run.error is not None:
            return
        if cfg.policy == "reference":
            flagged = [s for s in program.statements if program.answer_call(s) and self._sentinel(run, s)]
            if flagged:
                retrieves = [x.index for x in program.statements if program.calls(x, "retrieve")]
                self._retry(run, flagged[0], retrieves, list(range(len(program.statements))), policy="reference")
                self.execute(program, CallCache(), attempt + 1, cfg.boosted_topk)
            return
        boosted: set[int] = set()  # id() of the retrieve call nodes already boosted
        for s in program.statements:
            if run.error is not None:
                return
            if not program.answer_call(s) or not self._sentinel(run, s):
                continue
            changed = []
            for i, node in program.feeding_retrieves(s):
                if id(node) in boosted:
                    continue
                boosted.add(id(node))
                if _current_topk(node, program.statements[i], run, cfg.topk) < cfg.boosted_topk:
                    run.force_argument(node, "topk", cfg.boosted_topk)
                    changed.append(i)
            if not changed:
                continue
            rerun = sorted(set(changed) | {x for i in changed for x in program.dependents(i)})
            self._retry(run, s, sorted(set(changed)), rerun)
            supervise(run, lambda: run.run_statements(rerun))


def _current_topk(node: ast.Call, stmt: Statement, run: Run, default: int) -> int:
    """The top-k a retrieve call ran with: forced, a constant, a variable (through the statement's
    bindings), or the run default."""
    forced = run.forced_argument(node, "topk")
    if isinstance(forced, int):  # only adaptive retrieval forces it, with the boosted top-k
        return forced
    arg = run.program.argument(node, "topk")
    if isinstance(arg, ast.Constant) and isinstance(arg.value, int):
        return arg.value
    if isinstance(arg, ast.Name):
        value = run.value(stmt.binds[arg.id])
        if isinstance(value, int):
            return value
    return default


__all__ = ["Executor"]
