"""The error every bad setting becomes: one line that names the bad key and where it came from."""

from __future__ import annotations

import reprlib
from typing import Any


class ConfigError(Exception):
    """A bad config file, flag or environment variable, or contradictory settings (CLI exit code 2)."""


class UsageError(Exception):
    """A problem with how the command was called (missing file, a missing optional dependency...): CLI exit
    code 2. Defined here so that any layer may raise it without importing the CLI."""


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 80
_SHORT.maxlevel = 3


def show(value: Any, limit: int = 80) -> str:
    """A short one-line repr for an error message: any value (bytes, a date, a deep or huge container, a 1 MB
    string) gives at most about `limit` characters and never raises."""
    try:
        text = _SHORT.repr(value)
    except Exception:  # noqa: BLE001 - a value whose __repr__ fails
        text = f"<{type(value).__name__}>"
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= limit else text[: limit - 3] + "..."
