"""Answer agent: with docs (numbered, titled passages) or without (synthesis); sentinel detection."""

from __future__ import annotations

import re
import string

from ..documents import Docs
from .formats import answer_rules, grammars
from .llm import LLMClient
from .prompts import default_sentinels, load_prompt, render

_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.S | re.I)


def extract_answer(reply: str) -> str:
    m = _ANSWER.search(reply)
    text = m.group(1) if m else reply
    text = text.strip().splitlines()[0].strip() if text.strip() else ""
    return text.removeprefix("Answer:").strip()


def format_docs(docs: Docs, max_chars: int = 1200) -> str:
    parts = []
    for i, d in enumerate(docs, 1):
        text = d.text if len(d.text) <= max_chars else d.text[:max_chars] + "..."
        parts.append(f"Document {i} (Title: {d.title}): {text}")
    return "\n".join(parts)


def _normalize(text: str) -> str:
    return " ".join(text.lower().replace("\u2019", "'").split())


class Sentinels:
    """Answers that mean "no answer": a whole answer, or a leading phrase followed by punctuation (one-word
    sentinels) or by anything (phrases of several words). 'The Unknown Soldier' is not a sentinel."""

    def __init__(self, phrases: tuple[str, ...] | None = None) -> None:
        self.phrases = tuple(_normalize(p) for p in (phrases if phrases is not None else default_sentinels()))

    def __call__(self, answer: str) -> bool:
        text = _normalize(answer).strip(string.whitespace + ".!\"'`*")
        if not text:
            return True
        for phrase in self.phrases:
            if text == phrase:
                return True
            if text.startswith(phrase):
                rest = text[len(phrase):]
                if " " in phrase and rest[:1] in (" ", ",", ".", ";", ":", "-", "("):
                    return True
                if rest[:1] in (",", ".", ";", ":", "-", "(", "!") or rest.startswith(" -"):
                    return True
        return False


class AnswerAgent:
    def __init__(self, llm: LLMClient, max_tokens: int = 64, use_grammar: bool = True) -> None:
        self.llm = llm
        self.max_tokens = max_tokens
        self.use_grammar = use_grammar

    def __call__(self, query: str, docs: Docs | None = None) -> str:
        if docs is not None:
            prompt = render(load_prompt("answer_docs"), documents=format_docs(docs) or "(no documents)", query=query)
        else:
            prompt = render(load_prompt("answer_synth"), query=query)
        extra = self.llm.grammar_body(*grammars(answer_rules(), "reply")) if self.use_grammar else {}
        reply = self.llm.chat([{"role": "user", "content": prompt}], max_tokens=self.max_tokens, extra_body=extra)
        return extract_answer(reply) or "unknown"
