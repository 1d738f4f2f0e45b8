"""The boundary between tools and programs: tool results become plain immutable values here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..documents import Doc, Docs, split_contents
from ..grammar.limits import Limits
from ..grammar.tools import ValueType


class BadToolResult(Exception):
    """A tool returned something that is not of its declared type (message is safe to show)."""


class TooLarge(Exception):
    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


def _text(v: Any, what: str) -> str:
    if type(v) is str:
        return v
    if isinstance(v, str):
        return str.__str__(v)  # an exact str, whatever the subclass overrides
    raise BadToolResult(f"{what} is {type(v).__name__}, expected text")


def _doc(item: Any, limits: Limits) -> Doc:
    if type(item) is Doc:
        doc = item
    elif isinstance(item, Mapping):
        if "document" in item and isinstance(item["document"], Mapping):  # Search-R1 {document, score}
            return _doc({**item["document"], "score": item.get("score")}, limits)
        if "contents" in item and "text" not in item:
            title, text = split_contents(_text(item["contents"], "a document's contents"))
        else:
            title = _text(item.get("title", ""), "a document's title")
            text = _text(item.get("text", ""), "a document's text")
        score = item.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            raise BadToolResult(f"a document's score is {type(score).__name__}, expected a number")
        raw_id = item.get("id", "")
        doc_id = _text(raw_id, "a document's id") if isinstance(raw_id, str) else str(int(raw_id))
        doc = Doc(id=doc_id, title=title, text=text, score=None if score is None else float(score))
    else:
        raise BadToolResult(f"a document is {type(item).__name__}, expected a Doc or a mapping")
    if len(doc.text) + len(doc.title) > limits.max_string_length:
        raise TooLarge(f"a document is longer than {limits.max_string_length} characters", "max_string_length")
    return doc


def to_value(kind: ValueType, v: Any, limits: Limits) -> Any:
    """Convert a tool result to the declared type, or raise BadToolResult / TooLarge."""
    if kind is ValueType.TEXT:
        s = _text(v, "the result")
        if len(s) > limits.max_string_length:
            raise TooLarge(f"the result is {len(s)} characters; the limit is {limits.max_string_length}",
                           "max_string_length")
        return s
    if kind is ValueType.INT:
        if isinstance(v, bool) or not isinstance(v, int):
            raise BadToolResult(f"the result is {type(v).__name__}, expected int")
        return int.__int__(v)
    if kind is ValueType.DOCS:
        items = v.items if type(v) is Docs else v
        if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, (list, tuple)):
            raise BadToolResult(f"the result is {type(v).__name__}, expected docs (a list of documents)")
        if len(items) > limits.max_docs:
            raise TooLarge(f"the result holds {len(items)} documents; the limit is {limits.max_docs}", "max_docs")
        return v if type(v) is Docs and all(type(d) is Doc for d in items) else Docs(
            tuple(_doc(d, limits) for d in items))
    raise BadToolResult(f"unknown value type {kind!r}")


def value_size(v: Any) -> int:
    """Approximate serialized size in bytes, for the trace budget."""
    if isinstance(v, str):
        return len(v) + 2
    if isinstance(v, Docs):
        return sum(len(d.id) + len(d.title) + len(d.text) + 48 for d in v.items) + 2
    return 8
