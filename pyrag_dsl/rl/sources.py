"""Reading what the training sets are built from: QA files and our run/eval records.

* QA files: JSON Lines `{id, question, golden_answers}` (Search-R1 / FlashRAG; `answers` or `gold` too).
* Records: JSON Lines of eval records (one per question: id, question, gold, prediction, sub_queries,
  program, trace, ...; only the `pyrag` method's), `result.json` files of `pyrag-dsl run` (gold answers
  are matched by question from the QA files), or directories holding either.
* A record's synthesis step (the final `answer(...)` without documents) is read from the `trace.jsonl`
  beside its `result.json`, or from the trace path in the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..config import jsonl
from .rewards import golds_of


class SourceError(ValueError):
    """A QA or record file is missing or unreadable; says which file and line."""


@dataclass
class Item:
    """One question with what we know about it."""

    question: str
    golds: list[str]
    id: str = ""
    origin: str = ""  # file:line
    sub_queries: list[str] = field(default_factory=list)
    prediction: str | None = None
    synthesis_query: str | None = None  # the final answer() call's query (no documents)
    failed: bool = False  # the run ended with an error

    @property
    def key(self) -> str:
        return " ".join(self.question.split()).casefold()


def _golds(obj: dict[str, Any]) -> list[str]:
    for name in ("golden_answers", "gold", "golds", "answers", "answer", "gold_answers"):
        value = obj.get(name)
        if value is None:
            continue
        return golds_of(value)  # nested lists flattened; blanks, NaN and infinities are no gold
    return []


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of a JSON Lines file, read by config.jsonl; a SourceError names the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SourceError(f"{path}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    for n, line in jsonl.lines(text):
        try:
            obj = jsonl.loads(line)
        except jsonl.JsonError as e:
            raise SourceError(f"{path}:{n}: {e}") from None
        if not isinstance(obj, dict):
            raise SourceError(f"{path}:{n}: expected a JSON object")
        yield n, obj


def read_qa(path: str | Path) -> list[Item]:
    """Items of a QA JSON Lines file; a line without a question is an error (with its line number)."""
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"no such QA file: {path}")
    items = []
    for n, obj in _json_lines(path):
        question = obj.get("question")
        if not isinstance(question, str) or not question.strip():
            raise SourceError(f"{path}:{n}: no 'question'")
        items.append(Item(question.strip(), _golds(obj), str(obj.get("id", "")), f"{path}:{n}"))
    return items


def _synthesis_query(trace_path: Path) -> str | None:
    """The query of the last answer() call without documents that assigned final_answer."""
    found = None
    try:
        text = trace_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    for _, line in jsonl.lines(text):
        try:
            e = jsonl.loads(line)
        except jsonl.JsonError:
            continue
        if isinstance(e, dict) and e.get("kind") == "answer" and e.get("target") == "final_answer":
            inputs = e.get("inputs") or {}
            if inputs.get("docs") is None and isinstance(inputs.get("query"), str):
                found = inputs["query"]
    return found


def _record_item(obj: dict[str, Any], origin: str, base: Path) -> Item | None:
    """None for a line without a question, or the record of a baseline (eval's vanilla/direct methods)."""
    question = obj.get("question", obj.get("original_query"))
    if not isinstance(question, str) or not question.strip():
        return None
    if obj.get("method") not in (None, "pyrag"):
        return None
    prediction = obj.get("prediction", obj.get("final_answer"))
    sub_queries = obj.get("sub_queries") or []
    item = Item(
        question.strip(),
        _golds(obj),
        str(obj.get("id", "")),
        origin,
        sub_queries=[str(q) for q in sub_queries if str(q).strip()] if isinstance(sub_queries, list) else [],
        prediction=None if prediction is None else str(prediction),
        failed=bool(obj.get("error")),
    )
    for name in ("trace_path", "trace"):
        if isinstance(obj.get(name), str):
            p = Path(obj[name])
            item.synthesis_query = _synthesis_query(p if p.is_absolute() else base / p)
            break
    else:
        for name in ("output_dir", "result_dir", "dir"):
            if isinstance(obj.get(name), str):
                p = Path(obj[name])
                item.synthesis_query = _synthesis_query((p if p.is_absolute() else base / p) / "trace.jsonl")
                break
    return item


def read_records(path: str | Path) -> tuple[list[Item], int]:
    """(items, skipped): records of a JSON Lines file, a result.json, or a directory: its eval records
    (records*.jsonl, whose traces/ are read through them) or else its result.json files. Lines without
    a question and records of baseline methods are skipped."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.rglob("records*.jsonl")) or sorted(path.rglob("result.json"))
        items, bad = [], 0
        for f in files:
            got, b = read_records(f)
            items += got
            bad += b
        return items, bad
    if not path.is_file():
        raise SourceError(f"no such records file or directory: {path}")
    if path.suffix == ".json":
        try:
            obj = jsonl.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:  # JsonError, UnicodeDecodeError
            raise SourceError(f"{path}: not a JSON result ({e})") from None
        item = _record_item(obj, str(path), path.parent) if isinstance(obj, dict) else None
        if item is not None and item.synthesis_query is None:
            item.synthesis_query = _synthesis_query(path.parent / "trace.jsonl")
        return ([item], 0) if item else ([], 1)
    items, bad = [], 0
    for n, obj in _json_lines(path):
        item = _record_item(obj, f"{path}:{n}", path.parent)
        if item is None:
            bad += 1
        else:
            items.append(item)
    return items, bad
