"""Plan and decompose rewards: the rollout goes through our pipeline (validate, execute with the engine's
limits, adaptive retrieval; for decompose also the frozen Plan agent with its repair rounds), never exec.

The rollout replaces one agent of the pipeline: the Plan agent (plan stage: the rollout's program,
no repair, never streamed) or the Decompose agent (decompose stage: the rollout's sub-queries). The other
agents are the frozen endpoints of `RewardSettings`. Every endpoint call runs under the rollout's deadline
(`run_guarded`), so none is sent once the reward has returned.

A plan rollout earns the answer reward only when its `final_answer` is the result of an `answer(...)` call
fed by a `retrieve(...)` (`grounding`); a program that writes the answer itself scores 0.
"""

from __future__ import annotations

import ast
from typing import Any, Callable

from ..agents.decompose import Decomposition, parse_sub_queries
from ..agents.plan import extract_program
from ..agents.roles import Planner
from ..config.deadline import Deadline, active
from ..grammar import Limits, Program, validate
from ..pipeline import Pipeline, PipelineConfig, PipelineResult
from .endpoints import CachedAnswer, CachedRetriever, llm_client, shared_cache
from .scores import answer_score, result
from .settings import RewardSettings


class _GivenSubQueries:
    """Stands in for the Decompose agent: the rollout's sub-queries."""

    def __init__(self, sub_queries: list[str]) -> None:
        self.sub_queries = sub_queries

    def run(self, question: str) -> Decomposition:
        return Decomposition(list(self.sub_queries), False, 0, [])


class _GivenProgram:
    """Stands in for the Plan agent: the rollout's program; no repair (max_repairs is 0), nothing to stream."""

    can_stream = False

    def __init__(self, program: str) -> None:
        self.program = program

    def write(self, question: str, sub_queries: list[str], on_text: Callable[[str], None] | None = None) -> str:
        return self.program  # never streamed (can_stream is False): on_text is not called

    def repair(self, *args: Any) -> str:  # never called with max_repairs=0
        return self.program


class _PlanUnder:
    """The frozen Plan agent with its requests under the rollout's deadline (they run in the pipeline's thread)."""

    def __init__(self, agent: Planner, deadline: Deadline | None) -> None:
        self.agent = agent
        self.deadline = deadline

    def __getattr__(self, name: str) -> Any:  # the rest of the agent's interface, unchanged
        return getattr(self.agent, name)

    @property
    def can_stream(self) -> bool:
        return self.agent.can_stream

    def write(self, *args: Any, **kw: Any) -> str:
        with active(self.deadline):
            return self.agent.write(*args, **kw)

    def repair(self, *args: Any, **kw: Any) -> str:
        with active(self.deadline):
            return self.agent.repair(*args, **kw)


def _config(settings: RewardSettings, max_repairs: int, stream_plan: bool | None) -> PipelineConfig:
    limits = Limits(
        max_tool_calls=settings.max_tool_calls,
        tool_timeout_s=settings.tool_timeout_s,
        run_timeout_s=settings.run_timeout_s,
    )
    return PipelineConfig(
        topk=settings.topk,
        boosted_topk=settings.boosted_topk,
        max_repairs=max_repairs,
        use_grammar=settings.use_grammar,
        plan_grammar=settings.plan_grammar,
        parallel=settings.parallel,
        stream_plan=stream_plan,
        limits=limits,
    )


def _pipeline(settings: RewardSettings, config: PipelineConfig, deadline: Deadline | None) -> Pipeline:
    """The pipeline over the frozen endpoints; every request it makes is under `deadline`."""
    cache = shared_cache(settings)
    answer_llm = llm_client(settings.answer_url, settings.answer_model, settings)
    plan_llm = llm_client(settings.plan_url, settings.plan_model, settings)
    pipeline = Pipeline(answer_llm, CachedRetriever(settings, cache, deadline), plan_llm=plan_llm, config=config)
    pipeline.answerer = CachedAnswer(settings, cache, deadline)
    pipeline.planner = _PlanUnder(pipeline.planner, deadline)
    return pipeline


def grounding(program: Program) -> str:
    """Why the program's answer is not its own (`no_answer_call`, `no_retrieval`), or "" when `final_answer` is
    the value of an `answer(...)` call (directly or through plain names) that a `retrieve(...)` feeds (its docs,
    or for a synthesis an upstream step). Read from the resolved program's bindings, not from its text."""
    stmt = program.final_statement
    while stmt is not None and program.answer_call(stmt) is None:
        value = stmt.node.value
        stmt = program.statements[stmt.binds[value.id]] if isinstance(value, ast.Name) else None
    if stmt is None:
        return "no_answer_call"
    return "" if program.feeding_retrieves(stmt) else "no_retrieval"


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
        return result(
            error_kind=error_kind(res.error),
            calls=calls,
            retried=res.retried_with_topk10,
            num_sub_queries=num_sub_queries,
        )
    pred = res.final_answer or ""
    score, f1, em = answer_score(pred, golds)
    return result(
        score, f1=f1, em=em, pred=pred, calls=calls, retried=res.retried_with_topk10, num_sub_queries=num_sub_queries
    )


def plan_reward(
    solution_str: str, golds: list[str], question: str, settings: RewardSettings, deadline: Deadline | None = None
) -> dict[str, Any]:
    """Score the Plan agent's rollout: its program, run by the engine against the frozen Answer agent. A valid
    program whose answer is not grounded (`grounding`) scores 0 with `UngroundedAnswer:<why>` and makes no call."""
    if not (solution_str or "").strip():
        return result(error_kind="no_program")
    program = extract_program(solution_str)
    config = _config(settings, max_repairs=0, stream_plan=False)  # the program is given: nothing to stream
    checked = validate(program, config.language, config.limits)
    if checked.program is not None:  # valid (`checked.ok`)
        why = grounding(checked.program)
        if why:
            return result(error_kind=f"UngroundedAnswer:{why}")
    pipeline = _pipeline(settings, config, deadline)
    pipeline.decomposer = _GivenSubQueries([question])
    pipeline.planner = _GivenProgram(program)
    return _score(pipeline.run(question), golds, 0)


def decompose_reward(
    solution_str: str, golds: list[str], question: str, settings: RewardSettings, deadline: Deadline | None = None
) -> dict[str, Any]:
    """Score the Decompose agent's rollout: its JSON list of sub-queries goes to the frozen Plan agent (with
    repair rounds), the program runs against the frozen Answer agent."""
    sub_queries = parse_sub_queries(solution_str or "")
    if not sub_queries:
        return result(error_kind="no_sub_queries")
    if not question:
        return result(error_kind="no_question", num_sub_queries=len(sub_queries))
    config = _config(settings, max_repairs=settings.max_repairs, stream_plan=None)
    pipeline = _pipeline(settings, config, deadline)
    pipeline.decomposer = _GivenSubQueries(sub_queries)
    return _score(pipeline.run(question), golds, len(sub_queries))
