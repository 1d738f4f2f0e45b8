"""What the pipeline needs of each agent, as protocols: DecomposeAgent, PlanAgent and AnswerAgent implement them,
and so do the stand-ins that replace an agent (rl.program_rewards: a rollout's sub-queries or program, the cached
Answer agent, the Plan agent under a rollout's deadline)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:
    from ..documents import Docs
    from ..grammar import DslError
    from .decompose import Decomposition


class Decomposer(Protocol):
    def run(self, question: str) -> Decomposition: ...


class Planner(Protocol):
    @property
    def can_stream(self) -> bool: ...

    def write(self, question: str, sub_queries: list[str], on_text: Callable[[str], None] | None = None) -> str: ...

    def repair(self, question: str, sub_queries: list[str], program: str, errors: list[DslError]) -> str: ...


class Answerer(Protocol):
    def __call__(self, query: str, docs: Docs | None = None) -> str: ...


__all__ = ["Answerer", "Decomposer", "Planner"]
