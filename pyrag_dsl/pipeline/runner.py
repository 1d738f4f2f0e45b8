"""The pipeline: decompose -> plan -> validate -> execute -> repair -> adaptive retrieval."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

from ..agents.answer import AnswerAgent, Sentinels
from ..agents.decompose import DecomposeAgent
from ..agents.llm import LLMError, PipelineLLM
from ..agents.plan import PlanAgent, render_errors
from ..agents.roles import Answerer, Decomposer, Planner
from ..config import deadline
from ..grammar import FINAL_ANSWER, validate
from ..grammar.errors import DslError
from ..interpreter import CallCache, Run
from ..interpreter.trace import TraceEvent, value_to_json
from ..retrievers.base import Retriever, RetrieveTool
from .adaptive import Executor
from .config import PipelineConfig
from .defaults import resolve_plan_grammar
from .events import (
    DecomposeEvent,
    FinalEvent,
    LLMCalls,
    PlanEvent,
    PlanStreamEvent,
    RepairEvent,
    append_event,
)
from .prefetch import Prefetcher
from .result import Interrupted, PipelineResult
from .retrieved import first_program_valid, retrieved_documents
from .steps import execution_log


class _Counting:
    """Counts calls of a tool callable (and forwards `batch` when the tool has one)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.calls = 0
        if callable(getattr(fn, "batch", None)):
            self.batch = self._batch

    def __call__(self, **kw: Any) -> Any:
        self.calls += 1
        return self.fn(**kw)

    def _batch(self, calls: list[dict[str, Any]]) -> list[Any]:
        self.calls += len(calls)
        batch: Callable[[list[dict[str, Any]]], list[Any]] = getattr(self.fn, "batch")  # set only when fn has one
        return batch(calls)


class Pipeline:
    """Answers questions with the three agents, the engine and a retriever. `llm` serves Decompose and
    Answer; `plan_llm` (default: `llm`) writes the programs."""

    def __init__(
        self,
        llm: PipelineLLM,
        retriever: Retriever,
        *,
        plan_llm: PipelineLLM | None = None,
        config: PipelineConfig | None = None,
        extra_tools: dict[str, Callable[..., Any]] | None = None,
    ) -> None:
        self.config = config or PipelineConfig()
        self.llm = llm
        self.plan_llm = plan_llm or llm
        if self.config.plan_grammar == "auto":  # one place decides the default for this server: pipeline.defaults
            self.config = dataclasses.replace(self.config, plan_grammar=resolve_plan_grammar("auto", self.plan_llm))
        g = self.config.use_grammar
        small = g and self.config.plan_grammar == "skeleton"  # small-model prompts (agents/small_model.py)
        self.decomposer: Decomposer = DecomposeAgent(llm, use_grammar=g, small=small)
        self.planner: Planner = PlanAgent(
            self.plan_llm, self.config.language, grammar=self.config.plan_grammar if g else "off"
        )
        self.answerer: Answerer = AnswerAgent(llm, use_grammar=g, small=small)
        self.retriever = retriever
        self.is_sentinel = Sentinels(self.config.sentinels)
        self.extra_tools = dict(extra_tools or {})
        self._running: _RunState | None = None  # the question run() is answering now

    # -- public ---------------------------------------------------------------------------------
    def interrupted_result(self) -> "PipelineResult | None":
        """From another thread, while run() answers in a worker (Ctrl-C with several questions in flight):
        what the question has computed so far, marked Interrupted, as run() gives it on Ctrl-C. None when no
        question was started. The worker is not stopped; read this only when its work is to be dropped."""
        state = self._running
        if state is None:
            return None
        if state.done:  # run() has returned: its result is whole
            return state.result
        if state.result.error is None:
            state.result.error = {"type": "Interrupted", "message": "interrupted by the user"}
        for _ in range(5):  # the worker may change a dict while it is read: read again
            try:
                state.finish()
                break
            except RuntimeError:
                continue
        return state.result

    def tools(self) -> dict[str, Callable[..., Any]]:
        """The tools a program runs with: retrieve over the retriever, answer by the Answer agent, extras."""
        return {**self.extra_tools, "retrieve": RetrieveTool(self.retriever), "answer": self.answerer}

    def run(self, question: str, topk: int | None = None) -> PipelineResult:
        """Answer one question. Ctrl-C raises Interrupted, which carries the result computed so far."""
        cfg = self.config if topk is None else dataclasses.replace(self.config, topk=topk)
        with deadline.active(deadline.Deadline.after(cfg.deadline_s)):  # every call of this question: time left
            return self._run(question, cfg)

    def _run(self, question: str, cfg: PipelineConfig) -> PipelineResult:
        result = PipelineResult(original_query=question, settings=cfg.settings())
        state = self._running = _RunState(self, cfg, result)
        interrupted = False
        try:
            state.go()
        except LLMError as e:  # decompose or plan failed: keep what was computed
            result.error = {"type": "LLMError", "message": str(e)}
        except KeyboardInterrupt:
            result.error = {"type": "Interrupted", "message": "interrupted by the user"}
            interrupted = True
        finally:
            state.finish()
            state.done = True
        if interrupted:
            raise Interrupted(result)
        return result


