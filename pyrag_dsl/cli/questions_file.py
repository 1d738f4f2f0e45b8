"""The questions file of `pyrag-dsl run`: one question per line, or JSON Lines rows with a "question"."""

from __future__ import annotations

import sys
from pathlib import Path

from ..config import jsonl
from ..config.limits import MAX_QUESTION_CHARS  # one question (a line); eval's cap too
from .exits import UsageError

MAX_QUESTIONS_BYTES = 10_000_000  # the questions file as a whole


def read_questions(path: str) -> list[str]:
    """One question per non-empty line, or JSON Lines rows with a "question" (when the first line is an
    object); lines are split on "\\n" only and a BOM is dropped (config.jsonl), so a JSON row holding U+2028
    stays one row. A line over MAX_QUESTION_CHARS or a file over MAX_QUESTIONS_BYTES is a usage error naming it."""
    name = "standard input" if path == "-" else path
    if path == "-":
        data = sys.stdin.buffer.read(MAX_QUESTIONS_BYTES + 1)
    else:
        p = Path(path)
        if not p.is_file():
            raise UsageError(f"no such file: {path}" if not p.exists() else f"{path} is not a file")
        with p.open("rb") as f:
            data = f.read(MAX_QUESTIONS_BYTES + 1)
    if len(data) > MAX_QUESTIONS_BYTES:
        raise UsageError(f"{name} is over {MAX_QUESTIONS_BYTES:,} bytes; split it into several files")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{name} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    lines = [(n, line.strip()) for n, line in jsonl.lines(text)]
    if not lines:
        raise UsageError(f"no questions in {'standard input' if path == '-' else path} (one question per line)")
    json_lines = _question_of_row(lines[0][1]) is not None  # an eval data file: each row's "question"
    questions: list[str] = []
    for n, line in lines:
        question = _question_of_row(line) if json_lines else line
        if question is None:
            raise UsageError(
                f"{name} line {n}: the file reads as JSON Lines (its first line is an object with a "
                f'"question"), but this line is not one'
            )
        if len(question) > MAX_QUESTION_CHARS:
            raise UsageError(
                f"{name} line {n}: the question has {len(question):,} characters, over the "
                f"{MAX_QUESTION_CHARS:,}-character limit (one question per line)"
            )
        questions.append(question)
    return questions


def _question_of_row(line: str) -> str | None:
    """The "question" of a JSON Lines row, or None when the line is not such a row."""
    if not line.startswith("{"):
        return None
    try:
        row = jsonl.loads(line)
    except jsonl.JsonError:
        return None
    question = row.get("question") if isinstance(row, dict) else None
    return question.strip() if isinstance(question, str) and question.strip() else None


__all__ = ["MAX_QUESTION_CHARS", "MAX_QUESTIONS_BYTES", "read_questions"]
