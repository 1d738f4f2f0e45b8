"""The methods eval compares, all on one LLM and one retriever (a Session's):

* `pyrag`: the pipeline (decompose, plan, execute, repair, adaptive retrieval) with the session's settings;
* `vanilla`: retrieve top-k for the question, answer once with the same Answer agent;
* `direct`: closed book, no retrieval; the model answers from its own knowledge (prompt `direct.txt`).

`Method.answer(question)` runs one question with per-question metered views of the shared clients (so LLM
calls, tokens and retrievals are counted for that question even with many questions in flight).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..agents.answer import extract_answer
from ..agents.formats import answer_rules, grammars
from ..agents.llm import LLMError
from ..agents.prompts import load_prompt, render
from ..pipeline.batch import EndpointLimits, MeteredLLM, MeteredRetriever, metered_llms
from ..pipeline.runner import Interrupted, Pipeline
from ..retrievers.base import RetrievalError, RetrieveTool

if TYPE_CHECKING:
    from ..pipeline.session import Session

METHODS = ("pyrag", "vanilla", "direct")


@dataclass
class Outcome:
    """What one method produced for one question (the eval record is built from it)."""

    prediction: str | None = None
    sub_queries: list[str] = field(default_factory=list)
    program: str | None = None
    repairs: int = 0
    adaptive_retry: bool = False
    first_program_valid: bool | None = None
    llm_calls: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    retrievals: int = 0
    retrieved_docs: list[dict[str, str]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    result: Any = None  # a PipelineResult for pyrag; a dict for the baselines (written as result.json)
    seconds: float = 0.0


class ClosedBookAgent:
    """Answers from the model's own knowledge (no documents): the `direct` baseline."""

    def __init__(self, llm: Any, max_tokens: int = 64, use_grammar: bool = True) -> None:
        self.llm = llm
        self.max_tokens = max_tokens
        self.use_grammar = use_grammar

    def __call__(self, question: str) -> str:
        prompt = render(load_prompt("direct"), query=question)
        extra = self.llm.grammar_body(*grammars(answer_rules(), "reply")) if self.use_grammar else {}
        reply = self.llm.chat([{"role": "user", "content": prompt}], max_tokens=self.max_tokens, extra_body=extra)
        return extract_answer(reply) or "unknown"


def _error(e: BaseException) -> dict[str, Any]:
    return {"type": type(e).__name__, "message": str(e)}


class Method:
    """One evaluation method over a Session's LLM clients, retriever and pipeline settings."""

    name = "base"

    def __init__(
        self,
        llm: Any,
        retriever: Any,
        *,
        plan_llm: Any = None,
        config: Any = None,
        retriever_endpoint: str = "retriever",
        limits: EndpointLimits | None = None,
    ) -> None:
        self.llm = llm
        self.plan_llm = plan_llm or llm
        self.retriever = retriever
        self.config = config
        self.retriever_endpoint = retriever_endpoint
        self.limits = limits or EndpointLimits()

    @classmethod
    def from_session(cls, session: Session, limits: EndpointLimits | None = None) -> "Method":
        if session.pipeline is None:
            raise RuntimeError("the session has no pipeline: it was not entered")
        llm, plan_llm = session.entered_llms()
        return cls(
            llm,
            session.retriever,
            plan_llm=plan_llm,
            config=session.pipeline.config,  # plan_grammar auto decided for this server
            retriever_endpoint=session.retriever_endpoint(),
            limits=limits,
        )

    def _views(self) -> tuple[MeteredLLM, MeteredLLM, MeteredRetriever]:
        llm, plan = metered_llms(self.llm, self.plan_llm, self.limits)
        return llm, plan, MeteredRetriever(self.retriever, self.retriever_endpoint, self.limits)

    def answer(self, question: str) -> Outcome:
        llm, plan, retriever = self._views()
        t0 = time.monotonic()
        out = Outcome()
        try:
            self._answer(question, llm, plan, retriever, out)
        except Interrupted as stop:
            out.result = stop.result
            raise
        except (LLMError, RetrievalError, ValueError, RuntimeError, OSError) as e:
            out.error = _error(e)
        out.seconds = round(time.monotonic() - t0, 3)
        out.retrievals = retriever.queries
        clients = [llm] if plan is llm else [llm, plan]
        if any(c.usage_reported for c in clients):
            out.prompt_tokens = sum(c.prompt_tokens for c in clients)
            out.completion_tokens = sum(c.completion_tokens for c in clients)
        out.llm_calls.setdefault("total_requests", sum(c.calls for c in clients))
        return out

    def _answer(
        self, question: str, llm: MeteredLLM, plan: MeteredLLM, retriever: MeteredRetriever, out: Outcome
    ) -> None:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        return self.settings_of(self.config)

    @staticmethod
    def settings_of(config: Any) -> dict[str, Any]:
        """The pipeline settings this method uses (recorded in the run's configuration)."""
        settings: dict[str, Any] = config.settings()  # the pipeline's PipelineConfig
        return settings


class PyragMethod(Method):
    name = "pyrag"

    def _answer(
        self, question: str, llm: MeteredLLM, plan: MeteredLLM, retriever: MeteredRetriever, out: Outcome
    ) -> None:
        pipeline = Pipeline(llm, retriever, plan_llm=plan, config=self.config)
        res = pipeline.run(question)
        out.result = res
        out.prediction = res.final_answer
        out.sub_queries = list(res.sub_queries)
        out.program = res.generated_code
        out.repairs = res.repair_rounds
        out.adaptive_retry = res.retried_with_topk10
        out.first_program_valid = res.first_program_valid
        out.llm_calls = dict(res.llm_calls)
        out.retrieved_docs = list(res.retrieved_docs)
        out.error = res.error


class VanillaMethod(Method):
    name = "vanilla"

    def _answer(
        self, question: str, llm: MeteredLLM, plan: MeteredLLM, retriever: MeteredRetriever, out: Outcome
    ) -> None:
        topk = self.config.topk
        answerer = Pipeline(llm, retriever, plan_llm=plan, config=self.config).answerer  # the pipeline's own
        docs = RetrieveTool(retriever)(query=question, topk=topk)
        out.retrieved_docs = [{"id": d.id, "title": d.title} for d in docs]
        out.prediction = answerer(question, docs)
        out.llm_calls = {"answer": 1}
        out.result = {
            "original_query": question,
            "method": self.name,
            "topk": topk,
            "retrieved": [d.to_json() for d in docs],
            "final_answer": out.prediction,
        }

    @staticmethod
    def settings_of(config: Any) -> dict[str, Any]:
        return {"topk": config.topk, "use_grammar": config.use_grammar}


class DirectMethod(Method):
    name = "direct"

    def _answer(
        self, question: str, llm: MeteredLLM, plan: MeteredLLM, retriever: MeteredRetriever, out: Outcome
    ) -> None:
        out.prediction = ClosedBookAgent(llm, use_grammar=self.config.use_grammar)(question)
        out.llm_calls = {"answer": 1}
        out.result = {"original_query": question, "method": self.name, "final_answer": out.prediction}

    @staticmethod
    def settings_of(config: Any) -> dict[str, Any]:
        return {"use_grammar": config.use_grammar}


_CLASSES = {"pyrag": PyragMethod, "vanilla": VanillaMethod, "direct": DirectMethod}


def method_class(name: str) -> type[Method]:
    try:
        return _CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; known: {', '.join(METHODS)}") from None


__all__ = [
    "METHODS",
    "ClosedBookAgent",
    "DirectMethod",
    "Method",
    "Outcome",
    "PyragMethod",
    "VanillaMethod",
    "method_class",
]
