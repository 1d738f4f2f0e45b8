"""The one typed settings model (pydantic-settings): flags > config file (TOML/JSON) > the reference's
environment variables, validated at start. A bad value is a ConfigError whose one line names the key
and where it came from: `--topk: ...`, `config [pipeline] topk: ...`, `ENABLE_THINKING: ...`.

Sections: [llm], [plan_llm], [retriever], [pipeline], [llama] (the embedded llama.cpp server) and
[breaker] (fail fast on an endpoint that keeps failing); top-level `output_dir` and `model`.
To add a setting: a field in its section, a line in sources.FLAGS if a flag sets it, a row in docs/configuration.md.
"""

from __future__ import annotations

import contextvars
import os
from typing import Any, Literal, Mapping, Optional
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from . import defaults as D
from .errors import ConfigError
from .files import load_config_file
from .limits import MAX_TOPK
from .messages import error_message, expected, unwrap
from .sources import ENV_VARS, FLAGS, Layers, Tree, flags_to_tree, reference_env

DEFAULT_LLM_URL = "http://127.0.0.1:8337/v1"  # the reference's Decompose/Answer port
DEFAULT_LLM_MODEL = "local"


def _http_url(value: Optional[str]) -> Optional[str]:
    """`value` when it is an http(s) URL with a host that an HTTP client accepts (no spaces or control
    characters, brackets and port well formed)."""
    if value is None:
        return value
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must be an http(s) URL (without spaces or control characters)")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ValueError("must be an http(s) URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """true/false where a number is expected is refused (pydantic would take it as 1/0), as the flags do."""
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, bool) and field is not None and unwrap(field.annotation) in (int, float):
            raise ValueError(f"must be {expected(field)}")
        return value


class LLMSettings(_Section):
    """An OpenAI-compatible server. With neither `base_url` nor `model` set it is not configured, and the
    embedded llama.cpp server is used. `grammar`: auto (ask the server), gbnf (llama.cpp), lark (vLLM), off."""

    base_url: Optional[str] = Field(default=None, json_schema_extra={"expected": "an http(s) URL"})
    model: Optional[str] = None
    api_key: str = "EMPTY"
    timeout_s: float = Field(default=D.LLM_TIMEOUT_S, gt=0, le=86_400)
    retries: int = Field(default=D.LLM_RETRIES, ge=0, le=20)
    backoff_s: float = Field(default=D.LLM_BACKOFF_S, ge=0, le=600)
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=D.LLM_MAX_TOKENS, ge=1, le=1_000_000)
    enable_thinking: bool = False
    grammar: Literal["auto", "gbnf", "lark", "off"] = "auto"
    extra_body: dict[str, Any] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: Optional[str]) -> Optional[str]:
        return _http_url(value)

    @property
    def configured(self) -> bool:
        return self.base_url is not None or self.model is not None

    def client_fields(self) -> dict[str, Any]:
        """The fields of agents.LLMConfig (unset URL and model take the reference's defaults)."""
        return {
            **self.model_dump(),
            "base_url": self.base_url or DEFAULT_LLM_URL,
            "model": self.model or DEFAULT_LLM_MODEL,
        }


class RetrieverSettings(_Section):
    """Where documents come from: a Search-R1 `/retrieve` server (`url`), an index directory (`index`), or
    neither (the embedded corpus). Timeout and retries apply to the server."""

    url: Optional[str] = Field(default=None, json_schema_extra={"expected": "an http(s) URL"})
    index: Optional[str] = None
    timeout_s: float = Field(default=D.RETRIEVER_TIMEOUT_S, gt=0, le=86_400)
    retries: int = Field(default=D.RETRIEVER_RETRIES, ge=0, le=20)
    backoff_s: float = Field(default=D.RETRIEVER_BACKOFF_S, ge=0, le=600)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: Optional[str]) -> Optional[str]:
        return _http_url(value)


class PipelineSettings(_Section):
    """The pipeline's knobs. `plan_grammar` auto: decided per Plan server by pipeline.defaults."""

    topk: int = Field(default=D.TOPK, ge=1, le=MAX_TOPK)
    boosted_topk: int = Field(default=D.BOOSTED_TOPK, ge=1, le=MAX_TOPK)
    max_repairs: int = Field(default=D.MAX_REPAIRS, ge=0, le=100)
    policy: Literal["incremental", "reference"] = D.POLICY
    use_grammar: bool = True
    plan_grammar: Literal["auto", "language", "skeleton", "off"] = D.PLAN_GRAMMAR
    parallel: bool = False
    max_workers: int = Field(default=D.MAX_WORKERS, ge=1, le=256)  # dataflow mode: statements in flight at once
    stream_plan: Optional[bool] = None  # run statements while the plan streams; None: only with vLLM servers
    sentinels: Optional[list[str]] = None  # None: agents/prompts/sentinels.txt
    deadline_s: Optional[float] = Field(default=None, gt=0, le=604_800)  # per question; None: no deadline