class _RunState:
    def __init__(self, pipeline: Pipeline, cfg: PipelineConfig, result: PipelineResult) -> None:
        self.pipeline = pipeline
        self.cfg = cfg
        self.result = result
        self.t0 = time.monotonic()
        self.llm_before = (pipeline.llm.calls, pipeline.plan_llm.calls)
        self.llm_calls = LLMCalls(cfg.llm_events)
        tools = self.llm_calls.tools(deadline.carry(pipeline.tools()))  # tool threads: this question's deadline
        self.retrieve = tools["retrieve"] = _Counting(tools["retrieve"])
        self.answer = tools["answer"] = _Counting(tools["answer"])
        self.executor = Executor(cfg, tools, pipeline.is_sentinel, self.result.trace, self.result)
        self.decompose_calls = 0
        self.plan_calls = 0
        self.plan_s = 0.0
        self.done = False  # run() has finished with this question

    def emit(self, event_cls: type[TraceEvent], **kw: Any) -> None:
        append_event(self.result.trace, event_cls, **kw)

    def _stream_plan(self) -> bool:
        """Streamed plan execution: as configured; by default only with a server that serves requests
        concurrently (vLLM), where it was measured to help (benchmarks/dataflow.py). Never where the streamed
        calls would not be reused: the reference policy runs programs without the call cache, and a skeleton
        plan may be replaced when it is finished."""
        if self.cfg.policy == "reference" or not self.pipeline.planner.can_stream:
            return False
        if self.cfg.stream_plan is not None:
            return self.cfg.stream_plan
        return self.pipeline.plan_llm.server_kind() == "vllm"

    def go(self) -> None:
        """Decompose, plan, then validate, execute and repair until a program runs; then adaptive retrieval."""
        sub_queries = self._decompose()
        cache = CallCache()
        source, start = self._plan(sub_queries, cache)
        attempt = self._run_or_repair(sub_queries, source, start, cache)
        if attempt is not None:
            self.executor.adaptive(attempt)

    def _decompose(self) -> list[str]:
        """The Decompose agent's sub-queries (recorded in the result and as a `decompose` event)."""
        q, res = self.result.original_query, self.result
        start = time.time()
        d = self.llm_calls.call("decompose", self.pipeline.decomposer.run, q)
        self.decompose_calls = d.attempts
        res.sub_queries = d.sub_queries
        self.emit(
            DecomposeEvent,
            start=start,
            question=q,
            sub_queries=d.sub_queries,
            fallback=d.fallback,
            attempts=d.attempts,
            raw=d.raw,
        )
        res.timings["decompose_s"] = round(time.monotonic() - self.t0, 3)
        return d.sub_queries

    def _plan(self, sub_queries: list[str], cache: CallCache) -> tuple[str, float]:
        """The Plan agent's first program and when its writing started; streamed, the statements that can run
        while it is written run then, their calls landing in `cache`."""
        q, cfg = self.result.original_query, self.cfg
        t_plan = time.monotonic()
        start = time.time()
        if self._stream_plan():
            prefetch = Prefetcher(
                cfg.language, cfg.limits, self.executor.tools, cache, {"topk": cfg.topk}, max_workers=cfg.max_workers
            )
            try:
                source = self.llm_calls.call("plan", self.pipeline.planner.write, q, sub_queries, on_text=prefetch.feed)
            finally:
                report = prefetch.finish()
                self.emit(
                    PlanStreamEvent,
                    start=start,
                    plan_done_s=report.plan_done_s,
                    dispatched=[vars(x) for x in report.dispatched],
                )
        else:
            source = self.llm_calls.call("plan", self.pipeline.planner.write, q, sub_queries)
        self.plan_s = time.monotonic() - t_plan
        self.plan_calls += 1
        return source, start

    def _run_or_repair(self, sub_queries: list[str], source: str, start: float, cache: CallCache) -> int | None:
        """Validate and execute the program; on errors a repairable program goes back to the Plan agent, up to
        `max_repairs` times. The attempt that ran without error, or None when the question stops with an
        error (recorded in the result)."""
        cfg, res = self.cfg, self.result
        attempt = 0
        for round_ in range(cfg.max_repairs + 1):
            res.programs.append(source)
            checked = validate(source, cfg.language, cfg.limits)
            self.emit(
                PlanEvent, start=start, round=round_, program=source, errors=[e.to_dict() for e in checked.errors]
            )
            errors: list[DslError]
            if checked.program is not None:
                res.generated_code = source
                attempt += 1
                if cfg.policy == "reference":
                    cache = CallCache()  # the reference re-runs everything, re-sampling every call
                run = self.executor.execute(checked.program, cache, attempt)
                if run.error is None:
                    return attempt
                errors = [run.error]
                if not _repairable(run.error):
                    res.error = run.error.to_dict()
                    return None
            else:
                errors = checked.errors
            if round_ == cfg.max_repairs:
                res.error = {
                    "type": "NoValidProgram",
                    "message": f"no valid program after {cfg.max_repairs} repairs",
                    "errors": [e.to_dict() for e in errors],
                }
                return None
            source, start = self._repair(sub_queries, source, errors, round_ + 1)
        return None  # not reached: the last round returns

    def _repair(self, sub_queries: list[str], source: str, errors: list[DslError], round_: int) -> tuple[str, float]:
        """The Plan agent's program for `errors` (repair round `round_`), recorded as a `repair` event, and
        when the repair started."""
        q, res = self.result.original_query, self.result
        start, t_repair = time.time(), time.monotonic()
        feedback = render_errors(errors)
        source = self.llm_calls.call("repair", self.pipeline.planner.repair, q, sub_queries, source, errors)
        self.plan_s += time.monotonic() - t_repair
        self.plan_calls += 1
        res.repair_rounds = round_
        self.emit(
            RepairEvent,
            start=start,
            round=round_,
            errors=[e.to_dict() for e in errors],
            feedback=feedback,
            program=source,
        )
        return source, start

    @property
    def run(self) -> Run | None:
        return self.executor.run

    # -- result -------------------------------------------------------------------------------------
    def finish(self) -> None:
        res, run = self.result, self.run
        if run is not None:
            variables = run.variables
            res.variables = {k: value_to_json(v) for k, v in variables.items()}
            value = variables.get(FINAL_ANSWER)
            res.final_answer = None if value is None else str(value)
            if res.error is None and run.error is not None:
                res.error = run.error.to_dict()
        res.execution_log = execution_log(res.trace)
        res.retrieved_docs, res.retrievals = retrieved_documents(res.trace)
        res.first_program_valid = first_program_valid(res.trace)
        res.retrieval_calls = self.retrieve.calls
        answer_calls = self.answer.calls
        llm, plan_llm = self.pipeline.llm, self.pipeline.plan_llm
        total = (llm.calls - self.llm_before[0]) + (plan_llm.calls - self.llm_before[1] if plan_llm is not llm else 0)
        res.llm_calls = {
            "decompose": self.decompose_calls,
            "plan": self.plan_calls,
            "answer": answer_calls,
            "total_requests": total,
        }
        res.timings["plan_s"] = round(self.plan_s, 3)
        res.timings["total_s"] = round(time.monotonic() - self.t0, 3)
        self.llm_calls.flush(res.trace, self.cfg.limits.max_trace_bytes)
        self.emit(FinalEvent, final_answer=res.final_answer, program=res.generated_code, error=res.error)


def _repairable(err: DslError) -> bool:
    """Runtime errors a new program can fix. Not: retriever or LLM failures, timeouts, interrupts, a tool's
    result over a limit (an over-long document from the retriever is not the program's fault)."""
    if err.kind == "ArgumentOutOfRange":
        return True
    if err.kind == "ToolError":
        return err.details.get("cause") not in ("RetrievalError", "LLMError")
    if err.kind == "LimitExceeded" and "tool" in err.details and err.details.get("limit") == "max_string_length":
        return False  # a result too long (too many documents is fixable: a smaller topk)
    return err.kind == "LimitExceeded" and err.details.get("limit") not in (
        "tool_timeout_s",
        "run_timeout_s",
        "interrupted",
        "max_trace_bytes",
    )


__all__ = ["Executor", "Interrupted", "Pipeline", "PipelineConfig", "PipelineResult"]
