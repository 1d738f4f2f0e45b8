"""What a run retrieved, summarised from its trace: the documents of every retrieve call (ids and titles,
per statement and as a union in first-seen order) and whether the first program was valid."""

from __future__ import annotations

from typing import Any, Iterable

from ..interpreter.trace import CallEvent, TraceEvent
from .events import PlanEvent


def _doc_refs(output: Any) -> list[dict[str, str]]:
    refs = []
    for d in output if isinstance(output, list) else []:
        if isinstance(d, dict):
            refs.append({"id": str(d.get("id", "")), "title": str(d.get("title", ""))})
    return refs


def retrieved_documents(trace: Iterable[TraceEvent]) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """(union, per_call): the union of retrieved documents (first-seen order, unique by id) and one entry per
    retrieve call that ran (cached repeats left out): attempt, statement, target, query, topk, docs."""
    union: list[dict[str, str]] = []
    seen: set[str] = set()
    per_call: list[dict[str, Any]] = []
    attempt = 0
    for e in trace:
        if e.kind == "execute":
            attempt = getattr(e, "attempt", attempt + 1)
        if e.kind != "retrieve" or not isinstance(e, CallEvent) or e.cached:
            continue
        docs = _doc_refs(e.output)
        inputs = dict(e.inputs or {})
        per_call.append(
            {
                "attempt": attempt,
                "statement": e.statement,
                "target": e.target,
                "query": inputs.get("query"),
                "topk": inputs.get("topk"),
                "docs": docs,
            }
        )
        for d in docs:
            key = d["id"] or d["title"]
            if key not in seen:
                seen.add(key)
                union.append(d)
    return union, per_call


def first_program_valid(trace: Iterable[TraceEvent]) -> bool | None:
    """True when the Plan agent's first program passed validation; None when no program was written."""
    for e in trace:
        if isinstance(e, PlanEvent) and e.round == 0:
            return not e.errors
    return None


__all__ = ["first_program_valid", "retrieved_documents"]
