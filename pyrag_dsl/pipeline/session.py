"""Settings from flags, a config file and the reference's environment variables; a Session builds the
LLM clients, the retriever and the pipeline, and owns the embedded llama.cpp server when one is needed."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..agents.llm import LLMClient, LLMConfig, LLMError
from .runner import Pipeline, PipelineConfig


class ConfigError(Exception):
    """A bad config file or contradictory settings."""


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A TOML or JSON config file (see docs/configuration.md)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such config file: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import tomllib

            data = tomllib.loads(text)
    except (ValueError, ImportError) as e:
        raise ConfigError(f"{path}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table")
    known = {"llm", "plan_llm", "retriever", "pipeline", "output_dir", "model"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    return data


def _llm_from(section: dict[str, Any] | None, base: LLMConfig | None) -> LLMConfig | None:
    if not section:
        return base
    fields = set(LLMConfig.__dataclass_fields__)
    unknown = set(section) - fields
    if unknown:
        raise ConfigError(f"unknown LLM setting(s): {', '.join(sorted(unknown))}")
    return replace(base or LLMConfig(), **section)


@dataclass
class Settings:
    llm: LLMConfig | None = None  # None: the embedded llama.cpp server
    plan_llm: LLMConfig | None = None  # None: the same as llm
    gguf: str | None = None  # a local GGUF for the embedded server
    retriever_url: str | None = None
    index: str | None = None  # None and no url: the embedded corpus
    output_dir: str = "outputs"
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    plan_grammar: str = "auto"  # auto: skeleton for a local GGUF, language for servers

    @classmethod
    def resolve(cls, *, config_file: str | None = None, flags: dict[str, Any] | None = None,
                environ: dict[str, str] | None = None) -> "Settings":
        """Flags win over the config file, which wins over environment variables."""
        env = os.environ if environ is None else environ
        s = cls()
        s.llm = LLMConfig.from_env("", environ=env)
        plan_env = env.get("PLAN_LLM_MODEL") or env.get("PLAN_LLM_BASE_URL")
        s.plan_llm = LLMConfig.from_env("PLAN_", s.llm, environ=env) if plan_env else None
        s.output_dir = env.get("OUTPUT_DIR", s.output_dir)
        if config_file:
            data = load_config_file(config_file)
            s.llm = _llm_from(data.get("llm"), s.llm)
            if data.get("plan_llm"):
                s.plan_llm = _llm_from(data["plan_llm"], s.plan_llm or s.llm)
            retr = data.get("retriever") or {}
            s.retriever_url = retr.get("url", s.retriever_url)
            s.index = retr.get("index", s.index)
            s.output_dir = data.get("output_dir", s.output_dir)
            s.gguf = data.get("model", s.gguf)
            pipe = dict(data.get("pipeline") or {})
            s.plan_grammar = pipe.pop("plan_grammar", s.plan_grammar)
            try:
                s.pipeline = replace(s.pipeline, **pipe)
            except TypeError as e:
                raise ConfigError(f"{config_file}: [pipeline] {e}") from None
        f = {k: v for k, v in (flags or {}).items() if v is not None}
        if "llm_url" in f or "llm_model" in f:
            s.llm = (s.llm or LLMConfig()).with_(base_url=f.get("llm_url", (s.llm or LLMConfig()).base_url),
                                                 model=f.get("llm_model", (s.llm or LLMConfig()).model))
        if "plan_llm_url" in f or "plan_llm_model" in f:
            base = s.plan_llm or s.llm or LLMConfig(base_url="http://127.0.0.1:8336/v1")
            s.plan_llm = base.with_(base_url=f.get("plan_llm_url", base.base_url),
                                    model=f.get("plan_llm_model", base.model))
        if "timeout" in f:
            s.llm = s.llm.with_(timeout_s=f["timeout"]) if s.llm else None
            s.plan_llm = s.plan_llm.with_(timeout_s=f["timeout"]) if s.plan_llm else None
        s.gguf = f.get("model", s.gguf)
        s.retriever_url = f.get("retriever_url", s.retriever_url)
        s.index = f.get("index", s.index)
        s.output_dir = f.get("output_dir", s.output_dir)
        s.plan_grammar = f.get("plan_grammar", s.plan_grammar)
        pipe_flags = {k: f[k] for k in ("topk", "boosted_topk", "max_repairs", "policy", "parallel") if k in f}
        if f.get("no_grammar"):
            pipe_flags["use_grammar"] = False
        s.pipeline = replace(s.pipeline, **pipe_flags)
        if s.gguf and s.llm:
            raise ConfigError("--model (a local GGUF) and an LLM server were both given; pick one")
        if s.retriever_url and s.index:
            raise ConfigError("a retriever URL and an index were both given; pick one")
        return s

    @property
    def embedded_llm(self) -> bool:
        return self.llm is None and self.plan_llm is None


class Session:
    """`with Session(settings) as session: session.pipeline.run(question)`; stops what it started."""

    def __init__(self, settings: Settings, progress=None) -> None:
        self.settings = settings
        self.progress = progress
        self.server = None
        self.clients: list[LLMClient] = []
        self.retriever = None
        self.pipeline: Pipeline | None = None

    def open_retriever(self):
        from ..retrievers.embedded import open_retriever

        return open_retriever(self.settings.retriever_url, self.settings.index, progress=self.progress)

    def open_llms(self) -> tuple[LLMClient, LLMClient]:
        s = self.settings
        if s.embedded_llm:
            from ..agents.local_server import LocalLLMServer

            self.server = LocalLLMServer(s.gguf).start()
            config = LLMConfig(model=self.server.alias, base_url=self.server.base_url, grammar="gbnf", timeout_s=300)
            llm = LLMClient(config)
            self.clients = [llm]
            return llm, llm
        if s.llm is None:
            raise ConfigError("a Plan LLM server was given without a Decompose/Answer one (--llm-url or LLM_BASE_URL)")
        llm = LLMClient(s.llm)
        plan = LLMClient(s.plan_llm) if s.plan_llm is not None and s.plan_llm != s.llm else llm
        self.clients = [llm] if plan is llm else [llm, plan]
        for client in self.clients:
            client.check()
        return llm, plan

    def pipeline_config(self) -> PipelineConfig:
        s = self.settings
        grammar = s.plan_grammar
        if grammar == "auto":
            grammar = "skeleton" if s.embedded_llm else "language"
        return replace(s.pipeline, plan_grammar=grammar)

    def __enter__(self) -> "Session":
        try:
            self.retriever = self.open_retriever()
            llm, plan = self.open_llms()
            self.pipeline = Pipeline(llm, self.retriever, plan_llm=plan, config=self.pipeline_config())
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