class LlamaSettings(_Section):
    """The embedded llama.cpp server ([llama] in a config file; flags --threads, --n-ctx, --omp-wait-policy,
    --no-prompt-cache), started when no LLM server is configured; its GGUF is the top-level `model`.
    agents.local_server.LocalLLMServer takes it as it is (the one definition of these settings)."""

    threads: Optional[int] = Field(default=None, ge=1, le=1024)  # None: the CPUs this process may use, at most 8
    threads_batch: Optional[int] = Field(default=None, ge=1, le=1024)  # prompt evaluation; None: same as threads
    n_ctx: int = Field(default=D.LLAMA_N_CTX, ge=256, le=1_048_576)
    n_batch: int = Field(default=512, ge=1, le=65_536)
    omp_wait_policy: Literal["passive", "active"] = D.OMP_WAIT_POLICY  # active: OpenMP busy-waiting
    # llama-cpp-python's RAM cache of evaluated prompts. Off by default: each entry also copies the model's
    # score array (n_batch x vocabulary floats, ~300 MB for Qwen2.5), which the cache's size limit does not
    # count, so the server grows by that much per distinct prompt (an OOM kill at 23 GB seen with the 1.5B).
    # Without it the server still reuses the prefix a prompt shares with the previous one.
    prompt_cache: bool = False
    cache_mb: int = Field(default=1024, ge=1, le=1_048_576)  # the cache's limit (it counts the model state only)
    startup_timeout_s: float = Field(default=180.0, gt=0, le=86_400)
    timeout_s: float = Field(default=D.LLAMA_TIMEOUT_S, gt=0, le=86_400)  # per request to it

    def server_fields(self) -> dict[str, Any]:
        """The fields that shape the server process (not the start-up and request timeouts)."""
        return self.model_dump(exclude={"startup_timeout_s", "timeout_s"})

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def resolved_threads(self) -> int:
        """`threads`, or the CPUs this process may use, at most 8."""
        if self.threads:
            return self.threads
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:
            n = os.cpu_count() or 2
        return max(1, min(n, 8))


class BreakerSettings(_Section):
    """Fail fast: after `failures` consecutive failed requests to one endpoint (LLM or retriever), calls to
    it fail at once for `cooldown_s`, then one call may try again."""

    failures: int = Field(default=D.BREAKER_FAILURES, ge=1, le=1000)
    cooldown_s: float = Field(default=D.BREAKER_COOLDOWN_S, ge=0, le=86_400)


_LAYERS: contextvars.ContextVar[Optional[tuple[Tree, Tree]]] = contextvars.ContextVar("pyrag_dsl_layers", default=None)


class _DictSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self.data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self.data


class Settings(BaseSettings):
    """Everything `pyrag-dsl run` (and the library's Session) is configured by. `Settings()` reads the
    reference's environment variables; `Settings.resolve(config_file=, flags=)` layers a file and flags."""

    model_config = SettingsConfigDict(extra="forbid")

    output_dir: str = "outputs"
    model: Optional[str] = None  # a local GGUF for the embedded llama.cpp server
    llm: LLMSettings = Field(default_factory=LLMSettings)
    plan_llm: Optional[LLMSettings] = None  # None: the same as llm; its unset fields come from llm
    retriever: RetrieverSettings = Field(default_factory=RetrieverSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    llama: LlamaSettings = Field(default_factory=LlamaSettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        layers = _LAYERS.get()
        file_data, env_data = layers if layers is not None else ({}, reference_env(os.environ))
        return init_settings, _DictSource(settings_cls, file_data), _DictSource(settings_cls, env_data)

    @model_validator(mode="before")
    @classmethod
    def _plan_inherits_llm(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("plan_llm"), dict):
            llm = data.get("llm")
            base = llm.model_dump(exclude_unset=True) if isinstance(llm, LLMSettings) else llm
            plan = {**(base if isinstance(base, dict) else {}), **data["plan_llm"]} if data["plan_llm"] else None
            data = {**data, "plan_llm": plan}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        if self.model and self.llm.configured:
            raise ValueError("a local GGUF (--model) and an LLM server were both given; pick one")
        if self.plan_llm is not None and not self.llm.configured:
            raise ValueError("a Plan LLM server was given without a Decompose/Answer one (--llm-url or LLM_BASE_URL)")
        if self.retriever.url and self.retriever.index:
            raise ValueError("a retriever URL and an index were both given; pick one")
        return self

    @property
    def gguf(self) -> Optional[str]:
        """The embedded server's model (a GGUF path or a model name); None: the default one."""
        return self.model

    @property
    def embedded_llm(self) -> bool:
        """True when no LLM server is configured: the embedded llama.cpp server answers."""
        return not self.llm.configured and self.plan_llm is None

    def llm_fields(self) -> Optional[dict[str, Any]]:
        """agents.LLMConfig fields of the Decompose/Answer server; None for the embedded server."""
        return None if self.embedded_llm else self.llm.client_fields()

    def plan_llm_fields(self) -> Optional[dict[str, Any]]:
        """agents.LLMConfig fields of the Plan server; None when it is the Decompose/Answer one."""
        return None if self.plan_llm is None else self.plan_llm.client_fields()

    @classmethod
    def resolve(
        cls,
        *,
        config_file: Optional[str] = None,
        flags: Optional[Mapping[str, Any]] = None,
        environ: Optional[Mapping[str, str]] = None,
    ) -> "Settings":
        """Flags (argparse dest names, see FLAGS; None means not given) win over the config file, which wins
        over the environment. Raises ConfigError with one line naming the bad key."""
        env = reference_env(os.environ if environ is None else environ)
        file_data = load_config_file(config_file) if config_file else {}
        init, flag_names = flags_to_tree(flags or {})
        layers = Layers(init, flag_names, file_data, env)
        layers.prune_alternatives()
        token = _LAYERS.set((file_data, env))
        try:
            return cls(**init)
        except ValidationError as e:
            raise ConfigError(error_message(e, layers.origin, cls)) from None
        finally:
            _LAYERS.reset(token)


__all__ = [
    "BreakerSettings",
    "DEFAULT_LLM_MODEL",
    "DEFAULT_LLM_URL",
    "ENV_VARS",
    "FLAGS",
    "LlamaSettings",
    "LLMSettings",
    "PipelineSettings",
    "RetrieverSettings",
    "Settings",
    "flags_to_tree",
    "reference_env",
]
