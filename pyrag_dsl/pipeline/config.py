"""What a pipeline runs with: `PipelineConfig`, its defaults read from config.defaults; `pipeline_config`
builds it from the settings (run, eval, Session), pipeline.recorded_config rebuilds it from a trace header
(replay); `settings()` is what a trace header records."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..agents.answer import Sentinels
from ..config import defaults as D
from ..grammar import DEFAULT_LANGUAGE, Language, Limits

if TYPE_CHECKING:
    from ..config.settings import Settings

POLICIES = D.POLICIES


@dataclass(frozen=True)
class PipelineConfig:
    topk: int = D.TOPK
    boosted_topk: int = D.BOOSTED_TOPK
    max_repairs: int = D.MAX_REPAIRS
    policy: str = D.POLICY  # "reference": re-run the whole program on repair and on adaptive retry
    use_grammar: bool = True  # constrained decoding wherever the server supports it
    plan_grammar: str = D.PLAN_GRAMMAR  # language | skeleton (small models) | off | auto: per Plan server
    # (pipeline.defaults)
    parallel: bool = False  # dataflow mode: independent statements concurrently, retrieves batched
    max_workers: int = D.MAX_WORKERS  # dataflow mode: statements in flight at once
    batch_window_s: float = D.BATCH_WINDOW_S  # dataflow mode: retrieves ready within it go out as one batch
    stream_plan: bool | None = None  # run statements while the plan streams in; None: only with vLLM servers
    # (never with policy "reference" or a skeleton plan: _RunState._stream_plan)
    sentinels: tuple[str, ...] | None = None  # None: the default list (agents/prompts/sentinels.txt)
    deadline_s: float | None = None  # per question: every LLM/retriever call gets the time left; None: none
    llm_events: bool = False  # record each LLM call as an "llm" trace event (pipeline.events.LLMCalls)
    limits: Limits = field(default_factory=Limits)
    language: Language = DEFAULT_LANGUAGE

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")

    def settings(self) -> dict[str, Any]:
        return {
            "topk": self.topk,
            "boosted_topk": self.boosted_topk,
            "policy": self.policy,
            "plan_grammar": self.plan_grammar if self.use_grammar else "off",
            "max_repairs": self.max_repairs,
            "parallel": self.parallel,
            "deadline_s": self.deadline_s,
            "max_workers": self.max_workers,
            "stream_plan": self.stream_plan,
            "sentinels": list(Sentinels(self.sentinels).phrases),
            "limits": limits_to_json(self.limits),  # limits and language: replay rebuilds them
            "language": language_to_json(self.language),
        }


def limits_to_json(limits: Limits) -> dict[str, Any]:
    return dataclasses.asdict(limits)


def language_to_json(language: Language) -> dict[str, Any]:
    return {"tools": list(language.tools), "nodes": [kind.name for kind in language.nodes.values()]}


def pipeline_config(settings: "Settings", **overrides: Any) -> PipelineConfig:
    """The PipelineConfig of these settings (`plan_grammar` auto is decided by the Pipeline for its Plan LLM)."""
    p = settings.pipeline
    fields = dict(
        topk=p.topk,
        boosted_topk=p.boosted_topk,
        max_repairs=p.max_repairs,
        policy=p.policy,
        use_grammar=p.use_grammar,
        plan_grammar=p.plan_grammar,
        parallel=p.parallel,
        max_workers=p.max_workers,
        stream_plan=p.stream_plan,
        sentinels=tuple(p.sentinels) if p.sentinels is not None else None,
        deadline_s=p.deadline_s,
        llm_events=True,
    )  # run, eval and Session traces record each LLM call (the viewer, OpenTelemetry)
    return PipelineConfig(**{**fields, **overrides})


__all__ = ["POLICIES", "PipelineConfig", "language_to_json", "limits_to_json", "pipeline_config"]
