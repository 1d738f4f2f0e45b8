"""Plan and decompose rewards: the rollout goes through our pipeline (validate, execute with the engine's
limits, adaptive retrieval; for decompose also the frozen Plan agent with its repair rounds), never exec.

The rollout replaces one agent of the pipeline: the Plan agent (plan stage: the rollout's program,
no repair) or the Decompose agent (decompose stage: the rollout's sub-queries). The other agents are
the frozen endpoints of `RewardSettings`.
"""

from __future__ import annotations

from typing import Any

from ..agents.decompose import Decomposition, parse_sub_queries
from ..agents.plan import extract_program
from ..grammar import Limits
from ..pipeline import Pipeline, PipelineConfig, PipelineResult
from .endpoints import CachedAnswer, CachedRetriever, llm_client, shared_cache
from .rewards import answer_score, result
from .settings import RewardSettings


class _GivenSubQueries:
    """Stands in for the Decompose agent: the rollout's sub-queries."""

    def __init__(self, sub_queries: list[str]) -> None:
        self.sub_queries = sub_queries

    def run(self, question: str) -> Decomposition:
        return Decomposition(list(self.sub_queries), False, 0, [])


class _GivenProgram:
    """Stands in for the Plan agent: the rollout's program; no repair (max_repairs is 0)."""

    def __init__(self, program: str) -> None:
        self.program = program

    def write(self, question: str, sub_queries: list[str]) -> str:
        return self.program

    def repair(self, *args: Any) -> str:  # never called with max_repairs=0
        return self.program


def _pipeline(settings: RewardSettings, max_repairs: int) -> Pipeline:
    limits = Limits(max_tool_calls=settings.max_tool_calls, tool_timeout_s=settings.tool_timeout_s,
                    run_timeout_s=settings.run_timeout_s)
    config = PipelineConfig(topk=settings.topk, boosted_topk=settings.boosted_topk, max_repairs=max_repairs,
                            use_grammar=settings.use_grammar, plan_grammar=settings.plan_grammar,
                            parallel=settings.parallel, limits=limits)
    cache = shared_cache(settings)
    answer_llm = llm_client(settings.answer_url, settings.answer_model, settings)
    plan_llm = llm_client(settings.plan_url, settings.plan_model, settings)
    pipeline = Pipeline(answer_llm, CachedRetriever(settings, cache), plan_llm=plan_llm, config=config)
    pipeline.answerer = CachedAnswer(settings, cache)
    return pipeline


def error_kind(error: dict[str, Any] | None) -> str:
    """A short typed kind: the first validation error's type, LimitExceeded:<limit>, ToolError:<cause>."""
    if not error:
        return ""
    if error.get("type") == "NoValidProgram" and error.get("errors"):
        error = error["errors"][0]
    kind = str(error.get("type", "Error"))
    detail = error.get("limit") or error.get("cause")
    return f"{kind}:{detail}" if detail else kind


def _score(res: PipelineResult, golds: list[str], num_sub_queries: int) -> dict[str, Any]:
    calls = int(res.llm_calls.get("answer", 0)) + int(res.retrieval_calls)
    if res.error is not None:
        return result(error_kind=error_kind(res.error), calls=calls, retried=res.retried_with_topk10,
                      num_sub_queries=num_sub_queries)
    pred = res.final_answer or ""
    score, f1, em = answer_score(pred, golds)
    return result(score, f1=f1, em=em, pred=pred, calls=calls, retried=res.retried_with_topk10,
                  num_sub_queries=num_sub_queries)


def plan_reward(solution_str: str, golds: list[str], question: str, settings: RewardSettings,
                sub_queries: list[str] | None = None) -> dict[str, Any]:
    """Score the Plan agent's rollout: its program, run by the engine against the frozen Answer agent."""
    if not (solution_str or "").strip():
        return result(error_kind="no_program")
    program = extract_program(solution_str)
    pipeline = _pipeline(settings, max_repairs=0)
    pipeline.decomposer = _GivenSubQueries(list(sub_queries or [question]))
    pipeline.planner = _GivenProgram(program)
    return _score(pipeline.run(question), golds, 0)


def decompose_reward(solution_str: str, golds: list[str], question: str, settings: RewardSettings) -> dict[str, Any]:
    """Score the Decompose agent's rollout: its JSON list of sub-queries goes to the frozen Plan agent (with
    repair rounds), the program runs against the frozen Answer agent."""
    sub_queries = parse_sub_queries(solution_str or "")
    if not sub_queries:
        return result(error_kind="no_sub_queries")
    if not question:
        return result(error_kind="no_question", num_sub_queries=len(sub_queries))
    pipeline = _pipeline(settings, max_repairs=settings.max_repairs)
    pipeline.decomposer = _GivenSubQueries(sub_queries)
    return _score(pipeline.run(question), golds, len(sub_queries))
