"""Shared by the eval tests: a small QA set over tests/data/small-corpus.jsonl and a scripted LLM handler
that answers with the title of the first document it is given (deterministic)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from scripted_llm import doc_titles

QA = [
    {
        "id": "q1",
        "question": "Which tower stands on the Champ de Mars in Paris?",
        "golden_answers": ["Eiffel Tower"],
        "type": "bridge",
        "supporting_titles": ["Eiffel Tower"],
    },
    {
        "id": "q2",
        "question": "Who created the Python programming language?",
        "golden_answers": ["Guido van Rossum"],
        "type": "bridge",
        "supporting_titles": ["Guido van Rossum", "Python (programming language)"],
    },
    {
        "id": "q3",
        "question": "Which baseball team does Jed Hoyer work for?",
        "golden_answers": ["Chicago Cubs"],
        "type": "comparison",
        "supporting_titles": ["Jed Hoyer", "Chicago Cubs"],
    },
    {
        "id": "q4",
        "question": "What is the highest mountain in Japan?",
        "golden_answers": ["Mount Fuji"],
        "type": "comparison",
        "supporting_titles": ["Mount Fuji"],
    },
    {
        "id": "q5",
        "question": "Which river in South America is the largest by discharge?",
        "golden_answers": ["Amazon River", "Amazon"],
        "type": "bridge",
        "supporting_titles": ["Amazon River"],
    },
    {
        "id": "q6",
        "question": "Where did Marie Curie live and work?",
        "golden_answers": ["France"],
        "type": "bridge",
        "supporting_titles": ["Marie Curie"],
    },
]
FAIL_MARK = "FAILME"


def write_qa(path: Path, rows=None) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in (rows or QA)), encoding="utf-8")
    return path


def handler(role: str, prompt: str, body: dict) -> str:
    """decompose: the question itself; plan: retrieve + answer; answers: the first document's title;
    closed book: 'Paris'. A question containing FAILME makes every answer request fail (HTTP 500)."""
    question = next((r["question"] for r in QA if r["question"] in prompt), None)
    if question is None:
        found = re.findall(rf"Question: ({FAIL_MARK}.*)", prompt) or re.findall(rf"({FAIL_MARK}[^\"\n]*)", prompt)
        question = found[0].strip() if found else None
    if role == "decompose":
        return json.dumps([question or "unknown question"])
    if role in ("plan", "repair"):
        q = json.dumps(question or "unknown question")
        return f"```python\ndocs1 = retrieve({q})\nans1 = answer({q}, docs1)\nfinal_answer = ans1\n```"
    if FAIL_MARK in prompt:
        raise RuntimeError("scripted failure")
    if role == "answer_docs":
        titles = doc_titles(prompt)
        return f"<answer>{titles[0] if titles else 'unknown'}</answer>"
    return "<answer>Paris</answer>"
