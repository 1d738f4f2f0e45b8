"""What the agents do differently for small models (skeleton mode), kept out of the large-model path.

- Few-shot examples (prompts/small_examples.json) cover bridge, comparison, yes/no and single-hop
  questions about invented entities; a sub-query naming an example entity that the question does not
  name is a leak and is dropped, and so is a sub-query that merely repeats the question (when others remain).
- The Plan model writes only the retrieve/answer steps; the final line is built here from those steps,
  so the synthesis prompt carries every intermediate answer by name and no fact the planner made up.
- The synthesis answers date and number comparisons deterministically (`compare_facts`), yes/no
  questions under a yes/no grammar, and everything else with the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, TypeVar

FACTS_MARK = "Facts: "
QUESTION_MARK = " | Question: "
FACT_SEP = " | "
ARROW = " -> "

_AUX = (
    "is",
    "are",
    "was",
    "were",
    "do",
    "does",
    "did",
    "can",
    "could",
    "has",
    "have",
    "had",
    "will",
    "would",
    "should",
    "shall",
    "may",
    "might",
)
_WORD = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=None)
def examples() -> dict[str, Any]:
    text = (resources.files(__package__) / "prompts" / "small_examples.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)  # a JSON object (the package's own file)
    return loaded


def example_entities() -> list[str]:
    return list(examples()["entities"])


def example_questions() -> list[str]:
    return [e["question"] for e in examples()["examples"]]


def leaked_entities(text: str, question: str) -> list[str]:
    """Example entities named in `text` but not in `question` (case-insensitive)."""
    low, q = text.lower(), question.lower()
    return [e for e in example_entities() if e.lower() in low and e.lower() not in q]


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def repeats_question(sub_query: str, question: str, threshold: float = 0.8) -> bool:
    """A sub-query whose words are (nearly) the question's words: it adds nothing."""
    a, b = set(_words(sub_query)), set(_words(question))
    if not a or not b:
        return False
    return len(a & b) / len(a | b) >= threshold


def filter_sub_queries(sub_queries: list[str], question: str) -> tuple[list[str], list[str]]:
    """(kept, dropped): leaks are dropped always, repeats of the question only while others remain."""
    kept = [s for s in dedupe(sub_queries) if not leaked_entities(s, question)]
    dropped = [s for s in sub_queries if s not in kept]
    fresh = [s for s in kept if not repeats_question(s, question)]
    if fresh and len(fresh) < len(kept):
        dropped += [s for s in kept if s not in fresh]
        kept = fresh
    return kept, dropped


def is_yes_no(question: str) -> bool:
    """'Are X and Y both ...?' is; 'Is X or Y older?' (a choice) is not."""
    words = _words(question)
    return bool(words) and words[0] in _AUX and " or " not in f" {question.lower()} "


def normalise_yes_no(answer: str) -> str | None:
    w = _words(answer)
    return w[0] if w and w[0] in ("yes", "no") else None


# -- comparisons --------------------------------------------------------------------------------
_OPTIONS = re.compile(r"(?:,|:)\s*(?:the\s+)?(.+?)\s+or\s+(?:the\s+)?(.+?)\s*\??\s*$", re.I)
_OPTIONS_IN = re.compile(
    r"^(?:who|which|what)\b.*?\b(?:is|was|were|are|has|had|did)\s+(.+?)\s+or\s+(.+?)\s+"
    r"(?:older|younger|older|born|released|founded|formed|established|first|earlier|later|"
    r"longer|shorter|taller|larger|bigger|smaller|higher|lower|more|fewer|less)\b",
    re.I,
)
_EARLY = ("older", "oldest", "earlier", "earliest", "first", "before", "elder")
_LATE = ("younger", "youngest", "later", "latest", "last", "after", "more recent", "most recent", "newer")
_BIG = (
    "larger",
    "largest",
    "bigger",
    "biggest",
    "more",
    "most",
    "higher",
    "highest",
    "taller",
    "tallest",
    "longer",
    "longest",
    "greater",
    "greatest",
    "heavier",
    "deeper",
    "wider",
)
_SMALL = (
    "smaller",
    "smallest",
    "fewer",
    "fewest",
    "less",
    "least",
    "lower",
    "lowest",
    "shorter",
    "shortest",
    "lighter",
    "shallower",
    "narrower",
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        (
            "january",
            "february",
            "march",
            "april",
            "may",
            "june",
            "july",
            "august",
            "september",
            "october",
            "november",
            "december",
        ),
        1,
    )
}
_YEAR = re.compile(r"\b(1\d{3}|20\d{2})\b")
_DAY_MONTH = re.compile(r"\b(\d{1,2})\s+(" + "|".join(_MONTHS) + r")\b", re.I)
_MONTH_DAY = re.compile(r"\b(" + "|".join(_MONTHS) + r")\s+(\d{1,2})\b", re.I)
_MONTH = re.compile(r"\b(" + "|".join(_MONTHS) + r")\b", re.I)
_NUMBER = re.compile(r"(-?\d[\d,]*(?:\.\d+)?)\s*(thousand|million|billion)?", re.I)
_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9}


