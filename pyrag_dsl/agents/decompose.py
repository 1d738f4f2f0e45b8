"""Decompose agent: question -> atomic sub-queries (JSON list), with tolerant parsing and a fallback."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from .formats import decompose_rules, grammars
from .llm import LLMClient
from .prompts import load_prompt, render

_FENCE = re.compile(r"```(?:json|python)?\s*(.*?)```", re.S | re.I)


def parse_sub_queries(text: str) -> list[str] | None:
    """A list of non-empty strings from an LLM reply, or None. Tolerates fences and prose around the JSON."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for chunk in candidates:
        start, end = chunk.find("["), chunk.rfind("]")
        if start == -1 or end <= start:
            continue
        try:
            value = json.loads(chunk[start : end + 1])
        except json.JSONDecodeError:
            continue
        if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
            return [v.strip() for v in value][:10]
    return None


@dataclass
class Decomposition:
    sub_queries: list[str]
    fallback: bool
    attempts: int
    raw: list[str] = field(default_factory=list)


class DecomposeAgent:
    def __init__(self, llm: LLMClient, attempts: int = 2, use_grammar: bool = True) -> None:
        self.llm = llm
        self.attempts = attempts
        self.use_grammar = use_grammar

    def run(self, question: str) -> Decomposition:
        prompt = render(load_prompt("decompose"), question=question)
        extra = self.llm.grammar_body(*grammars(decompose_rules(), "list")) if self.use_grammar else {}
        raw: list[str] = []
        for attempt in range(1, self.attempts + 1):
            reply = self.llm.chat([{"role": "user", "content": prompt}], max_tokens=256, extra_body=extra)
            raw.append(reply)
            parsed = parse_sub_queries(reply)
            if parsed:
                return Decomposition(parsed, False, attempt, raw)
        return Decomposition([question], True, self.attempts, raw)
