"""Search-R1 / FlashRAG JSONL corpora: `{"id", "contents": "\"Title\"\\ntext"}` per line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..config import jsonl
from ..documents import Doc, split_contents


class CorpusError(Exception):
    """A corpus file has bad lines; `problems` lists them as (line number, reason)."""

    def __init__(self, path: str, problems: list[tuple[int, str]]) -> None:
        self.path = path
        self.problems = problems
        shown = "; ".join(f"line {n}: {why}" for n, why in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"{path}: {len(problems)} bad line{'s' if len(problems) != 1 else ''}: {shown}{more}")


@dataclass(frozen=True)
class Passage:
    id: str
    contents: str

    def to_doc(self, score: float | None = None) -> Doc:
        title, text = split_contents(self.contents)
        return Doc(id=self.id, title=title, text=text, score=score)


def parse_line(line: str) -> Passage:
    """One corpus row; raises ValueError with a short reason. Accepts {id, contents} or {id, title, text}."""
    row = jsonl.loads(line)  # a JsonError (a ValueError) with a short reason; nesting bounded
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    if "id" not in row:
        raise ValueError("no 'id'")
    raw_id = row["id"]
    if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)) or str(raw_id).strip() == "":
        raise ValueError("'id' must be a non-empty string or an integer")
    if "contents" in row:
        contents = row["contents"]
        if not isinstance(contents, str):
            raise ValueError("'contents' must be a string")
    elif "text" in row:
        title, text = row.get("title", ""), row["text"]
        if not isinstance(title, str) or not isinstance(text, str):
            raise ValueError("'title' and 'text' must be strings")
        contents = f'"{title}"\n{text}'
    else:
        raise ValueError("no 'contents' (or 'text')")
    if not contents.strip():
        raise ValueError("empty contents")
    return Passage(str(raw_id), contents)


def iter_corpus(path: str | Path, *, skip_bad: bool = False) -> Iterator[Passage]:
    """Yield the passages of a JSONL corpus. Bad lines and duplicate ids raise CorpusError (all of them
    at the end, with line numbers) unless `skip_bad`, which drops them."""
    path = Path(path)
    problems: list[tuple[int, str]] = []
    seen: set[str] = set()
    try:
        handle = path.open("rb")
    except OSError as e:
        raise CorpusError(str(path), [(0, e.strerror or str(e))]) from None
    with handle:
        for n, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                problems.append((n, "not UTF-8"))
                continue
            if not line.strip():
                continue
            try:
                passage = parse_line(line)
            except ValueError as e:
                problems.append((n, str(e)))
                continue
            if passage.id in seen:
                problems.append((n, f"duplicate id {passage.id!r}"))
                continue
            seen.add(passage.id)
            yield passage
    if problems and not skip_bad:
        raise CorpusError(str(path), problems)


def load_corpus(path: str | Path, *, skip_bad: bool = False) -> list[Passage]:
    return list(iter_corpus(path, skip_bad=skip_bad))
