"""Replay a recorded run: re-execute its final program with the recorded tool outputs (no LLM, no
retriever) and compare every step with the recording."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from ..agents.answer import Sentinels
from ..grammar import FINAL_ANSWER, Language, Limits, validate
from ..interpreter import CallCache, Run
from ..interpreter.trace import CallEvent, TraceEvent, value_from_json, value_to_json
from . import events as pev
from .adaptive import Executor
from .recorded_config import RecordedConfigError, config_from_header

# Kinds compared step by step, and the fields that must match.
_COMPARED = {
    "retrieve": ("statement", "tool", "target", "inputs", "output"),
    "answer": ("statement", "tool", "target", "inputs", "output"),
    "call": ("statement", "tool", "target", "inputs", "output"),
    "assign": ("statement", "target", "output"),
    "adaptive_retry": ("statement", "retrieve_statements", "topk", "rerun"),
    "error": ("error",),
}


class ReplayError(Exception):
    """The trace cannot be replayed (no program, a configuration this version cannot rebuild...)."""


def _key(tool: str, inputs: dict[str, Any]) -> str:
    return tool + json.dumps(inputs, sort_keys=True, ensure_ascii=False)


class RecordedTools:
    """Tools that answer from a recording, keyed by (tool, inputs)."""

    def __init__(self, events: list[TraceEvent]) -> None:
        self.table: dict[str, Any] = {}
        for e in events:
            if isinstance(e, CallEvent):
                self.table.setdefault(_key(e.tool, e.inputs), e.output)
        self.missing: list[str] = []

    def tool(self, name: str) -> Callable[..., Any]:
        def call(**kwargs: Any) -> Any:
            key = _key(name, {k: value_to_json(v) for k, v in kwargs.items()})
            if key not in self.table:
                self.missing.append(key)
                raise LookupError(f"no recorded output for {name}({', '.join(f'{k}=...' for k in kwargs)})")
            return value_from_json(self.table[key])

        return call


@dataclass
class StepDiff:
    step: int  # the recorded trace's step number (as `replay --step N` and the step table show it)
    field: str
    recorded: Any
    replayed: Any


@dataclass
class ReplayReport:
    final_answer_recorded: str | None
    final_answer_replayed: str | None
    steps_compared: int
    diffs: list[StepDiff] = field(default_factory=list)
    replayed: list[TraceEvent] = field(default_factory=list)
    error: dict[str, Any] | None = None  # the error that ended the replayed run, if any
    error_recorded: dict[str, Any] | None = None  # the recorded run's final error, if any

    @property
    def ok(self) -> bool:
        return not self.diffs and self.final_answer_recorded == self.final_answer_replayed

    @property
    def new_error(self) -> bool:
        """The replayed run failed where the recording did not, or with another error."""
        if self.error is None:
            return False
        return (self.error_recorded or {}).get("message") != self.error.get("message")


def final_execution(events: list[TraceEvent]) -> tuple[pev.ExecuteEvent | None, list[TraceEvent]]:
    """The first execution of the final program (after the last plan; in an `exec --trace` trace, which
    has no plan, the first execution) and the compared events from there."""
    last_plan = max((i for i, e in enumerate(events) if isinstance(e, pev.PlanEvent)), default=-1)
    start = next((i for i in range(last_plan + 1, len(events)) if isinstance(events[i], pev.ExecuteEvent)), None)
    if start is None:
        return None, []
    body = [e for e in events[start:] if e.kind in _COMPARED or isinstance(e, pev.ExecuteEvent)]
    return events[start], body  # type: ignore[return-value]


def _find_final(events: list[TraceEvent]) -> pev.FinalEvent | None:
    return next((e for e in reversed(events) if isinstance(e, pev.FinalEvent)), None)


def _final_answer(run: Run) -> str | None:
    """The replayed run's final answer as text (the one place replay reads the run's variables)."""
    value = run.variables.get(FINAL_ANSWER)
    return None if value is None else str(value)


def replay(
    header: dict[str, Any],
    events: list[TraceEvent],
    *,
    tools: dict[str, Callable[..., Any]] | None = None,
    language: Language | None = None,
    overrides: dict[str, Any] | None = None,
    limits: Limits | None = None,
) -> ReplayReport:
    """Re-execute the recorded final program with the recorded settings, limits and language. Without
    `tools`, with the recorded outputs (exact replay); with `tools` (for --live), against those and report
    the differences. `overrides` (topk, boosted_topk, policy, parallel) make it a what-if run. The recorded
    limits are tightened to the defaults (a trace is input: it cannot lift the engine's bounds); a run
    recorded with looser limits replays with `limits` given explicitly."""
    final = _find_final(events)
    start, recorded = final_execution(events)
    if final is None or start is None or not final.program:
        raise ReplayError("the trace has no executed program to replay")
    extra = dict(overrides or {})
    if language is not None:
        extra["language"] = language
    try:
        cfg = config_from_header(header, limits=limits, **extra)
    except RecordedConfigError as e:
        raise ReplayError(str(e)) from None
    checked = validate(final.program, cfg.language, cfg.limits)
    if checked.program is None:
        raise ReplayError("the recorded program does not validate: " + checked.errors[0].render())
    recorded_tools = RecordedTools(events)
    impls = tools or {name: recorded_tools.tool(name) for name in cfg.language.tools}
    trace: list[TraceEvent] = []
    executor = Executor(cfg, impls, Sentinels(cfg.sentinels), trace)
    run = executor.execute(checked.program, CallCache(), 1)
    executor.adaptive(1)  # may re-execute (the reference policy): the run to compare is then the last one
    run = executor.run if executor.run is not None else run
    replayed = [e for e in trace if e.kind in _COMPARED or isinstance(e, pev.ExecuteEvent)]
    report = ReplayReport(
        final.final_answer,
        _final_answer(run),
        len(recorded),
        replayed=trace,
        error=run.error.to_dict() if run.error is not None else None,
        error_recorded=final.error,
    )
    offset = start.step - trace[0].step  # replayed events are numbered as the recording numbers them
    for i in range(max(len(recorded), len(replayed))):
        a = recorded[i] if i < len(recorded) else None
        b = replayed[i] if i < len(replayed) else None
        step = a.step if a is not None else b.step + offset  # type: ignore[union-attr]
        if a is None or b is None or a.kind != b.kind:
            report.diffs.append(StepDiff(step, "kind", a.kind if a else None, b.kind if b else None))
            break
        for name in _COMPARED.get(a.kind, ()):
            va, vb = getattr(a, name, None), getattr(b, name, None)
            if name == "error":
                va, vb = (va or {}).get("message"), (vb or {}).get("message")
            if va != vb:
                report.diffs.append(StepDiff(step, name, va, vb))
    return report


__all__ = ["ReplayError", "ReplayReport", "StepDiff", "replay"]
