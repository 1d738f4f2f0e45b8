"""The one place that decides pipeline defaults for a model and server, used by `pyrag-dsl run`, by the
library (Session, and Pipeline with `PipelineConfig()`) and by `eval`: the same model gets the same settings
however it is reached (`--model`, `LLM_BASE_URL`, or an LLMClient handed to Pipeline)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..agents.llm import LLMClient
    from ..config.settings import Settings
    from .runner import PipelineConfig


def plan_grammar_for(server_kind: str, model: str | None = None) -> str:
    """The Plan grammar when none is chosen: `skeleton` on llama.cpp servers (the small local models write
    valid programs only under it), the whole `language` on vLLM and other servers."""
    return "skeleton" if server_kind == "llama.cpp" else "language"


def resolve_plan_grammar(grammar: str, plan_llm: "LLMClient") -> str:
    """`grammar`, or for `auto` the choice of plan_grammar_for for the Plan LLM's server (asked once)."""
    if grammar != "auto":
        return grammar
    return plan_grammar_for(plan_llm.server_kind(), plan_llm.config.model)


def pipeline_config(settings: "Settings", **overrides: Any) -> "PipelineConfig":
    """The PipelineConfig of these settings (`plan_grammar` auto is decided by the Pipeline for its Plan LLM)."""
    from .runner import PipelineConfig

    p = settings.pipeline
    fields = dict(topk=p.topk, boosted_topk=p.boosted_topk, max_repairs=p.max_repairs, policy=p.policy,
                  use_grammar=p.use_grammar, plan_grammar=p.plan_grammar, parallel=p.parallel,
                  max_workers=p.max_workers, stream_plan=p.stream_plan,
                  sentinels=tuple(p.sentinels) if p.sentinels is not None else None, deadline_s=p.deadline_s,
                  llm_events=True)  # run, eval and Session traces record each LLM call (the viewer, OpenTelemetry)
    return PipelineConfig(**{**fields, **overrides})


__all__ = ["pipeline_config", "plan_grammar_for", "resolve_plan_grammar"]