@dataclass(frozen=True)
class Comparison:
    options: tuple[str, str]
    kind: str  # "date" | "number"
    pick: str  # "min" | "max"


def _has(words: str, terms: tuple[str, ...]) -> bool:
    return any(re.search(rf"\b{re.escape(t)}\b", words) for t in terms)


def comparison(question: str) -> Comparison | None:
    """The two options and the direction of a date or number comparison ('Who is older, A or B?'), or None."""
    q = question.strip()
    m = _OPTIONS.search(q) or _OPTIONS_IN.search(q)
    if m is None:
        return None
    a, b = (x.strip(" ?\"'") for x in m.groups())
    if not a or not b or len(a) > 80 or len(b) > 80:
        return None
    low = q.lower()
    head = low[: m.start(1)] if m.re is _OPTIONS else low
    if _has(head, _EARLY):
        return Comparison((a, b), "date", "min")
    if _has(head, _LATE):
        return Comparison((a, b), "date", "max")
    if _has(head, _BIG):
        return Comparison((a, b), "number", "max")
    if _has(head, _SMALL):
        return Comparison((a, b), "number", "min")
    return None


def parse_date(text: str) -> tuple[int, int, int] | None:
    """(year, month, day) from a date in words ('25 May 1949', 'May 25, 1949', '1949'); None without a year."""
    y = _YEAR.search(text)
    if y is None:
        return None
    month = day = 0
    if m := _DAY_MONTH.search(text):
        day, month = int(m.group(1)), _MONTHS[m.group(2).lower()]
    elif m := _MONTH_DAY.search(text):
        month, day = _MONTHS[m.group(1).lower()], int(m.group(2))
    elif m := _MONTH.search(text):
        month = _MONTHS[m.group(1).lower()]
    return int(y.group(1)), month, day


def parse_number(text: str) -> float | None:
    m = _NUMBER.search(text)
    if m is None:
        return None
    try:
        value = float(m.group(1).replace(",", ""))
    except ValueError:
        return None
    return value * _SCALE.get((m.group(2) or "").lower(), 1.0)


def _mentions(text: str, option: str) -> bool:
    words = [w for w in _words(option) if w not in ("the", "a", "an", "of")]
    t = set(_words(text))
    return bool(words) and all(w in t for w in words)


def compare_facts(question: str, facts: list[tuple[str, str]]) -> str | None:
    """The option a date/number comparison picks, from facts (sub-question, answer); None when the question
    is not such a comparison, an option is not tied to exactly one fact, or a value does not parse."""
    c = comparison(question)
    if c is None:
        return None
    if c.kind == "date":
        dates = _option_values(c.options, facts, parse_date)
        if dates is None:
            return None
        if (dates[0][1] == 0 or dates[1][1] == 0) and dates[0][0] == dates[1][0]:
            return None  # same year, no month on one side: cannot tell
        if dates[0] == dates[1]:
            return None
        first = dates[0] < dates[1]
    else:
        numbers = _option_values(c.options, facts, parse_number)
        if numbers is None or numbers[0] == numbers[1]:
            return None
        first = numbers[0] < numbers[1]
    return c.options[0] if first == (c.pick == "min") else c.options[1]


_V = TypeVar("_V")


