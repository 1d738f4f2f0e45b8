"""Value types and tool signatures: what a registered tool accepts and returns."""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..config.defaults import TOPK


class ValueType(str, Enum):
    TEXT = "text"
    INT = "int"
    DOCS = "docs"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class RunDefault:
    """A default taken from the run's settings (e.g. `topk`), not fixed in the signature."""

    key: str
    fallback: Any

    def __repr__(self) -> str:
        return f"<run default {self.key}>"


_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Param:
    """A parameter. An int parameter may be bounded: `min`, and `max` as a number or the name of a
    `Limits` field (e.g. "max_topk"), checked statically for constants and at run time before the call."""

    name: str
    type: ValueType
    default: Any = REQUIRED
    min: int | None = None
    max: int | str | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def bounds(self, limits: Any) -> tuple[int | None, int | None]:
        high = getattr(limits, self.max) if isinstance(self.max, str) else self.max
        return self.min, high

    def out_of_range(self, value: int, limits: Any) -> str | None:
        """A message when `value` is outside this parameter's bounds, else None."""
        low, high = self.bounds(limits)
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                return f"'{self.name}' must be from {low} to {high}, got {value}"
            return (
                f"'{self.name}' must be {'at least ' + str(low) if low is not None else 'at most ' + str(high)}, "
                f"got {value}"
            )
        return None

    def render(self) -> str:
        out = f"{self.name}: {self.type.value}"
        if self.default is None:
            out = f"{self.name}: {self.type.value} | None = None"
        elif isinstance(self.default, RunDefault):
            out += f" = {self.default.fallback!r}"
        elif not self.required:
            out += f" = {self.default!r}"
        return out


@dataclass(frozen=True)
class ToolSpec:
    """The signature of a tool: the only callables a program may use."""

    name: str
    params: tuple[Param, ...]
    returns: ValueType
    doc: str
    event_kind: str = "call"
    memoize: bool = True
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not _IDENT.match(self.name) or keyword.iskeyword(self.name):
            raise ValueError(f"tool name {self.name!r} must be an ASCII identifier starting with a letter")
        seen: set[str] = set()
        optional_seen = False
        for p in self.params:
            if not _IDENT.match(p.name) or keyword.iskeyword(p.name):
                raise ValueError(f"parameter name {p.name!r} of tool {self.name!r} is not a plain identifier")
            if p.name in seen:
                raise ValueError(f"tool {self.name!r} has two parameters named {p.name!r}")
            seen.add(p.name)
            if p.required and optional_seen:
                raise ValueError(f"tool {self.name!r}: required parameter {p.name!r} follows an optional one")
            optional_seen = optional_seen or not p.required
            if not isinstance(p.type, ValueType):
                raise ValueError(f"parameter {p.name!r} of tool {self.name!r} has no ValueType")
            if (p.min is not None or p.max is not None) and p.type is not ValueType.INT:
                raise ValueError(f"parameter {p.name!r} of tool {self.name!r}: only int parameters have bounds")
        if not isinstance(self.returns, ValueType):
            raise ValueError(f"tool {self.name!r} must return a ValueType")
        if "\n" in self.doc:
            raise ValueError(f"tool {self.name!r}: doc must be one line")

    def param(self, name: str) -> Param | None:
        for p in self.params:
            if p.name == name:
                return p
        return None

    def signature(self) -> str:
        return f"{self.name}({', '.join(p.render() for p in self.params)}) -> {self.returns.value}"


RETRIEVE = ToolSpec(
    name="retrieve",
    params=(
        Param("query", ValueType.TEXT),
        Param("topk", ValueType.INT, RunDefault("topk", TOPK), min=1, max="max_topk"),
    ),
    returns=ValueType.DOCS,
    doc="Search the corpus; returns the top-k passages for the query.",
    event_kind="retrieve",
)

ANSWER = ToolSpec(
    name="answer",
    params=(Param("query", ValueType.TEXT), Param("docs", ValueType.DOCS, None)),
    returns=ValueType.TEXT,
    doc="Answer the query from the given passages; without docs, answer from the facts stated in the query.",
    event_kind="answer",
)
