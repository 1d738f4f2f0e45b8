"""The one JSON reader and JSON Lines reader/writer every file of the project goes through.

* `loads(text)`: JSON as data. Nesting deeper than MAX_JSON_DEPTH is refused before parsing (Python's
  parser would raise RecursionError), and so are NaN, Infinity and numbers that overflow to them.
  Every refusal is a JsonError (a ValueError) with one short line, without the file's name.
* `lines(text)`: the lines of a JSON Lines text, split on "\\n" only (str.splitlines() also splits on
  U+2028, U+2029, U+0085, \\x0b, \\x0c and \\x1c-\\x1e, which JSON allows raw inside strings); a leading
  byte order mark is dropped.
* `dumps(obj)`: JSON text (one line unless `indent`) that every line splitter reads back whole: U+2028, U+2029 and U+0085
  are written escaped, NaN/Infinity as null (as pydantic does), text UTF-8 cannot encode (a lone
  surrogate) ASCII-escaped.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Iterator

MAX_JSON_DEPTH = 100  # arrays and objects inside each other; real data in this project nests under 10
BOM = "\ufeff"

# JSON escapes every control character below U+0020, so only these line breakers can appear raw.
_ESCAPE_BREAKS = {0x2028: "\\u2028", 0x2029: "\\u2029", 0x85: "\\u0085"}
# A string, or an unterminated one up to the end: always matches at a quote, so the scan stays linear.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JsonError(ValueError):
    """Text that is not JSON this project reads as data; str() is one short line."""


def depth(text: str) -> int:
    """How deep arrays and objects nest in `text` (brackets inside strings do not count)."""
    if text.count("[") + text.count("{") <= 1:
        return int("[" in text or "{" in text)
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    from itertools import accumulate

    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def value_depth(value: Any) -> int:
    """How deep lists/tuples and dicts nest in a loaded value (walked without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, (list, tuple)):
            continue
        deepest = max(deepest, level)
        stack.extend((x, level + 1) for x in item)
    return deepest


def _refuse_constant(name: str) -> Any:
    raise JsonError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonError(f"number {text[:40]} is out of range")
    return value


def loads(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value of `text`; a JsonError for text that is not JSON, nests deeper than `max_depth`, or
    holds NaN/Infinity (or a number too large for a float). A leading BOM is dropped."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JsonError(f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    if text.startswith(BOM):
        text = text[1:]
    if text.count("[") + text.count("{") > max_depth and depth(text) > max_depth:
        raise JsonError(f"nested deeper than {max_depth} levels")
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as e:
        where = f"line {e.lineno} column {e.colno}" if "\n" in text.strip() else f"column {e.colno}"
        raise JsonError(f"not JSON ({e.msg} at {where})") from None
    except JsonError:
        raise
    except (ValueError, RecursionError) as e:  # an integer of more than 4300 digits; nesting past the check
        raise JsonError(f"not JSON this program reads ({type(e).__name__}: {str(e)[:80]})") from None


def lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) for each non-blank line, split on "\\n" only, a leading BOM dropped."""
    if text.startswith(BOM):
        text = text[1:]
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip():
            yield n, line


def _finite(value: Any) -> Any:
    """`value` with NaN and infinite floats replaced by None (containers copied only where needed)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def escape_breaks(line: str) -> str:
    """A JSON text with the raw line breakers JSON allows (U+2028, U+2029, U+0085) escaped: same value."""
    return line.translate(_ESCAPE_BREAKS)


def dumps(obj: Any, indent: int | None = None) -> str:
    """JSON text of `obj` that loads() reads back: NaN/Infinity written as null, line breakers escaped,
    text UTF-8 cannot encode (a lone surrogate) ASCII-escaped."""
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, indent=indent)
    except ValueError:  # a NaN or an infinity somewhere
        text = json.dumps(_finite(obj), ensure_ascii=False, allow_nan=False, indent=indent)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(json.loads(text), ensure_ascii=True, indent=indent)
    return escape_breaks(text)


__all__ = ["BOM", "JsonError", "MAX_JSON_DEPTH", "depth", "dumps", "escape_breaks", "lines", "loads", "value_depth"]