def _option_values(
    options: tuple[str, str], facts: list[tuple[str, str]], parse: Callable[[str], _V | None]
) -> list[_V] | None:
    """Each option's value, parsed from the one fact that mentions it; None when an option is not tied to exactly
    one fact or its value does not parse."""
    values: list[_V] = []
    for option in options:
        tied = [ans for sub, ans in facts if _mentions(sub, option)]
        if len(tied) != 1:
            return None
        value = parse(tied[0])
        if value is None:
            return None
        values.append(value)
    return values


# -- the synthesis line -------------------------------------------------------------------------
_ANSWER_LINE = re.compile(r'^ans(\d+) = answer\((f?)"((?:[^"\\]|\\.)*)", docs\1\)$')


def _safe(text: str) -> str:
    return text.replace("\\", " ").replace('"', "'").replace("{", "(").replace("}", ")").replace("|", "/")


def step_questions(program: str) -> list[tuple[int, str, bool]]:
    """(k, question text, is f-string) of each `ansk = answer("...", docsk)` line of a skeleton program."""
    out = []
    for line in program.splitlines():
        m = _ANSWER_LINE.match(line.strip())
        if m:
            out.append((int(m.group(1)), m.group(3), bool(m.group(2))))
    return out


def dedupe(items: list[str]) -> list[str]:
    seen, out = set(), []
    for x in items:
        key = " ".join(_words(x))
        if key not in seen:
            seen.add(key)
            out.append(x)
    return out


def plain_steps(sub_queries: list[str]) -> str:
    """One retrieve/answer step per sub-query, verbatim: the fallback when the planner copied an example."""
    lines = []
    for k, sub in enumerate(sub_queries[:4], 1):
        text = _safe(sub)
        lines += [f'docs{k} = retrieve("{text}")', f'ans{k} = answer("{text}", docs{k})']
    return "\n".join(lines) + "\n"


FINAL_TOPK = 3


def synthesis_line(question: str, program: str) -> str:
    """`final_answer = answer(f"Facts: <sub-question 1> -> {ans1} | ... | Question: <question>",
    retrieve(f"<question> {ans1} ...", 3))`: every answer by name, and passages found with the question and
    the answers, for a last hop that the sub-questions missed."""
    facts, names = [], []
    for k, text, is_f in step_questions(program):
        body = text if is_f else _safe(text)
        facts.append(f"{body.replace('|', '/')}{ARROW}{{ans{k}}}")
        names.append(f"{{ans{k}}}")
    q = _safe(question)
    search = f'retrieve(f"{q} {" ".join(names)}", {FINAL_TOPK})'
    return f'final_answer = answer(f"{FACTS_MARK}{FACT_SEP.join(facts)}{QUESTION_MARK}{q}", {search})'


def parse_synthesis(query: str) -> tuple[list[tuple[str, str]], str] | None:
    """The (facts, question) of a synthesis query built by `synthesis_line`, or None."""
    if not query.startswith(FACTS_MARK) or QUESTION_MARK not in query:
        return None
    body, question = query[len(FACTS_MARK) :].rsplit(QUESTION_MARK, 1)
    facts = []
    for part in body.split(FACT_SEP):
        if ARROW in part:
            sub, ans = part.rsplit(ARROW, 1)
            facts.append((sub.strip(), ans.strip()))
    return facts, question.strip()


def yes_no_rules() -> dict[str, Any]:
    """<answer>yes</answer> or <answer>no</answer>."""
    from ..grammar.ir import Lit, alt

    return {"reply": alt(Lit("<answer>yes</answer>"), Lit("<answer>no</answer>"))}


def facts_text(facts: list[tuple[str, str]]) -> str:
    return "\n".join(f"- {sub} {ans}" for sub, ans in facts)


__all__ = [
    "Comparison",
    "compare_facts",
    "comparison",
    "example_entities",
    "example_questions",
    "examples",
    "filter_sub_queries",
    "is_yes_no",
    "leaked_entities",
    "normalise_yes_no",
    "parse_date",
    "parse_number",
    "parse_synthesis",
    "plain_steps",
    "repeats_question",
    "step_questions",
    "synthesis_line",
]
