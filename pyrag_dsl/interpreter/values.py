"""The boundary between tools and programs: tool results become plain immutable values here.

Conversion is total: whatever a tool returns, the result is a value of the declared type, or
BadToolResult / TooLarge with a message that holds no host object. It runs inside the tool's time
limit (see walker.py), reads at most `max_docs + 1` items of a sequence, and never recurses.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from typing import Any

import orjson

from ..documents import Doc, Docs, split_contents
from ..grammar.limits import Limits
from ..grammar.tools import ValueType

_SURROGATE = re.compile("[\ud800-\udfff]")


class BadToolResult(Exception):
    """A tool returned something that is not of its declared type (message is safe to show)."""


class TooLarge(Exception):
    def __init__(self, message: str, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


def clean_text(s: str) -> str:
    """An exact str with lone surrogates replaced by U+FFFD (they cannot be written as UTF-8 or JSON)."""
    s = str.__str__(s) if type(s) is not str else s
    if s.isascii():
        return s
    return _SURROGATE.sub("\ufffd", s) if _SURROGATE.search(s) else s


def _clean(s: object) -> bool:
    """True for an exact str that needs no cleaning."""
    return type(s) is str and (s.isascii() or _SURROGATE.search(s) is None)


def _text(v: Any, what: str) -> str:
    if isinstance(v, str):
        return clean_text(v)
    raise BadToolResult(f"{what} is {type(v).__name__}, expected text")


def _doc_id(v: Any) -> str:
    if isinstance(v, str):
        return clean_text(v)
    if isinstance(v, int) and not isinstance(v, bool) and -(10**18) < v < 10**18:
        return str(int.__int__(v))
    raise BadToolResult(
        f"a document's id is {type(v).__name__ if not isinstance(v, int) else 'an int out of range'}, "
        "expected text or an integer"
    )


def _score(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise BadToolResult(f"a document's score is {type(v).__name__}, expected a number")
    try:
        f = float(int.__int__(v)) if isinstance(v, int) else float.__float__(v)
    except OverflowError:
        raise BadToolResult("a document's score is too large for a float") from None
    if not math.isfinite(f):
        raise BadToolResult("a document's score is not a finite number")
    return f


# Doc's slot descriptors (what `Doc.id` etc. are at run time): a field read through them is the value stored,
# whatever a subclass of Doc defines.
_DOC_ID, _DOC_TITLE, _DOC_TEXT, _DOC_SCORE = (vars(Doc)[name] for name in ("id", "title", "text", "score"))


def _fields(item: Any) -> tuple[Any, Any, Any, Any, Any]:
    """(id, title, text, contents, score) read from a Doc or a mapping, one level deep."""
    if isinstance(item, Doc):
        return _DOC_ID.__get__(item), _DOC_TITLE.__get__(item), _DOC_TEXT.__get__(item), None, _DOC_SCORE.__get__(item)
    if not isinstance(item, Mapping):
        raise BadToolResult(f"a document is {type(item).__name__}, expected a Doc or a mapping")
    data = {k: item[k] for k in ("id", "title", "text", "contents", "score", "document") if k in item}
    inner = data.pop("document", None)
    if isinstance(inner, Mapping):  # Search-R1 {"document": {...}, "score": s}: unwrap once, never again
        score = data.get("score")
        data = {k: inner[k] for k in ("id", "title", "text", "contents", "score") if k in inner}
        if score is not None:
            data["score"] = score
    return data.get("id", ""), data.get("title"), data.get("text"), data.get("contents"), data.get("score")


def _doc(item: Any, limits: Limits) -> Doc:
    if type(item) is Doc:  # the common case (our retrievers): keep the object when every field is clean
        score = item.score
        if (
            _clean(item.id)
            and _clean(item.title)
            and _clean(item.text)
            and (score is None or (type(score) is float and math.isfinite(score)))
            and len(item.text) + len(item.title) + len(item.id) <= limits.max_string_length
        ):
            return item
    raw_id, title, text, contents, score = _fields(item)
    if text is None and contents is None:
        raise BadToolResult("a document has neither 'text' nor 'contents'")
    if contents is not None and text is None:
        title, text = split_contents(_text(contents, "a document's contents"))
    doc = Doc(
        id=_doc_id(raw_id),
        title=_text(title if title is not None else "", "a document's title"),
        text=_text(text if text is not None else "", "a document's text"),
        score=_score(score),
    )
    if len(doc.text) + len(doc.title) + len(doc.id) > limits.max_string_length:
        raise TooLarge(f"a document is longer than {limits.max_string_length} characters", "max_string_length")
    return doc


def _clean_docs(items: Any, limits: Limits) -> bool:
    """True when `items` is a tuple of at most max_docs exact Docs that `_doc` would keep as they are
    (exact str fields without lone surrogates, a finite float or no score, within max_string_length):
    the checks of `_items` + `_doc`'s first branch, in one pass."""
    if type(items) is not tuple or len(items) > limits.max_docs:
        return False
    max_len = limits.max_string_length
    for d in items:
        if type(d) is not Doc:
            return False
        i, t, x, score = d.id, d.title, d.text, d.score
        if not (type(i) is str and type(t) is str and type(x) is str):
            return False
        if not (i.isascii() and t.isascii() and x.isascii()) and (
            _SURROGATE.search(i) or _SURROGATE.search(t) or _SURROGATE.search(x)
        ):
            return False
        if score is not None and not (type(score) is float and math.isfinite(score)):
            return False
        if len(i) + len(t) + len(x) > max_len:
            return False
    return True


