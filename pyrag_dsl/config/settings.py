"""The one typed settings model (pydantic-settings): flags > config file (TOML/JSON) > the reference's
environment variables, validated at start. A bad value is a ConfigError whose one line names the key
and where it came from: `--topk: ...`, `config [pipeline] topk: ...`, `ENABLE_THINKING: ...`.

Sections: [llm], [plan_llm], [retriever], [pipeline], [llama] (the embedded llama.cpp server) and
[breaker] (fail fast on an endpoint that keeps failing); top-level `output_dir` and `model`.
To add a setting: a field in its section, a line in FLAGS if a flag sets it, a row in docs/configuration.md.
"""

from __future__ import annotations

import contextvars
import os
from typing import Any, Literal, Mapping, Optional, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from . import defaults as D
from .errors import ConfigError
from .files import load_config_file
from .limits import MAX_TOPK

DEFAULT_LLM_URL = "http://127.0.0.1:8337/v1"  # the reference's Decompose/Answer port
DEFAULT_LLM_MODEL = "local"

Tree = dict[str, Any]  # a settings tree: sections (nested trees) and values by key
Loc = tuple[Union[str, int], ...]  # a path in a tree, or where pydantic found an error (indexes too)


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
        if isinstance(value, bool) and field is not None and _unwrap(field.annotation) in (int, float):
            raise ValueError(f"must be {_expected(field)}")
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
        layers = _Layers(init, flag_names, file_data, env)
        layers.prune_alternatives()
        token = _LAYERS.set((file_data, env))
        try:
            return cls(**init)
        except ValidationError as e:
            raise ConfigError(layers.message(e)) from None
        finally:
            _LAYERS.reset(token)


# -- the reference's environment variables ------------------------------------------------------------
ENV_VARS: dict[str, tuple[str, ...]] = {
    "LLM_BASE_URL": ("llm", "base_url"),
    "LLM_MODEL": ("llm", "model"),
    "LLM_API_KEY": ("llm", "api_key"),
    "PLAN_LLM_BASE_URL": ("plan_llm", "base_url"),
    "PLAN_LLM_MODEL": ("plan_llm", "model"),
    "PLAN_LLM_API_KEY": ("plan_llm", "api_key"),
    "ENABLE_THINKING": ("llm", "enable_thinking"),
    "OUTPUT_DIR": ("output_dir",),
}


