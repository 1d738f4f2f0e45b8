"""The one-line messages of settings errors: what a field expects (its type, choices and bounds) and what
was given, shortened."""

from __future__ import annotations

from typing import Any, Callable, Literal, Optional, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from .sources import Loc


def error_message(error: ValidationError, origin: Callable[[Loc], str], model: type[BaseModel]) -> str:
    """One line for a settings validation error: the first problem, named by `origin` (the flag, config key
    or variable that set it), what `model` expects there and what was given; how many more problems."""
    errors = error.errors(include_url=False)
    first = errors[0]
    loc = tuple(first["loc"])
    where = origin(loc) if loc else ""
    others = {origin(tuple(e["loc"])) for e in errors[1:] if e["loc"]} - {where}  # one flag, two keys
    n = len(others) + sum(1 for e in errors[1:] if not e["loc"])
    named = sorted(others)[:3]
    more = (
        (
            f" (and {n} more problem{'s' if n > 1 else ''}"
            + (f": {', '.join(named)}" if named else "")
            + ("..." if len(others) > 3 else "")
            + ")"
        )
        if n
        else ""
    )
    if not loc:  # a check across settings
        ctx = first.get("ctx") or {}
        return f"settings: {ctx.get('error', first['msg'])}{more}"
    if first["type"] == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        known = ", ".join(sorted(parent.model_fields)) if parent else ""
        what = "section" if len(loc) == 1 and isinstance(first["input"], dict) else "setting"
        return f"{where}: unknown {what}; known: {known}{more}"
    if first["type"] == "value_error":
        wanted = str((first.get("ctx") or {}).get("error", first["msg"]))
        wanted = wanted[len("must be ") :] if wanted.startswith("must be ") else wanted
    else:
        wanted = expected(_field_at(model, loc))
    return f"{where}: must be {wanted}, got {_show(first['input'])}{more}"


def unwrap(annotation: Any) -> Any:
    if get_origin(annotation) is Union:
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _model_at(model: Any, path: Loc) -> Optional[type[BaseModel]]:
    for part in path:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return None
        model = unwrap(field.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _field_at(model: Any, loc: Loc) -> Optional[FieldInfo]:
    parent = _model_at(model, tuple(p for p in loc[:-1] if isinstance(p, str)))
    if parent is None or not isinstance(loc[-1], str):
        parent = _model_at(model, tuple(p for p in loc if isinstance(p, str))[:-1])
        name = [p for p in loc if isinstance(p, str)][-1]
    else:
        name = loc[-1]
    return parent.model_fields.get(name) if parent is not None else None


def expected(field: Optional[FieldInfo]) -> str:
    if field is None:
        return "a valid value"
    if isinstance(field.json_schema_extra, dict) and "expected" in field.json_schema_extra:
        return str(field.json_schema_extra["expected"])
    ann = unwrap(field.annotation)
    origin = get_origin(ann)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(ann))
    if ann is bool:
        return "true or false"
    if isinstance(ann, type) and issubclass(ann, BaseModel) or origin is dict:
        return "a table"
    if origin is list:
        return "a list of strings"
    base = {int: "an integer", float: "a number", str: "a string"}.get(ann, "a valid value")
    bounds = {
        type(m).__name__.lower(): getattr(m, type(m).__name__.lower())
        for m in field.metadata
        if type(m).__name__ in ("Ge", "Gt", "Le", "Lt")
    }
    if "ge" in bounds and "le" in bounds:
        return f"{base} from {_show(bounds['ge'])} to {_show(bounds['le'])}"
    parts = [
        f"{op} {_show(bounds[k])}" for k, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")) if k in bounds
    ]
    return f"{base} {' and '.join(parts)}" if parts else base


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


__all__ = ["error_message", "expected", "unwrap"]