def _items(v: Any, limits: Limits) -> list[Any]:
    seq = v.items if isinstance(v, Docs) else v
    if isinstance(seq, (str, bytes, Mapping)) or not isinstance(seq, (list, tuple)):
        raise BadToolResult(f"the result is {type(v).__name__}, expected docs (a list of documents)")
    items = list(itertools.islice(iter(seq), limits.max_docs + 1))
    if len(items) > limits.max_docs:
        raise TooLarge(f"the result holds more than {limits.max_docs} documents", "max_docs")
    return items


def to_value(kind: ValueType, v: Any, limits: Limits) -> Any:
    """Convert a tool result to the declared type, or raise BadToolResult / TooLarge."""
    if kind is ValueType.TEXT:
        s = _text(v, "the result")
        if len(s) > limits.max_string_length:
            raise TooLarge(
                f"the result is {len(s)} characters; the limit is {limits.max_string_length}", "max_string_length"
            )
        return s
    if kind is ValueType.INT:
        if isinstance(v, bool) or not isinstance(v, int):
            raise BadToolResult(f"the result is {type(v).__name__}, expected int")
        n = int.__int__(v)
        if not -limits.max_int <= n <= limits.max_int:
            raise BadToolResult(f"the result is an int outside -{limits.max_int}..{limits.max_int}")
        return n
    if kind is ValueType.DOCS:
        # Always a new Docs: its cached JSON form, size and hash are the engine's, never the tool's (a tool
        # could set them, or keep the object and change them later).
        if type(v) is Docs and _clean_docs(v.items, limits):
            return Docs(v.items)  # the common case (our retrievers): nothing to convert
        return Docs(tuple(_doc(d, limits) for d in _items(v, limits)))
    raise BadToolResult(f"unknown value type {kind!r}")


def value_size(v: Any) -> int:
    """The UTF-8 size of a value's JSON form, for the trace budget."""
    if isinstance(v, str):
        try:
            return len(orjson.dumps(v))
        except TypeError:  # a lone surrogate: at most 6 bytes per character escaped
            return 6 * len(v) + 2
    if isinstance(v, Docs):
        return v.json_size()
    if v is None:
        return 4
    return len(str(v))


def describe_exception(e: BaseException) -> str:
    """'Type: message' of any exception, as an exact str, without letting a hostile __str__ escape."""
    try:
        name = type(e).__name__
        name = str.__str__(name) if isinstance(name, str) else "Exception"
    except BaseException:
        name = "Exception"
    try:
        text = str(e)
        text = clean_text(text) if isinstance(text, str) else ""
    except BaseException:  # a hostile __str__ must not escape
        text = ""
    text = text.replace("\n", " ")[:300]
    return f"{name}: {text}" if text else name
