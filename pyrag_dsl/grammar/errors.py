"""Typed errors of the language. Each has an exact span and renders for people, LLMs and tools."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Span:
    """A source range; lines and columns are 1-based, the end column is exclusive."""

    line: int
    col: int
    end_line: int
    end_col: int


class DslError(Exception):
    """Base of every error the engine reports about a program or its run."""

    kind: ClassVar[str] = "DslError"

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        *,
        hint: str | None = None,
        source_line: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.source_line = source_line
        self.details = details
        self.source_shift = 0  # columns cut from the left of a long source_line (see SourceMap.error)

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls.kind = cls.__name__.removeprefix("Dsl")
        _ERROR_TYPES[cls.kind] = cls

    def __str__(self) -> str:
        where = f"line {self.span.line}, col {self.span.col}: " if self.span else ""
        hint = f" {self.hint}" if self.hint else ""
        return f"{where}{self.kind}: {self.message}{hint}"

    def to_dict(self) -> dict[str, Any]:
        s = self.span
        out: dict[str, Any] = {
            "type": self.kind,
            "message": self.message,
            "line": s.line if s else None,
            "col": s.col if s else None,
            "end_line": s.end_line if s else None,
            "end_col": s.end_col if s else None,
        }
        if self.hint:
            out["hint"] = self.hint
        if self.source_line is not None:
            out["source_line"] = self.source_line
            if self.source_shift:
                out["source_shift"] = self.source_shift
        out.update({k: v for k, v in self.details.items() if isinstance(v, (str, int, float, bool, type(None)))})
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> "DslError":
        kind = obj.get("type", "DslError")
        target = _ERROR_TYPES.get(kind, DslError)
        span = None
        if obj.get("line") is not None:
            span = Span(obj["line"], obj["col"], obj["end_line"], obj["end_col"])
        known = {"type", "message", "line", "col", "end_line", "end_col", "hint", "source_line", "source_shift"}
        details = {k: v for k, v in obj.items() if k not in known}
        err = target.__new__(target)
        DslError.__init__(
            err, obj.get("message", ""), span, hint=obj.get("hint"), source_line=obj.get("source_line"), **details
        )
        err.source_shift = int(obj.get("source_shift") or 0)
        return err

    def caret_line(self) -> str | None:
        """A line of spaces and carets under the span's part of `source_line`."""
        if self.span is None or self.source_line is None:
            return None
        start = min(max(self.span.col - 1 - self.source_shift, 0), len(self.source_line))
        if self.span.end_line == self.span.line:
            width = max(self.span.end_col - self.span.col, 1)
        else:
            width = len(self.source_line) - start
        width = max(min(width, len(self.source_line) - start), 1)
        return " " * start + "^" * width

    def render(self) -> str:
        """A short exact message with the offending line and a caret, for people and for the Plan LLM."""
        lines = [str(self)]
        if self.source_line is not None:
            lines.append("    " + self.source_line)
            caret = self.caret_line()
            if caret:
                lines.append("    " + caret)
        return "\n".join(lines)


_ERROR_TYPES: dict[str, type[DslError]] = {"DslError": DslError}


class DslSyntaxError(DslError):
    """The program is not Python syntax."""


class DisallowedConstruct(DslError):
    """A Python construct outside the language."""


class DisallowedCharacter(DisallowedConstruct):
    """A character the language rejects (bidi controls, NUL, non-ASCII identifiers)."""


class UndefinedName(DslError):
    """A name that is never assigned."""


class UseBeforeAssignment(DslError):
    """A name read before the statement that assigns it."""


class UnknownTool(DslError):
    """A call of something that is not a registered tool."""


class ArityError(DslError):
    """Too many or too few arguments, or one given twice."""


class UnknownKeyword(DslError):
    """A keyword argument the tool does not have."""


class TypeMismatch(DslError):
    """docs where text is expected, or the other way round."""


class AssignToTool(DslError):
    """An assignment that would shadow a tool."""


class MissingFinalAnswer(DslError):
    """The program never assigns final_answer."""


class ArgumentOutOfRange(DslError):
    """An argument outside the range its parameter allows (e.g. topk below 1 or over max_topk)."""


class TooManyErrors(DslError):
    """Stands for the errors left out after the first `Limits.max_errors`; `omitted` counts them."""


class LimitExceeded(DslError):
    """A resource limit was hit; it ends the run."""


class ToolError(DslError):
    """A tool failed; the message carries no host object."""


class ValidationFailed(Exception):
    """Raised by `parse_program` when a program has errors; `.errors` holds them (at most
    `Limits.max_errors`, then one TooManyErrors)."""

    def __init__(self, errors: list[DslError]) -> None:
        self.errors = errors
        super().__init__("\n".join(e.render() for e in errors))
