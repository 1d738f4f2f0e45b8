"""Names of the reference implementation's library API, so its users can switch with few changes:

    from pyrag_dsl.compat import HttpRetrievalAgent, OpenAILLM, RAGProgramRunner, env_enable_thinking

`RAGProgramRunner.run(question, topk=5)` returns a dict with the reference's keys (plus ours).
"""

from __future__ import annotations

import os
from typing import Any

from .agents.llm import LLMClient, LLMConfig
from .config.defaults import TOPK
from .pipeline.runner import Pipeline, PipelineConfig
from .retrievers.base import Retriever
from .retrievers.http_client import HttpRetriever


def env_enable_thinking() -> bool:
    return os.environ.get("ENABLE_THINKING", "").strip().lower() in ("1", "true", "yes", "on")


def OpenAILLM(model: str, base_url: str, enable_thinking: bool = False, **kw: Any) -> LLMClient:  # noqa: N802
    return LLMClient(LLMConfig(model=model, base_url=base_url, enable_thinking=enable_thinking, **kw))


def HttpRetrievalAgent(host: str = "127.0.0.1", port: int = 8008, **kw: Any) -> HttpRetriever:  # noqa: N802
    return HttpRetriever(f"http://{host}:{port}", **kw)


class RAGProgramRunner:
    def __init__(
        self,
        llm: LLMClient,
        retrieval_agent: Retriever,
        plan_llm: LLMClient | None = None,
        config: PipelineConfig | None = None,
    ) -> None:
        self.pipeline = Pipeline(llm, retrieval_agent, plan_llm=plan_llm, config=config)

    def run(self, question: str, topk: int = TOPK) -> dict[str, Any]:
        result = self.pipeline.run(question, topk=topk)
        return {**result.to_dict(), "trace": result.trace}
