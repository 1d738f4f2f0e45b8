"""Typed trace events and their JSON Lines form (with a schema version)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ..config import jsonl
from ..documents import Docs

SCHEMA_VERSION = 1

JsonValue = Any  # text -> str, int -> int, docs -> list of {id, title, text, score}


def value_to_json(value: Any) -> JsonValue:
    if isinstance(value, Docs):
        return value.to_json()
    return value


def value_from_json(obj: JsonValue) -> Any:
    if isinstance(obj, list):
        return Docs.from_json(obj)
    return obj


class TraceEvent(BaseModel):
    """One step of a run. Subclasses set `kind`; `registry` maps kinds to classes for loading."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    registry: ClassVar[dict[str, type["TraceEvent"]]] = {}

    kind: str
    step: int
    start: float
    end: float

    @classmethod
    def __pydantic_init_subclass__(cls, **kw: Any) -> None:
        default = cls.model_fields["kind"].default
        if isinstance(default, str):
            TraceEvent.registry[default] = cls


_DEFAULTS: dict[type, dict[str, Any]] = {}


def event_defaults(cls: type[TraceEvent]) -> dict[str, Any]:
    """The defaults of the event class's optional fields, in field order (shared: do not modify)."""
    defaults = _DEFAULTS.get(cls)
    if defaults is None:
        defaults = _DEFAULTS[cls] = {
            name: f.get_default(call_default_factory=True)
            for name, f in cls.model_fields.items()
            if not f.is_required()
        }
    return defaults


def _slot_setters() -> tuple[Callable[[Any, Any], None], ...] | None:
    """The setters of BaseModel's four instance slots (cheaper than object.__setattr__ by name), if it has them."""
    names = ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
    if not all(
        n in getattr(BaseModel, "__slots__", ()) and hasattr(BaseModel.__dict__.get(n), "__set__") for n in names
    ):
        return None
    return tuple(BaseModel.__dict__[n].__set__ for n in names)


_SLOTS = _slot_setters()


def construct_event(cls: type[TraceEvent], values: dict[str, Any], fields_set: frozenset[str]) -> TraceEvent:
    """An event whose `values` (all its fields, defaults merged, owned by the event from now on) the engine
    made itself, already of the right types: pydantic's model_construct without its per-call bookkeeping,
    since one is built per tool call. `fields_set` names the fields given explicitly."""
    event = object.__new__(cls)
    if _SLOTS is not None:
        set_dict, set_fields, set_extra, set_private = _SLOTS
        set_dict(event, values)
        set_fields(event, set(fields_set))
        set_extra(event, None)
        set_private(event, None)
        return event
    object.__setattr__(event, "__dict__", values)
    object.__setattr__(event, "__pydantic_fields_set__", set(fields_set))
    object.__setattr__(event, "__pydantic_extra__", None)
    object.__setattr__(event, "__pydantic_private__", None)
    return event


def build_event(cls: type[TraceEvent], fields: dict[str, Any]) -> TraceEvent:
    """An event from the given fields (trusted, see construct_event) and the class's defaults."""
    return construct_event(cls, {**event_defaults(cls), **fields}, frozenset(fields))


class OtherEvent(TraceEvent):
    """An event of a kind this layer does not define (e.g. a pipeline event read before
    `pyrag_dsl.pipeline` is imported): its fields are kept as they are, and written back unchanged."""

    model_config = ConfigDict(frozen=True, extra="allow")


class StatementEvent(TraceEvent):
    """An event tied to a program statement."""

    statement: int
    line: int
    col: int
    end_line: int
    end_col: int
    source: str
    target: str | None = None


class CallEvent(StatementEvent):
    kind: Literal["call"] = "call"
    tool: str
    inputs: dict[str, JsonValue]
    output: JsonValue = None
    cached: bool = False

    def output_value(self) -> Any:
        return value_from_json(self.output)


class RetrieveEvent(CallEvent):
    kind: Literal["retrieve"] = "retrieve"  # type: ignore[assignment]


