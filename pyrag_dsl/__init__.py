"""pyrag-dsl: multi-hop question answering by small programs, run by a closed AST interpreter."""

from .documents import Doc, Docs
from .grammar import (
    DEFAULT_LANGUAGE,
    DslError,
    Language,
    Limits,
    Param,
    Program,
    ToolSpec,
    ValidationFailed,
    ValueType,
    parse_program,
    validate,
)
from .interpreter import CallCache, ExecutionResult, execute

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_LANGUAGE",
    "CallCache",
    "Doc",
    "Docs",
    "DslError",
    "ExecutionResult",
    "Language",
    "Limits",
    "Param",
    "Program",
    "ToolSpec",
    "ValidationFailed",
    "ValueType",
    "execute",
    "parse_program",
    "validate",
]
