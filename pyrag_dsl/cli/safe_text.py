"""Untrusted text (questions, answers, documents, LLM output, file names) made safe to print with rich.

Two dangers: rich markup (`[/]` in an answer raises MarkupError, `[red]` restyles the output) and terminal
control sequences (ESC in a retrieved passage can move the cursor or retitle the window). `plain` shows
control and bidi characters as escapes; `markup` also escapes rich markup, for interpolation into a markup
string; `text` is a Text renderable (never parsed as markup), for tables and panels.
"""

from __future__ import annotations

import re
from typing import Any

from rich.markup import escape
from rich.text import Text

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _shown(m: re.Match[str]) -> str:
    n = ord(m.group())
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}"


def plain(value: object) -> str:
    """str(value) with control characters (newline and tab kept) and bidi controls written as escapes."""
    return _CONTROL.sub(_shown, str(value))


def markup(value: object) -> str:
    """`plain(value)` with rich markup escaped: safe inside a markup f-string."""
    return escape(plain(value))


def error_line(error: dict[str, Any], width: int = 160) -> str:
    """A result's error as one markup line: its type in red, then its message (shortened)."""
    message = plain(str(error.get("message") or "").replace("\n", " "))
    if len(message) > width:
        message = message[: width - 3] + "..."
    return f"[red]{markup(error.get('type'))}[/red]" + (f": {escape(message)}" if message else "")


def text(value: object, style: str = "") -> Text:
    """`plain(value)` as a Text renderable (not parsed as markup)."""
    return Text(plain(value), style=style)
