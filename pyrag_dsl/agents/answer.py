"""Answer agent: with docs (numbered, titled passages) or without (synthesis); sentinel detection."""

from __future__ import annotations

import re
import string

from ..documents import Docs
from . import small_model
from .formats import answer_rules, grammars
from .llm import ChatLLM
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
                rest = text[len(phrase) :]
                if " " in phrase and rest[:1] in (" ", ",", ".", ";", ":", "-", "("):
                    return True
                if rest[:1] in (",", ".", ";", ":", "-", "(", "!") or rest.startswith(" -"):
                    return True
        return False


class AnswerAgent:
    """`small`: the small-model prompts; a synthesis built by small_model.synthesis_line answers date and
    number comparisons deterministically (counted in `.computed`) and yes/no questions under a yes/no grammar."""

    def __init__(self, llm: ChatLLM, max_tokens: int = 64, use_grammar: bool = True, small: bool = False) -> None:
        self.llm = llm
        self.max_tokens = max_tokens
        self.use_grammar = use_grammar
        self.small = small
        self.computed = 0

    @staticmethod
    def messages(query: str, docs: Docs | None = None) -> list[dict[str, str]]:
        """The chat messages sent for this call (with docs: the documents prompt; without: synthesis)."""
        if docs is not None:
            prompt = render(load_prompt("answer_docs"), documents=format_docs(docs) or "(no documents)", query=query)
        else:
            prompt = render(load_prompt("answer_synth"), query=query)
        return [{"role": "user", "content": prompt}]

    def __call__(self, query: str, docs: Docs | None = None) -> str:
        if self.small:
            return self._small(query, docs)
        extra = self.llm.grammar_body(*grammars(answer_rules(), "reply")) if self.use_grammar else {}
        reply = self.llm.chat(self.messages(query, docs), max_tokens=self.max_tokens, extra_body=extra)
        return extract_answer(reply) or "unknown"

    def _small(self, query: str, docs: Docs | None) -> str:
        rules, parsed = answer_rules(), small_model.parse_synthesis(query)
        if parsed is not None:  # the synthesis line: facts by name (and passages found with them)
            facts, question = parsed
            picked = small_model.compare_facts(question, facts)
            if picked is not None:
                self.computed += 1
                return picked
            prompt = render(
                load_prompt("answer_synth_small"),
                facts=small_model.facts_text(facts),
                question=question,
                documents=format_docs(docs) if docs else "(none)",
            )
            if small_model.is_yes_no(question):
                rules = small_model.yes_no_rules()
        elif docs is not None:
            prompt = render(
                load_prompt("answer_docs_small"), documents=format_docs(docs) or "(no documents)", query=query
            )
        else:
            prompt = render(load_prompt("answer_synth"), query=query)
        extra = self.llm.grammar_body(*grammars(rules, "reply")) if self.use_grammar else {}
        reply = self.llm.chat([{"role": "user", "content": prompt}], max_tokens=self.max_tokens, extra_body=extra)
        answer = extract_answer(reply) or "unknown"
        if parsed is not None and small_model.is_yes_no(parsed[1]):
            answer = small_model.normalise_yes_no(answer) or answer
        return answer