class AnswerEvent(CallEvent):
    kind: Literal["answer"] = "answer"  # type: ignore[assignment]


class AssignEvent(StatementEvent):
    kind: Literal["assign"] = "assign"
    output: JsonValue = None


class ErrorEvent(TraceEvent):
    kind: Literal["error"] = "error"
    statement: int | None = None
    error: dict[str, Any]


CALL_EVENT_KINDS: dict[str, type[CallEvent]] = {"call": CallEvent, "retrieve": RetrieveEvent, "answer": AnswerEvent}


def event_from_dict(obj: dict[str, Any]) -> TraceEvent:
    """A typed event; a kind no imported layer defines loads as an OtherEvent with all its fields."""
    if not isinstance(obj, dict):
        raise ValueError("an event must be a JSON object")
    kind = obj.get("kind")
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"trace event kind {kind!r} is not a name")
    cls = TraceEvent.registry.get(kind, OtherEvent)
    return cls.model_validate(obj)


def event_json(event: TraceEvent) -> str:
    """One event as a JSON line; total: text the UTF-8 encoder refuses (a lone surrogate) is escaped, and so
    are the line breakers JSON allows raw (U+2028, U+2029, U+0085), so that any line splitter reads it whole."""
    try:
        return jsonl.escape_breaks(event.model_dump_json())
    except Exception:  # pydantic refuses lone surrogates: fall back to ASCII-escaped JSON
        return json.dumps(event.model_dump(mode="python"), ensure_ascii=True, default=str)


def dumps_jsonl(events: Iterable[TraceEvent], meta: dict[str, Any] | None = None) -> str:
    """The trace as JSON Lines: a header line with the schema version, then one event per line."""
    header = {"schema": "pyrag-dsl-trace", "version": SCHEMA_VERSION, **(meta or {})}
    try:
        first = jsonl.dumps(header)
    except (TypeError, ValueError):
        first = json.dumps(header, ensure_ascii=True, default=str)
    lines = [first]
    lines += [event_json(e) for e in events]
    return "\n".join(lines) + "\n"


def loads_jsonl(text: str) -> tuple[dict[str, Any], list[TraceEvent]]:
    """Parse a JSON Lines trace (see config.jsonl: lines split on "\\n" only, nesting bounded, no NaN);
    returns (header, events). Raises ValueError naming the line on a bad file."""
    rows = list(jsonl.lines(text))
    if not rows:
        raise ValueError("empty trace file")
    n, first = rows[0]
    try:
        header = jsonl.loads(first)
    except jsonl.JsonError as e:
        raise ValueError(f"line {n}: {e}") from None
    if not isinstance(header, dict) or header.get("schema") != "pyrag-dsl-trace":
        raise ValueError(f"line {n}: not a pyrag-dsl trace header")
    if header.get("version") != SCHEMA_VERSION:
        raise ValueError(f"trace schema version {header.get('version')!r} is not supported (want {SCHEMA_VERSION})")
    events = []
    for n, row in rows[1:]:
        try:
            events.append(event_from_dict(jsonl.loads(row)))
        except ValidationError as e:  # one line: the first problem and how many more
            problem = e.errors(include_url=False)[0]
            field = ".".join(map(str, problem["loc"])) or "event"
            more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
            raise ValueError(f"line {n}: {field}: {problem['msg']}{more}") from None
        except ValueError as e:  # JsonError, or a kind that is not a name
            raise ValueError(f"line {n}: {e}") from None
    return header, events


def write_jsonl(path: str | Path, events: Iterable[TraceEvent], meta: dict[str, Any] | None = None) -> None:
    """Write atomically: a crash leaves the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(dumps_jsonl(events, meta), encoding="utf-8", errors="backslashreplace")
        tmp.replace(path)
    except BaseException:  # a full disk, a read-only directory, Ctrl-C: no stray temp file stays
        tmp.unlink(missing_ok=True)
        raise


def read_jsonl(path: str | Path) -> tuple[dict[str, Any], list[TraceEvent]]:
    return loads_jsonl(Path(path).read_text(encoding="utf-8"))
