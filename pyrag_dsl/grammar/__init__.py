"""The language: allowed nodes, tool signatures, validation and grammar export."""

from .errors import (
    ArgumentOutOfRange, ArityError, AssignToTool, DisallowedCharacter, DisallowedConstruct, DslError, DslSyntaxError,
    LimitExceeded, MissingFinalAnswer, Span, ToolError, TypeMismatch, UndefinedName, UnknownKeyword,
    TooManyErrors, UnknownTool, UseBeforeAssignment, ValidationFailed,
)
from .language import DEFAULT_LANGUAGE, FINAL_ANSWER, ExprInfo, Language, NodeKind
from .limits import Limits
from .tools import ANSWER, REQUIRED, RETRIEVE, Param, RunDefault, ToolSpec, ValueType
from .program import Program, Statement
from .validate import ValidationResult, parse_program, validate

__all__ = [
    "ANSWER", "ArgumentOutOfRange", "ArityError", "AssignToTool", "DEFAULT_LANGUAGE", "DisallowedCharacter", "DisallowedConstruct",
    "DslError", "DslSyntaxError", "ExprInfo", "FINAL_ANSWER", "Language", "LimitExceeded", "Limits",
    "MissingFinalAnswer", "NodeKind", "Param", "Program", "REQUIRED", "RETRIEVE", "RunDefault", "Span",
    "Statement", "ToolError", "TooManyErrors", "ToolSpec", "TypeMismatch", "UndefinedName", "UnknownKeyword", "UnknownTool",
    "UseBeforeAssignment", "ValidationFailed", "ValidationResult", "ValueType", "parse_program", "validate",
]
