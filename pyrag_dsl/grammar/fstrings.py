"""The f-string fields the language allows, checked on the source text so that every Python agrees.

Python 3.12 (PEP 701) accepts comments, backslashes, line breaks and the enclosing quote inside
f-string fields, which 3.11 and the exported grammars reject. A field of the language is
`{` spaces? (name | int | a string in another quote, with no backslash) spaces? `}`, nothing more.
"""

from __future__ import annotations

_IDENT_START = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_IDENT = _IDENT_START + "0123456789"
_FIELD_RULE = (
    "a field holds only a name, an integer or a string in the other quote, with no comment, backslash or line break"
)


def _field(text: str, i: int, quote: str) -> tuple[int, str | None]:
    """Scan a field starting after its '{'; returns (index after '}', problem or None)."""
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    if i < n and text[i] in _IDENT_START:
        while i < n and text[i] in _IDENT:
            i += 1
    elif i < n and text[i].isascii() and text[i].isdigit():
        while i < n and text[i].isascii() and text[i].isdigit():
            i += 1
    elif i < n and text[i] in "'\"" and text[i] != quote[0]:
        inner = text[i]
        i += 1
        while i < n and text[i] != inner:
            if text[i] in "\\\n":
                return i, _FIELD_RULE
            i += 1
        if i >= n:
            return i, _FIELD_RULE
        i += 1
    else:
        return i, _FIELD_RULE
    while i < n and text[i] in " \t":
        i += 1
    if i < n and text[i] == "}":
        return i + 1, None
    return i, _FIELD_RULE


def check_fstring_source(text: str) -> tuple[int, str] | None:
    """Check the source text of a string expression (adjacent literals included).

    Returns (offset in `text`, problem) for the first field outside the language, or None.
    """
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\n\r\f\\()":
            i += 1
            continue
        if c == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        start = i
        while i < n and text[i].isalpha():
            i += 1
        prefix = text[start:i].lower()
        if i >= n or text[i] not in "'\"":
            return start, "not a string literal"
        quote = text[i] * 3 if text[i : i + 3] in ('"""', "'''") else text[i]
        i += len(quote)
        is_f, is_raw = "f" in prefix, "r" in prefix
        while i < n and not text.startswith(quote, i):
            ch = text[i]
            if ch == "\\" and not is_raw and text.startswith("N{", i + 1):  # \N{NAME}
                end = text.find("}", i)
                i = n if end < 0 else end + 1
            elif ch == "\\":
                i += 1 if text[i + 1 : i + 2] in ("{", "}") else 2
            elif is_f and text.startswith("{{", i) or is_f and text.startswith("}}", i):
                i += 2
            elif is_f and ch == "{":
                at = i
                i, problem = _field(text, i + 1, quote)
                if problem:
                    return at, problem
            else:
                i += 1
        i += len(quote)
    return None
