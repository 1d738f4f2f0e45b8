"""What a question's run gives back: PipelineResult (the reference's keys plus ours), and Interrupted, the
Ctrl-C that carries it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..interpreter.trace import TraceEvent


@dataclass
class PipelineResult:
    original_query: str
    sub_queries: list[str] = field(default_factory=list)
    generated_code: str | None = None
    execution_log: list[str] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    final_answer: str | None = None
    retried_with_topk10: bool = False
    trace: list[TraceEvent] = field(default_factory=list)
    repair_rounds: int = 0
    programs: list[str] = field(default_factory=list)
    llm_calls: dict[str, int] = field(default_factory=dict)
    retrieval_calls: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    retrieved_docs: list[dict[str, str]] = field(default_factory=list)  # union: {id, title}, first-seen order
    retrievals: list[dict[str, Any]] = field(default_factory=list)  # per retrieve call: statement, query, docs
    first_program_valid: bool | None = None  # None: no program was written

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The reference's keys plus ours; the typed trace goes to trace.jsonl, not here."""
        return {
            "original_query": self.original_query,
            "sub_queries": self.sub_queries,
            "generated_code": self.generated_code,
            "execution_log": self.execution_log,
            "variables": self.variables,
            "final_answer": self.final_answer,
            "retried_with_topk10": self.retried_with_topk10,
            "repair_rounds": self.repair_rounds,
            "programs": self.programs,
            "llm_calls": self.llm_calls,
            "retrieval_calls": self.retrieval_calls,
            "timings": self.timings,
            "error": self.error,
            "settings": self.settings,
            "first_program_valid": self.first_program_valid,
            "retrieved_docs": self.retrieved_docs,
            "retrievals": self.retrievals,
        }


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a question; `.result` holds what was computed before it."""

    def __init__(self, result: "PipelineResult") -> None:
        super().__init__("interrupted")
        self.result = result


__all__ = ["Interrupted", "PipelineResult"]
