"""Readable renderings of trace events: the reference-style execution log and one-step details."""

from __future__ import annotations

from typing import Any

from ..interpreter.trace import AssignEvent, CallEvent, ErrorEvent, TraceEvent
from .events import AdaptiveRetryEvent, RepairEvent


def _short(text: Any, n: int = 100) -> str:
    s = str(text).replace("\n", " ")
    return s if len(s) <= n else s[: n - 3] + "..."


def call_signature(e: CallEvent) -> str:
    args = []
    for k, v in e.inputs.items():
        if k == "query":
            args.append(repr(_short(v, 80)))
        elif isinstance(v, list):
            continue  # docs are shown by the retrieve step that made them
        elif v is not None:
            args.append(f"{k}={v!r}")
    return f"{e.tool}({', '.join(args)})"


def execution_log(trace: list[TraceEvent]) -> list[str]:
    """The reference's log format: '[Step n] retrieve(...)' followed by indented results."""
    lines: list[str] = []
    n = 0
    for e in trace:
        if isinstance(e, CallEvent):
            n += 1
            cached = " (cached)" if e.cached else ""
            lines.append(f"[Step {n}] {call_signature(e)}{cached}")
            if isinstance(e.output, list):
                for i, d in enumerate(e.output[:5], 1):
                    lines.append(f"    doc{i}: (Title: {d['title']}) {_short(d['text'], 90)}")
            else:
                lines.append(f"    → {_short(e.output, 200)}")
        elif isinstance(e, AssignEvent):
            n += 1
            lines.append(f"[Step {n}] {e.target} = {_short(e.output, 120)!r}")
        elif isinstance(e, ErrorEvent):
            lines.append(f"[Error] {e.error.get('type')}: {e.error.get('message')}")
        elif isinstance(e, AdaptiveRetryEvent):
            lines.append(
                f"[Adaptive retry] '{e.target}' answered {e.answer!r}: retrieve of statement(s) "
                f"{e.retrieve_statements} again with topk={e.topk}, re-running {e.rerun}"
            )
        elif isinstance(e, RepairEvent):
            lines.append(f"[Repair {e.round}] {len(e.errors)} error(s) sent back to the Plan LLM")
    return lines


def describe_event(e: TraceEvent) -> str:
    """Everything about one event, for `replay --step N`."""
    return e.model_dump_json(indent=2)
