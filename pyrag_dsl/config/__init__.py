"""The bottom layer: one typed settings model (flags > config file > the reference's environment
variables), the bounds every layer shares, and the retry / fail-fast / deadline policies of the clients.
Imports nothing of ours; the settings model (pydantic-settings) loads on first use."""

from __future__ import annotations

from typing import Any

from .errors import ConfigError
from .limits import MAX_TOPK, check_topk

_LAZY = {
    "Settings": "settings",
    "LLMSettings": "settings",
    "RetrieverSettings": "settings",
    "PipelineSettings": "settings",
    "LlamaSettings": "settings",
    "BreakerSettings": "settings",
    "load_config_file": "files",
    "RetryPolicy": "retry",
    "CircuitBreaker": "retry",
    "EndpointUnavailable": "retry",
    "breaker_for": "retry",
    "configure_breakers": "retry",
    "Deadline": "deadline",
    "DeadlineExceeded": "deadline",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{module}"), name)


__all__ = ["ConfigError", "MAX_TOPK", "check_topk", *_LAZY]
