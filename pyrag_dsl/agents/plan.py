"""Plan agent: writes the program; the tool list in its prompt comes from the grammar's registry."""

from __future__ import annotations

import json
import re

from ..grammar import DEFAULT_LANGUAGE, DslError, Language
from ..grammar.skeleton import skeleton_gbnf, skeleton_lark
from .llm import LLMClient
from .prompts import load_prompt, render

_FENCE = re.compile(r"```[a-zA-Z0-9_+-]*[ \t]*\n(.*?)(?:```|\Z)", re.S)
_SMART = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'", "\u00a0": " "})
_STATEMENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*\s*=")


def extract_program(text: str) -> str:
    """The program inside an LLM reply: fenced code if any, smart quotes made plain, prose lines dropped
    before the first assignment and after the last line that belongs to a statement."""
    m = _FENCE.search(text)
    code = m.group(1) if m else text
    code = code.translate(_SMART).replace("\r\n", "\n")
    lines = code.split("\n")
    first = next((i for i, line in enumerate(lines) if _STATEMENT.match(line)), 0)
    return "\n".join(lines[first:]).strip() + "\n"


def render_errors(errors: list[DslError]) -> str:
    return "\n".join(e.render() for e in errors)


PLAN_GRAMMARS = ("language", "skeleton", "off")


class PlanAgent:
    """`grammar`: 'language' constrains decoding to the whole language; 'skeleton' to the canonical
    retrieve/answer shape (every program valid by construction: for small models); 'off' to nothing."""

    def __init__(self, llm: LLMClient, language: Language = DEFAULT_LANGUAGE, grammar: str = "language",
                 max_tokens: int = 600) -> None:
        if grammar not in PLAN_GRAMMARS:
            raise ValueError(f"plan grammar must be one of {PLAN_GRAMMARS}, got {grammar!r}")
        self.llm = llm
        self.language = language
        self.grammar = grammar
        self.max_tokens = max_tokens
        self.calls = 0

    def system_prompt(self) -> str:
        return render(load_prompt("plan_system"), tools=self.language.describe_tools())

    def _extra(self, sub_queries: list[str]) -> dict:
        if self.grammar == "language":
            return self.llm.grammar_body(self.language.to_lark(), self.language.to_gbnf())
        if self.grammar == "skeleton":
            steps = min(max(len(sub_queries) + 1, 2), 5)
            return self.llm.grammar_body(skeleton_lark(steps), skeleton_gbnf(steps))
        return {}

    def _messages(self, user: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system_prompt()},
                {"role": "user", "content": load_prompt("plan_example_user").strip()},
                {"role": "assistant", "content": load_prompt("plan_example_program").strip()},
                {"role": "user", "content": user}]

    def write(self, question: str, sub_queries: list[str]) -> str:
        user = render(load_prompt("plan"), question=question, sub_queries=json.dumps(sub_queries, ensure_ascii=False))
        self.calls += 1
        reply = self.llm.chat(self._messages(user), extra_body=self._extra(sub_queries), max_tokens=self.max_tokens)
        return extract_program(reply)

    def repair(self, question: str, sub_queries: list[str], program: str, errors: list[DslError]) -> str:
        user = render(load_prompt("repair"), question=question, program=program.rstrip("\n"),
                      errors=render_errors(errors))
        self.calls += 1
        reply = self.llm.chat(self._messages(user), extra_body=self._extra(sub_queries), max_tokens=self.max_tokens)
        return extract_program(reply)
