"""Runs validated programs: AST walker, limits, call memo, typed trace."""

from .trace import (
    SCHEMA_VERSION, AnswerEvent, AssignEvent, CallEvent, ErrorEvent, RetrieveEvent, TraceEvent, dumps_jsonl,
    loads_jsonl, read_jsonl, write_jsonl,
)
from .walker import CallCache, ExecutionResult, Run, execute

__all__ = [
    "SCHEMA_VERSION", "AnswerEvent", "AssignEvent", "CallCache", "CallEvent", "ErrorEvent", "ExecutionResult",
    "RetrieveEvent", "Run", "TraceEvent", "dumps_jsonl", "execute", "loads_jsonl", "read_jsonl", "write_jsonl",
]
