"""Bounds shared by every layer (engine, retrieval server, settings, CLI): one source of truth."""

from __future__ import annotations

from typing import Any

from .errors import ConfigError

MAX_TOPK = 1000  # documents per retrieval: topk must be 1..MAX_TOPK everywhere
MAX_QUESTION_CHARS = 4_000  # one question, as `run` reads it from a file and `eval` from a data set
# Dataflow mode: statements in flight at once, by default, for the library's execute() and the pipeline alike.
DEFAULT_MAX_WORKERS = 8


def check_topk(value: Any, where: str = "topk") -> int:
    """`value` when it is an int in 1..MAX_TOPK; otherwise a ConfigError naming `where` (a flag or key)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOPK:
        raise ConfigError(f"{where}: must be an integer from 1 to {MAX_TOPK}, got {value!r}")
    return value