def reference_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings tree the reference's variables give (empty values are unset; PLAN_LLM_* make a Plan
    server only with a model or URL)."""
    tree: dict[str, Any] = {}
    for var, path in ENV_VARS.items():
        value = environ.get(var)
        if value is not None and value.strip() != "":
            _put(tree, path, value.strip())
    plan = tree.get("plan_llm")
    if plan is not None and "base_url" not in plan and "model" not in plan:
        del tree["plan_llm"]
    return tree


# -- command-line flags ---------------------------------------------------------------------------------
# argparse dest -> (the flag as typed, the settings it sets). store_true flags count only when True.
FLAGS: dict[str, tuple[str, tuple[tuple[str, ...], ...]]] = {
    "llm_url": ("--llm-url", (("llm", "base_url"),)),
    "llm_model": ("--llm-model", (("llm", "model"),)),
    "plan_llm_url": ("--plan-llm-url", (("plan_llm", "base_url"),)),
    "plan_llm_model": ("--plan-llm-model", (("plan_llm", "model"),)),
    "model": ("--model", (("model",),)),
    "timeout": ("--timeout", (("llm", "timeout_s"), ("llama", "timeout_s"))),
    "threads": ("--threads", (("llama", "threads"),)),
    "n_ctx": ("--n-ctx", (("llama", "n_ctx"),)),
    "omp_wait_policy": ("--omp-wait-policy", (("llama", "omp_wait_policy"),)),
    "prompt_cache": ("--no-prompt-cache", (("llama", "prompt_cache"),)),  # only ever given as False
    "retriever_url": ("--retriever-url", (("retriever", "url"),)),
    "index": ("--index", (("retriever", "index"),)),
    "retriever_timeout": ("--retriever-timeout", (("retriever", "timeout_s"),)),
    "retriever_retries": ("--retriever-retries", (("retriever", "retries"),)),
    "output_dir": ("--output-dir", (("output_dir",),)),
    "topk": ("--topk", (("pipeline", "topk"),)),
    "boosted_topk": ("--boosted-topk", (("pipeline", "boosted_topk"),)),
    "max_repairs": ("--max-repairs", (("pipeline", "max_repairs"),)),
    "policy": ("--policy", (("pipeline", "policy"),)),
    "plan_grammar": ("--plan-grammar", (("pipeline", "plan_grammar"),)),
    "parallel": ("--parallel", (("pipeline", "parallel"),)),
    "max_workers": ("--max-workers", (("pipeline", "max_workers"),)),
    "stream_plan": ("--stream-plan/--no-stream-plan", (("pipeline", "stream_plan"),)),
    "no_grammar": ("--no-grammar", (("pipeline", "use_grammar"),)),  # True sets use_grammar = False
    "deadline": ("--deadline", (("pipeline", "deadline_s"),)),
    "breaker_failures": ("--fail-after", (("breaker", "failures"),)),
}
_STORE_TRUE = {"parallel", "no_grammar"}


def flags_to_tree(flags: Mapping[str, Any]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """Given flags as a settings tree, and which flag set each path."""
    tree: dict[str, Any] = {}
    names: dict[tuple[str, ...], str] = {}
    for dest, value in flags.items():
        if dest not in FLAGS:
            raise KeyError(f"unknown flag {dest!r}: add it to pyrag_dsl.config.settings.FLAGS")
        if value is None or (dest in _STORE_TRUE and value is False):
            continue
        flag, paths = FLAGS[dest]
        if dest == "no_grammar":
            value = False
        for path in paths:
            _put(tree, path, value)
            names[path] = flag
    return tree, names


# -- layers, alternatives and error messages --------------------------------------------------------------
# Settings that replace each other: the highest layer that sets one of them drops the other from lower layers.
_ALTERNATIVES = (
    ((("retriever", "url"),), (("retriever", "index"),)),
    ((("model",),), (("llm", "base_url"), ("llm", "model"), ("plan_llm", "base_url"), ("plan_llm", "model"))),
)


class _Layers:
    def __init__(self, flags: Tree, flag_names: dict[tuple[str, ...], str], file: Tree, env: Tree) -> None:
        self.flags, self.flag_names, self.file, self.env = flags, flag_names, file, env
        self.env_names = {path: var for var, path in ENV_VARS.items()}

    def ordered(self) -> list[tuple[str, Tree]]:
        return [("flags", self.flags), ("file", self.file), ("env", self.env)]

    def name(self, layer: str, path: Loc) -> str:
        key = _names_only(path)  # flags and variables set named paths only
        if layer == "flags":
            named = self.flag_names.get(key) if key is not None else None
            return named if named is not None else "--" + str(path[-1]).replace("_", "-")
        if layer == "env":
            named = self.env_names.get(key) if key is not None else None
            return named if named is not None else ".".join(map(str, path))
        return "config " + _key(path)

    def prune_alternatives(self) -> None:
        layers = self.ordered()
        for group_a, group_b in _ALTERNATIVES:
            for i, (layer, data) in enumerate(layers):
                a = [p for p in group_a if _has(data, p)]
                b = [p for p in group_b if _has(data, p)]
                if a and b:
                    raise ConfigError(
                        f"{self.name(layer, a[0])} and {self.name(layer, b[0])} were both given; pick one"
                    )
                if a or b:
                    for _, lower in layers[i + 1 :]:
                        for path in group_b if a else group_a:
                            _delete(lower, path)
                    break

    def origin(self, loc: Loc) -> str:
        candidates = [loc]
        if loc and loc[0] == "plan_llm":  # plan_llm inherits unset fields from llm
            candidates.append(("llm", *loc[1:]))
        for path in candidates:
            for layer, data in self.ordered():
                if _has(data, path):
                    return self.name(layer, path)
        return "setting " + _key(loc)

    def message(self, error: ValidationError) -> str:
        errors = error.errors(include_url=False)
        first = errors[0]
        loc = tuple(first["loc"])
        where = self.origin(loc) if loc else ""
        others = {self.origin(tuple(e["loc"])) for e in errors[1:] if e["loc"]} - {where}  # one flag, two keys
        n = len(others) + sum(1 for e in errors[1:] if not e["loc"])
        named = sorted(others)[:3]
        more = (
            (
                f" (and {n} more problem{'s' if n > 1 else ''}"
                + (f": {', '.join(named)}" if named else "")
                + ("..." if len(others) > 3 else "")
                + ")"
            )
            if n
            else ""
        )
        if not loc:  # a check across settings
            ctx = first.get("ctx") or {}
            return f"settings: {ctx.get('error', first['msg'])}{more}"
        if first["type"] == "extra_forbidden":
            parent = _model_at(Settings, loc[:-1])
            known = ", ".join(sorted(parent.model_fields)) if parent else ""
            what = "section" if len(loc) == 1 and isinstance(first["input"], dict) else "setting"
            return f"{where}: unknown {what}; known: {known}{more}"
        if first["type"] == "value_error":
            expected = str((first.get("ctx") or {}).get("error", first["msg"]))
            expected = expected[len("must be ") :] if expected.startswith("must be ") else expected
        else:
            expected = _expected(_field_at(Settings, loc))
        return f"{where}: must be {expected}, got {_show(first['input'])}{more}"


def _names_only(path: Loc) -> Optional[tuple[str, ...]]:
    """The path when it holds names only (no list index), else None."""
    names = tuple(p for p in path if isinstance(p, str))
    return names if len(names) == len(path) else None


def _key(path: Loc) -> str:
    parts = tuple(str(p) if len(str(p)) <= 40 else str(p)[:37] + "..." for p in path)
    return f"[{parts[0]}] {'.'.join(parts[1:])}" if len(parts) > 1 else parts[0]


def _put(tree: Tree, path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
    tree[path[-1]] = value


def _has(tree: Any, path: Loc) -> bool:
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


def _delete(tree: Tree, path: tuple[str, ...]) -> None:
    if not _has(tree, path):
        return
    parents = [tree]
    for part in path[:-1]:
        parents.append(parents[-1][part])
    del parents[-1][path[-1]]
    for parent, part in zip(reversed(parents[:-1]), reversed(path[:-1])):  # drop sections left empty
        if parent[part] == {}:
            del parent[part]


def _unwrap(annotation: Any) -> Any:
    if get_origin(annotation) is Union:
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _model_at(model: Any, path: Loc) -> Optional[type[BaseModel]]:
    for part in path:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        model = _unwrap(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _field_at(model: Any, loc: Loc) -> Optional[FieldInfo]:
    parent = _model_at(model, tuple(p for p in loc[:-1] if isinstance(p, str)))
    if parent is None or not isinstance(loc[-1], str):
        parent = _model_at(model, tuple(p for p in loc if isinstance(p, str))[:-1])
        name = [p for p in loc if isinstance(p, str)][-1]
    else:
        name = loc[-1]
    return parent.model_fields.get(name) if parent is not None else None


def _expected(field: Optional[FieldInfo]) -> str:
    if field is None:
        return "a valid value"
    if isinstance(field.json_schema_extra, dict) and "expected" in field.json_schema_extra:
        return str(field.json_schema_extra["expected"])
    ann = _unwrap(field.annotation)
    origin = get_origin(ann)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(ann))
    if ann is bool:
        return "true or false"
    if isinstance(ann, type) and issubclass(ann, BaseModel) or origin is dict:
        return "a table"
    if origin is list:
        return "a list of strings"
    base = {int: "an integer", float: "a number", str: "a string"}.get(ann, "a valid value")
    bounds = {
        type(m).__name__.lower(): getattr(m, type(m).__name__.lower())
        for m in field.metadata
        if type(m).__name__ in ("Ge", "Gt", "Le", "Lt")
    }
    if "ge" in bounds and "le" in bounds:
        return f"{base} from {_show(bounds['ge'])} to {_show(bounds['le'])}"
    parts = [
        f"{op} {_show(bounds[k])}" for k, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")) if k in bounds
    ]
    return f"{base} {' and '.join(parts)}" if parts else base


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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
