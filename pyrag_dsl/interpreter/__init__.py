"""Runs validated programs: resolve (in grammar) -> schedule -> walk; limits, call memo, typed trace."""

from .run import ExecutionResult, Run, execute
from .state import CallCache
from .supervisor import supervise
from .trace import (
    SCHEMA_VERSION,
    AnswerEvent,
    AssignEvent,
    CallEvent,
    ErrorEvent,
    OtherEvent,
    RetrieveEvent,
    TraceEvent,
    dumps_jsonl,
    loads_jsonl,
    read_jsonl,
    write_jsonl,
)

__all__ = [
    "SCHEMA_VERSION",
    "AnswerEvent",
    "AssignEvent",
    "CallCache",
    "CallEvent",
    "ErrorEvent",
    "ExecutionResult",
    "OtherEvent",
    "RetrieveEvent",
    "Run",
    "TraceEvent",
    "dumps_jsonl",
    "execute",
    "loads_jsonl",
    "read_jsonl",
    "supervise",
    "write_jsonl",
]
