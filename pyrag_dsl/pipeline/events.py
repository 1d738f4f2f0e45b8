"""Pipeline-level trace events, next to the interpreter's call/assign/error events."""

from __future__ import annotations

from typing import Any, Literal

from ..interpreter.trace import TraceEvent


class DecomposeEvent(TraceEvent):
    kind: Literal["decompose"] = "decompose"
    question: str
    sub_queries: list[str]
    fallback: bool
    attempts: int
    raw: list[str] = []


class PlanEvent(TraceEvent):
    """A program from the Plan LLM: round 0 is the first plan, rounds 1.. are repairs."""

    kind: Literal["plan"] = "plan"
    round: int
    program: str
    errors: list[dict[str, Any]] = []  # the errors this program has (empty when it is valid)


class PlanStreamEvent(TraceEvent):
    """Streamed plan execution: the statements dispatched while the plan was being written (seconds
    after streaming began), and when the plan was complete."""

    kind: Literal["plan_stream"] = "plan_stream"
    dispatched: list[dict[str, Any]]
    plan_done_s: float | None = None


class RepairEvent(TraceEvent):
    """Errors sent back to the Plan LLM, and the program it answered with."""

    kind: Literal["repair"] = "repair"
    round: int
    errors: list[dict[str, Any]]
    feedback: str
    program: str


class ExecuteEvent(TraceEvent):
    """Start of one execution of a program (an attempt); the call events that follow belong to it."""

    kind: Literal["execute"] = "execute"
    attempt: int
    program: str
    settings: dict[str, Any]


class AdaptiveRetryEvent(TraceEvent):
    kind: Literal["adaptive_retry"] = "adaptive_retry"
    statement: int
    target: str
    answer: str
    retrieve_statements: list[int]
    topk: int
    rerun: list[int]
    policy: str = "incremental"


class FinalEvent(TraceEvent):
    kind: Literal["final"] = "final"
    final_answer: str | None
    program: str | None
    error: dict[str, Any] | None = None
