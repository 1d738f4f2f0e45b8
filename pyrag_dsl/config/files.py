"""Reading a config file: TOML (tomllib, or tomli before Python 3.11) or JSON when the name ends in .json.
Both are bounded like every JSON this project reads (config.jsonl): nesting deeper than MAX_JSON_DEPTH,
NaN and Infinity in JSON are refused with one line naming the file."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from . import jsonl
from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]  # Python 3.10's backport, absent on 3.11+

# The key of a `key = value` line or a `[table]` header, quoted parts removed: its dots count its depth.
# tomllib's cost grows with the square of a dotted key's length, so long ones are refused before parsing.
_TOML_KEY = re.compile(r"^[ \t]*(\[[^\]\n]*|[^=\n]*=)", re.M)
_TOML_QUOTED = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'')


def _deepest_toml_key(text: str) -> int:
    return max((_TOML_QUOTED.sub("", m.group(1)).count(".") + 1 for m in _TOML_KEY.finditer(text)), default=0)


def _parse(text: str, kind: str) -> Any:
    if kind == "JSON":
        return jsonl.loads(text)
    if _deepest_toml_key(text) > jsonl.MAX_JSON_DEPTH:
        raise jsonl.JsonError(f"a key nested deeper than {jsonl.MAX_JSON_DEPTH} levels")
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise jsonl.JsonError(f"nested deeper than {jsonl.MAX_JSON_DEPTH} levels") from None
    if jsonl.value_depth(data) > jsonl.MAX_JSON_DEPTH:
        raise jsonl.JsonError(f"nested deeper than {jsonl.MAX_JSON_DEPTH} levels")
    return data


def load_config_file(path: str | Path) -> dict[str, Any]:
    """The file's top-level table; a ConfigError naming the file when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{'config file is not a file' if path.exists() else 'no such config file'}: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {path}: {e}") from None
    kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
    try:
        data = _parse(text.removeprefix(jsonl.BOM), kind)
    except ValueError as e:  # JsonError and tomllib.TOMLDecodeError are ValueErrors
        raise ConfigError(f"config file {path} is not valid {kind}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a table (an object)")
    return data
