"""Where the frozen agents and the retriever are, and the limits of one rollout, for the rewards.

Sources, later ones win: defaults < environment < verl's `reward_kwargs` < the row's
`extra_info["reward"]` (a dict) and `extra_info["topk"]`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

from ..config import defaults as D
from ..config.limits import MAX_TOPK
from ..grammar import Limits

# environment variable -> field; the PYRAG_RL_* names win over the reference's LLM_* names
ENV = (
    ("LLM_BASE_URL", "answer_url"),
    ("LLM_MODEL", "answer_model"),
    ("PLAN_LLM_BASE_URL", "plan_url"),
    ("PLAN_LLM_MODEL", "plan_model"),
    ("PYRAG_RL_ANSWER_URL", "answer_url"),
    ("PYRAG_RL_ANSWER_MODEL", "answer_model"),
    ("PYRAG_RL_PLAN_URL", "plan_url"),
    ("PYRAG_RL_PLAN_MODEL", "plan_model"),
    ("PYRAG_RL_RETRIEVER_URL", "retriever_url"),
    ("PYRAG_RL_RUN_TIMEOUT_S", "run_timeout_s"),
    ("PYRAG_RL_TOOL_TIMEOUT_S", "tool_timeout_s"),
)


class SettingsError(ValueError):
    """A reward setting has an unknown name or a bad value."""


# Upper bounds: the engine's own defaults (grammar.Limits, config.limits). A larger timeout is a typo, and
# one past what a thread can wait for would end the rollout's guard at once while the rollout ran on.
MAX = {
    "topk": MAX_TOPK,
    "boosted_topk": MAX_TOPK,
    "tool_timeout_s": Limits.tool_timeout_s,
    "run_timeout_s": Limits.run_timeout_s,
}


@dataclass(frozen=True)
class RewardSettings:
    """Endpoints and limits of the plan and decompose rewards (the answer reward needs none)."""

    answer_url: str = "http://127.0.0.1:8337/v1"  # frozen Answer agent (OpenAI-compatible)
    answer_model: str = "pyrag-answer"
    plan_url: str = "http://127.0.0.1:8336/v1"  # frozen Plan agent (decompose stage)
    plan_model: str = "pyrag-plan"
    retriever_url: str = "http://127.0.0.1:8008"  # Search-R1 POST /retrieve
    topk: int = D.TOPK
    boosted_topk: int = D.BOOSTED_TOPK
    max_repairs: int = D.MAX_REPAIRS  # Plan repair rounds in the decompose reward
    max_tool_calls: int = 20  # the reference's call budget per program
    tool_timeout_s: float = 30.0  # one retrieve/answer call
    run_timeout_s: float = 60.0  # one program run; the whole rollout gets twice this (plan writing + run)
    llm_retries: int = 1
    retriever_retries: int = 1
    use_grammar: bool = True  # constrained decoding of the frozen agents where the server supports it
    plan_grammar: str = "language"  # the frozen Plan agent's grammar: language | skeleton (small models) | off
    parallel: bool = False  # dataflow mode for the program run
    cache_size: int = 20_000  # tool results kept per process

    @property
    def rollout_timeout_s(self) -> float:
        return 2 * self.run_timeout_s

    @classmethod
    def resolve(
        cls,
        reward_kwargs: Mapping[str, Any] | None = None,
        extra_info: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> "RewardSettings":
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for var, name in ENV:
            if env.get(var):
                values[name] = env[var]
        names = {f.name for f in fields(cls)}
        for key, value in (reward_kwargs or {}).items():
            if key in names and value is not None:
                values[key] = value
        info = extra_info or {}
        if isinstance(info.get("reward"), Mapping):
            unknown = sorted(set(info["reward"]) - names)
            if unknown:
                raise SettingsError(f"unknown reward settings in extra_info['reward']: {unknown}")
            values.update({k: v for k, v in info["reward"].items() if v is not None})
        if info.get("topk") is not None:
            values["topk"] = info["topk"]
        return cls().with_(**values)

    def with_(self, **values: Any) -> "RewardSettings":
        """A copy with the given fields, converted to the field's type (strings from env or Hydra)."""
        out = {}
        types = {f.name: type(f.default) for f in fields(self)}
        for key, value in values.items():
            if key not in types:
                raise SettingsError(f"unknown reward setting {key!r}")
            out[key] = _convert(key, value, types[key])
        settings = replace(self, **out)
        if settings.plan_grammar not in ("language", "skeleton", "off"):
            raise SettingsError(
                f"reward setting plan_grammar must be language, skeleton or off, got {settings.plan_grammar!r}"
            )
        for key in ("topk", "boosted_topk", "max_tool_calls", "cache_size", "tool_timeout_s", "run_timeout_s"):
            value = getattr(settings, key)
            if not (value > 0 and (isinstance(value, int) or math.isfinite(value))):  # NaN and inf: no limit
                raise SettingsError(f"reward setting {key} must be positive and finite, got {value!r}")
            if key in MAX and value > MAX[key]:
                raise SettingsError(f"reward setting {key} must be at most {MAX[key]:g}, got {value!r}")
        return settings


def _convert(key: str, value: Any, kind: type) -> Any:
    try:
        if kind is bool:
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            return bool(value)
        if kind in (int, float) and isinstance(value, bool):
            raise TypeError("a boolean is not a number")
        if kind is int:
            if isinstance(value, float) and not value.is_integer():  # 2.5, inf and NaN are not counts
                raise ValueError("not a whole number")
            return int(value)
        if kind is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError, OverflowError):
        raise SettingsError(f"reward setting {key}: cannot read {value!r} as {kind.__name__}") from None
