"""Plan agent: writes the program; the tool list in its prompt comes from the grammar's registry."""

from __future__ import annotations

import ast
import json
import re
import tokenize
import warnings
from typing import Any, Callable

from ..grammar import DEFAULT_LANGUAGE, DslError, Language
from ..grammar.skeleton import steps_gbnf, steps_lark
from . import small_model
from .llm import ChatLLM, strip_thinking
from .prompts import load_prompt, render

_FENCE = re.compile(r"```[a-zA-Z0-9_+-]*[ \t]*\n(.*?)(?:```|\Z)", re.S)
_SMART = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'", "\u00a0": " "})
_STATEMENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*\s*=")


def extract_program(text: str) -> str:
    """The program inside an LLM reply (thinking already stripped): the first fenced code if any, smart quotes
    made plain, prose lines dropped before the first assignment, and after the last statement when they are
    prose (`_drop_trailing_prose`)."""
    m = _FENCE.search(text)
    code = m.group(1) if m else text
    code = code.translate(_SMART).replace("\r\n", "\n")
    lines = code.split("\n")
    first = next((i for i, line in enumerate(lines) if _STATEMENT.match(line)), 0)
    return "\n".join(_drop_trailing_prose(lines[first:])).strip() + "\n"


def _drop_trailing_prose(lines: list[str]) -> list[str]:
    """`lines` without those after the end of the last statement when, taken together, they are not Python
    ("Hope this helps!"). Trailing lines that parse are kept, for the validator to point at."""
    last = max((i for i, line in enumerate(lines) if _STATEMENT.match(line)), default=None)
    end = None if last is None else _logical_line_end(lines, last)
    if end is None or end >= len(lines):
        return lines
    rest = "\n".join(lines[end:])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences and the like
            ast.parse(rest)
    except SyntaxError:  # prose (an IndentationError too)
        return lines[:end]
    except (ValueError, RecursionError, MemoryError):  # not plain prose: left for the validator to report
        pass
    return lines


def _logical_line_end(lines: list[str], start: int) -> int | None:
    """The index of the line after the logical line (continued lines, open brackets) that begins at
    `lines[start]`; None when it does not end in `lines` or does not tokenize."""
    pending = (line + "\n" for line in lines[start:])
    try:
        for tok in tokenize.generate_tokens(lambda: next(pending, "")):
            if tok.type == tokenize.NEWLINE:
                return start + tok.start[0]
    except (tokenize.TokenError, SyntaxError):
        return None
    return None


def settled_program(reply_so_far: str, constrained: bool = False) -> str:
    """The program of a Plan reply still being written, cut from its complete lines as `extract_program` cuts
    the finished reply, but only once no later text can change where the program is taken from: after the
    leading think block, inside the first code fence, or from the start when the reply is `constrained` to the
    language's grammar (no fence, no prose); '' before that. Every statement of it but the last is final (the
    last may still be continued); the whole may still turn out invalid (a later line, or no `final_answer`)."""
    text = strip_thinking(reply_so_far[: reply_so_far.rfind("\n") + 1])
    if not text or not (constrained or _FENCE.search(text)):
        return ""
    return extract_program(text)


def render_errors(errors: list[DslError]) -> str:
    return "\n".join(e.render() for e in errors)


PLAN_GRAMMARS = ("language", "skeleton", "off")


class PlanAgent:
    """`grammar`: 'language' constrains decoding to the whole language; 'skeleton' (small models) to one
    retrieve/answer step per sub-query, with the final synthesis line built from the steps (see
    small_model.py; every program valid by construction); 'off' to nothing."""

    def __init__(
        self, llm: ChatLLM, language: Language = DEFAULT_LANGUAGE, grammar: str = "language", max_tokens: int = 600
    ) -> None:
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

    def _extra(self, sub_queries: list[str]) -> dict[str, Any]:
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
                turns += [
                    {
                        "role": "user",
                        "content": render(
                            load_prompt("plan"), question=ex["question"], sub_queries=json.dumps(ex["sub_queries"])
                        ),
                    },
                    {"role": "assistant", "content": ex["program"]},
                ]
            return turns + [{"role": "user", "content": user}]
        return [
            {"role": "system", "content": self.system_prompt()},
            {"role": "user", "content": load_prompt("plan_example_user").strip()},
            {"role": "assistant", "content": load_prompt("plan_example_program").strip()},
            {"role": "user", "content": user},
        ]

    def write_messages(self, question: str, sub_queries: list[str]) -> list[dict[str, str]]:
        """The chat messages `write` sends."""
        user = render(load_prompt("plan"), question=question, sub_queries=json.dumps(sub_queries, ensure_ascii=False))
        return self._messages(user)

    @property
    def can_stream(self) -> bool:
        """Whether a streamed reply shows statements of the finished program: not in skeleton mode, where the
        finished program may replace the reply's steps."""
        return self.grammar != "skeleton"

    def write(self, question: str, sub_queries: list[str], on_text: Callable[[str], None] | None = None) -> str:
        """The program for a question. With `on_text` (and `can_stream`), the reply is streamed, and `on_text`
        gets the program written so far (`settled_program` of the reply) each time the reply grows."""
        if self.grammar == "skeleton" and len(sub_queries) <= 1:  # one step: nothing to plan, no model call
            return self._finish(question, sub_queries, small_model.plain_steps(sub_queries or [question]))
        self.calls += 1
        extra = self._extra(sub_queries)
        listen = None
        if on_text is not None and self.can_stream:
            constrained = self.grammar == "language" and bool(extra)  # the server decodes to the language

            def listen(reply_so_far: str) -> None:
                on_text(settled_program(reply_so_far, constrained))

        reply = self.llm.chat(
            self.write_messages(question, sub_queries), extra_body=extra, max_tokens=self.max_tokens, on_text=listen
        )
        return self._finish(question, sub_queries, extract_program(reply))

    def _finish(self, question: str, sub_queries: list[str], program: str) -> str:
        """Skeleton mode: append the synthesis line built from the steps; steps that name an example's
        entity (a copy) are replaced by the sub-queries verbatim."""
        if self.grammar != "skeleton":
            return program
        if small_model.leaked_entities(
            program, question + " " + " ".join(sub_queries)
        ) or not small_model.step_questions(program):
            self.copied_example += 1
            program = small_model.plain_steps(sub_queries or [question])
        return program.rstrip("\n") + "\n" + small_model.synthesis_line(question, program) + "\n"

    def repair(self, question: str, sub_queries: list[str], program: str, errors: list[DslError]) -> str:
        user = render(
            load_prompt("repair"), question=question, program=program.rstrip("\n"), errors=render_errors(errors)
        )
        if self.grammar == "skeleton":  # steps are valid by construction: ask for them afresh
            return self.write(question, sub_queries)
        self.calls += 1
        reply = self.llm.chat(self._messages(user), extra_body=self._extra(sub_queries), max_tokens=self.max_tokens)
        return extract_program(reply)
