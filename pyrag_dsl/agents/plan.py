"""Plan agent: writes the program; the tool list in its prompt comes from the grammar's registry."""

from __future__ import annotations

import json
import re

from ..grammar import DEFAULT_LANGUAGE, DslError, Language
from ..grammar.skeleton import steps_gbnf, steps_lark
from . import small_model
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
    """`grammar`: 'language' constrains decoding to the whole language; 'skeleton' (small models) to one
    retrieve/answer step per sub-query, with the final synthesis line built from the steps (see
    small_model.py; every program valid by construction); 'off' to nothing."""

    def __init__(self, llm: LLMClient, language: Language = DEFAULT_LANGUAGE, grammar: str = "language",
                 max_tokens: int = 600) -> None:
        if grammar not in PLAN_GRAMMARS:
            raise ValueError(f"plan grammar must be one of {PLAN_GRAMMARS}, got {grammar!r}")
        self.llm = llm
        self.language = language
        self.grammar = grammar
        self.max_tokens = max_tokens
        self.calls = 0
        self.copied_example = 0  # skeleton mode: programs replaced because they named an example's entity

    def system_prompt(self) -> str:
        return render(load_prompt("plan_system"), tools=self.language.describe_tools())

    def _extra(self, sub_queries: list[str]) -> dict:
        if self.grammar == "language":
            return self.llm.grammar_body(self.language.to_lark(), self.language.to_gbnf())
        if self.grammar == "skeleton":
            steps = min(max(len(sub_queries), 1), 4)
            return self.llm.grammar_body(steps_lark(steps), steps_gbnf(steps))
        return {}

    def _messages(self, user: str) -> list[dict[str, str]]:
        if self.grammar == "skeleton":  # invented examples, as turns: a stable prefix for the prompt cache
            turns = [{"role": "system", "content": load_prompt("plan_small_system").strip()}]
            for ex in small_model.examples()["examples"]:
                turns += [{"role": "user", "content": render(load_prompt("plan"), question=ex["question"],
                                                             sub_queries=json.dumps(ex["sub_queries"]))},
                          {"role": "assistant", "content": ex["program"]}]
            return turns + [{"role": "user", "content": user}]
        return [{"role": "system", "content": self.system_prompt()},
                {"role": "user", "content": load_prompt("plan_example_user").strip()},
                {"role": "assistant", "content": load_prompt("plan_example_program").strip()},
                {"role": "user", "content": user}]

    def write_messages(self, question: str, sub_queries: list[str]) -> list[dict[str, str]]:
        """The chat messages `write` sends."""
        user = render(load_prompt("plan"), question=question, sub_queries=json.dumps(sub_queries, ensure_ascii=False))
        return self._messages(user)

    def write(self, question: str, sub_queries: list[str], on_text=None) -> str:
        """The program for a question; with `on_text`, the reply is streamed to it as it is written."""
        if self.grammar == "skeleton" and len(sub_queries) <= 1:  # one step: nothing to plan, no model call
            return self._finish(question, sub_queries, small_model.plain_steps(sub_queries or [question]))
        self.calls += 1
        reply = self.llm.chat(self.write_messages(question, sub_queries), extra_body=self._extra(sub_queries),
                              max_tokens=self.max_tokens, on_text=on_text)
        return self._finish(question, sub_queries, extract_program(reply))

    def _finish(self, question: str, sub_queries: list[str], program: str) -> str:
        """Skeleton mode: append the synthesis line built from the steps; steps that name an example's
        entity (a copy) are replaced by the sub-queries verbatim."""
        if self.grammar != "skeleton":
            return program
        if small_model.leaked_entities(program, question + " " + " ".join(sub_queries)) or \
                not small_model.step_questions(program):
            self.copied_example += 1
            program = small_model.plain_steps(sub_queries or [question])
        return program.rstrip("\n") + "\n" + small_model.synthesis_line(question, program) + "\n"

    def repair(self, question: str, sub_queries: list[str], program: str, errors: list[DslError]) -> str:
        user = render(load_prompt("repair"), question=question, program=program.rstrip("\n"),
                      errors=render_errors(errors))
        if self.grammar == "skeleton":  # steps are valid by construction: ask for them afresh
            return self.write(question, sub_queries)
        self.calls += 1
        reply = self.llm.chat(self._messages(user), extra_body=self._extra(sub_queries), max_tokens=self.max_tokens)
        return extract_program(reply)
