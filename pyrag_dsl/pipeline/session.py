"""The library entry point that `pyrag-dsl run` uses: `Settings` (pyrag_dsl.config: flags > config file >
the reference's environment variables, validated) and a `Session` that builds the LLM clients, the retriever
and the pipeline from them, starts the embedded llama.cpp server when no LLM server is configured, checks
every server at start, and stops what it started."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..agents.llm import LLMClient, LLMConfig, LLMError
from ..config import ConfigError
from ..config.files import load_config_file
from ..config.retry import configure_breakers
from ..config.settings import Settings
from .config import pipeline_config
from .runner import Pipeline, PipelineConfig

if TYPE_CHECKING:
    from ..agents.local_server import LocalLLMServer
    from ..retrievers.base import Progress, Retriever


class Session:
    """`with Session(settings) as session: session.pipeline.run(question)`; stops what it started."""

    def __init__(self, settings: Settings | None = None, progress: Progress | None = None) -> None:
        self.settings = settings if settings is not None else Settings()
        self.progress = progress
        self.server: LocalLLMServer | None = None
        self.llm: LLMClient | None = None  # Decompose and Answer
        self.plan_llm: LLMClient | None = None  # Plan: the same client when one server serves all three
        self.retriever: Retriever | None = None
        self.pipeline: Pipeline | None = None

    def open_retriever(self) -> Retriever:
        from ..retrievers.embedded import open_retriever

        r = self.settings.retriever
        retriever = open_retriever(
            r.url, r.index, progress=self.progress, timeout_s=r.timeout_s, retries=r.retries, backoff_s=r.backoff_s
        )
        check = getattr(retriever, "check", None)  # a retrieval server: fail at start when it does not answer
        if callable(check):
            try:
                check()
            except BaseException:
                retriever.close()
                raise
        return retriever

    @property
    def clients(self) -> list[LLMClient]:
        """The LLM clients this session opened, each once."""
        return [c for c in dict.fromkeys((self.llm, self.plan_llm)) if c is not None]

    def entered_llms(self) -> tuple[LLMClient, LLMClient]:
        """The Decompose/Answer and the Plan client of an entered session (the same one when one server
        serves all three)."""
        if self.llm is None or self.plan_llm is None:
            raise RuntimeError("the session has no LLM clients: it was not entered")
        return self.llm, self.plan_llm

    def retriever_endpoint(self) -> str:
        """The retriever's name in per-endpoint caps (pipeline.batch): its URL, its index, or "embedded"."""
        r = self.settings.retriever
        return str(r.url or r.index or "embedded")

    def open_llms(self) -> tuple[LLMClient, LLMClient]:
        s = self.settings
        if s.embedded_llm:
            from ..agents.local_server import LocalLLMServer

            server = self.server = LocalLLMServer(
                s.gguf, settings=s.llama, startup_timeout_s=s.llama.startup_timeout_s, progress=self.progress
            )
            server.start()  # self.server is set first: close() stops it if start is interrupted
            config = LLMConfig(
                **{
                    **s.llm.client_fields(),
                    "model": server.alias,
                    "base_url": server.base_url,
                    "grammar": "gbnf",
                    "timeout_s": s.llama.timeout_s,
                }
            )
            llm = LLMClient(config)
            llm.health = server.check_alive  # a failed request names a dead server, not "cannot connect"
            self.llm = self.plan_llm = llm
            return llm, llm
        llm_fields, plan_fields = s.llm_fields(), s.plan_llm_fields()
        if llm_fields is None:  # Settings: no fields only when the embedded server answers (handled above)
            raise ConfigError("no LLM server is configured")
        llm = LLMClient(LLMConfig(**llm_fields))
        plan = LLMClient(LLMConfig(**plan_fields)) if plan_fields is not None and plan_fields != llm_fields else llm
        self.llm, self.plan_llm = llm, plan
        for client in self.clients:
            client.check()
        return llm, plan

    def server_crash(self) -> LLMError | None:
        """The embedded server's ServerCrashed once it has died on its own (None otherwise)."""
        return self.server.crash if self.server is not None else None

    def describe_llm(self) -> str:
        """Which model and runtime answer: the embedded server's line, or the configured URLs."""
        if self.server is not None:
            return self.server.describe()
        return ", ".join(dict.fromkeys(f"{c.config.model} at {c.config.base_url}" for c in self.clients))

    def pipeline_config(self) -> PipelineConfig:
        """The pipeline's config; `plan_grammar` auto is decided per Plan server (pipeline.defaults)."""
        return pipeline_config(self.settings)

    def __enter__(self) -> "Session":
        configure_breakers(self.settings.breaker.failures, self.settings.breaker.cooldown_s)
        try:
            retriever = self.retriever = self.open_retriever()
            llm, plan = self.open_llms()
            self.pipeline = Pipeline(llm, retriever, plan_llm=plan, config=self.pipeline_config())
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for c in self.clients:
            c.close()
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.retriever is not None:
            try:
                self.retriever.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
            self.retriever = None

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["ConfigError", "LLMError", "Session", "Settings", "load_config_file"]
