"""Resource limits of one program run; every one has a safe default."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from ..config.limits import MAX_TOPK


@dataclass(frozen=True)
class Limits:
    max_source_bytes: int = 64_000
    max_statements: int = 200
    max_tool_calls: int = 100
    max_string_length: int = 200_000
    max_depth: int = 12
    max_int: int = 1_000_000
    max_docs: int = 1_000
    max_topk: int = MAX_TOPK  # retrieve(topk=...) must be 1..max_topk; shared with the server (config.limits)
    max_errors: int = 50  # validation reports at most this many errors, then "and N more"
    max_trace_bytes: int = 20_000_000
    tool_timeout_s: float | None = 600.0
    run_timeout_s: float | None = 3_600.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_s"):  # a timeout: None (no limit) or a finite number of seconds
                ok = value is None or (type(value) in (int, float) and math.isfinite(value) and value > 0)
                want = "a positive finite number of seconds or None"
            else:  # NaN, inf or True would switch the limit off without a word
                ok = type(value) is int and value > 0
                want = "a positive integer"
            if not ok:
                raise ValueError(f"limit {f.name} must be {want}, got {value!r}")
