"""Prompt files (under agents/prompts/) and a renderer that fills only the named {fields}."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=None)
def load_prompt(name: str) -> str:
    return (resources.files(__package__) / "prompts" / f"{name}.txt").read_text(encoding="utf-8")


def render(template: str, **values: str) -> str:
    """Replace {key} for the given keys only, so braces in examples (f-strings) stay as they are."""
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out


def default_sentinels() -> tuple[str, ...]:
    return tuple(line.strip().lower() for line in load_prompt("sentinels").splitlines() if line.strip())
