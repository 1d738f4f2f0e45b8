"""The Plan grammar a server gets when none is chosen (`plan_grammar` auto), decided in one place for
`pyrag-dsl run`, the library (Session, and Pipeline with `PipelineConfig()`) and `eval`: the same model gets
the same grammar however it is reached (`--model`, `LLM_BASE_URL`, or an LLMClient handed to Pipeline). The
settings' own defaults are pyrag_dsl.config.defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..agents.llm import PipelineLLM


def plan_grammar_for(server_kind: str) -> str:
    """The Plan grammar when none is chosen: `skeleton` on llama.cpp servers (the small local models write
    valid programs only under it), the whole `language` on vLLM and other servers."""
    return "skeleton" if server_kind == "llama.cpp" else "language"


def resolve_plan_grammar(grammar: str, plan_llm: "PipelineLLM") -> str:
    """`grammar`, or for `auto` the choice of plan_grammar_for for the Plan LLM's server (asked once)."""
    if grammar != "auto":
        return grammar
    return plan_grammar_for(plan_llm.server_kind())


__all__ = ["plan_grammar_for", "resolve_plan_grammar"]
