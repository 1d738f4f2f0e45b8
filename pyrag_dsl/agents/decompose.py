"""Decompose agent: question -> atomic sub-queries (JSON list), with tolerant parsing and a fallback."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from . import small_model
from .formats import decompose_rules, grammars
from .llm import ChatLLM
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
        except (json.JSONDecodeError, RecursionError):  # not JSON, or nested too deep to decode: a bad reply
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
    dropped: list[str] = field(default_factory=list)  # small models: example leaks and repeats of the question


class DecomposeAgent:
    def __init__(self, llm: ChatLLM, attempts: int = 2, use_grammar: bool = True, small: bool = False) -> None:
        """`small`: invented few-shot examples as chat turns, and leaks / repeats of the question dropped."""
        self.llm = llm
        self.attempts = attempts
        self.use_grammar = use_grammar
        self.small = small

    @staticmethod
    def messages(question: str) -> list[dict[str, str]]:
        """The chat messages sent for this question."""
        return [{"role": "user", "content": render(load_prompt("decompose"), question=question)}]

    @staticmethod
    def small_messages(question: str) -> list[dict[str, str]]:
        """The chat messages for small models: invented examples as turns (a stable prefix for the cache)."""
        turns = [{"role": "system", "content": load_prompt("decompose_small_system").strip()}]
        for ex in small_model.examples()["examples"]:
            turns += [
                {"role": "user", "content": f"Question: {ex['question']}"},
                {"role": "assistant", "content": json.dumps(ex["sub_queries"])},
            ]
        return turns + [{"role": "user", "content": f"Question: {question}"}]

    def run(self, question: str) -> Decomposition:
        extra = self.llm.grammar_body(*grammars(decompose_rules(), "list")) if self.use_grammar else {}
        raw: list[str] = []
        for attempt in range(1, self.attempts + 1):
            messages = self.small_messages(question) if self.small else self.messages(question)
            if self.small and attempt > 1:  # the first reply repeated the question: ask for the parts
                messages[-1] = {
                    "role": "user",
                    "content": messages[-1]["content"] + "\n" + load_prompt("decompose_small_retry").strip(),
                }
            reply = self.llm.chat(messages, max_tokens=256, extra_body=extra)
            raw.append(reply)
            parsed = parse_sub_queries(reply)
            if parsed and self.small:
                parsed, dropped = small_model.filter_sub_queries(parsed, question)
                repeat = len(parsed) == 1 and small_model.repeats_question(parsed[0], question)
                if parsed and (not repeat or attempt == self.attempts):
                    return Decomposition(parsed, False, attempt, raw, dropped)
            elif parsed:
                return Decomposition(parsed, False, attempt, raw)
        return Decomposition([question], True, self.attempts, raw)
