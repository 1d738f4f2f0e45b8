"""Retrieved documents: the `docs` value of the language, shared by every layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from orjson import dumps as _orjson_dumps


@dataclass(frozen=True, slots=True)
class Doc:
    """One retrieved passage."""

    id: str
    title: str
    text: str
    score: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "text": self.text, "score": self.score}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "Doc":
        return cls(
            id=str(obj["id"]),
            title=str(obj.get("title", "")),
            text=str(obj.get("text", "")),
            score=None if obj.get("score") is None else float(obj["score"]),
        )


def split_contents(contents: str) -> tuple[str, str]:
    """Split Search-R1 `contents` ('"Title"\\ntext') into (title, text)."""
    head, sep, rest = contents.partition("\n")
    if not sep:
        return "", contents
    title = head.strip()
    if len(title) >= 2 and title[0] == title[-1] == '"':
        title = title[1:-1]
    return title, rest


@dataclass(frozen=True, slots=True)
class Docs:
    """An immutable ranked list of documents (the result of `retrieve`)."""

    items: tuple[Doc, ...] = ()
    # json form, size and hash, computed once; never an argument (a caller must not supply them)
    _memo: dict[str, Any] = field(init=False, default_factory=dict, compare=False, hash=False, repr=False)

    def json_size(self) -> int:
        """The UTF-8 size of this value's JSON form plus one byte (an upper bound), computed once."""
        size = self._memo.get("size")
        if size is None:
            rows = self.to_json()
            try:
                size = len(_orjson_dumps(rows)) + (1 if rows else 0)
            except TypeError:  # text orjson refuses (a lone surrogate): the ASCII-escaped form bounds it
                import json

                size = len(json.dumps(rows))
            self._memo["size"] = size
        return size

    def __hash__(self) -> int:
        """The hash of `items` (as the dataclass defines it), computed once: call-cache keys hash their docs."""
        h = self._memo.get("hash")
        if h is None:
            h = self._memo["hash"] = hash((self.items,))
        return h

    def __iter__(self) -> Iterator[Doc]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Doc:
        return self.items[i]

    def to_json(self) -> list[dict[str, Any]]:
        """The JSON form (built once per value and shared: do not modify it)."""
        rows = self._memo.get("json")
        if rows is None:
            rows = self._memo["json"] = [d.to_json() for d in self.items]
        return rows

    @classmethod
    def from_json(cls, rows: list[Mapping[str, Any]]) -> "Docs":
        return cls(tuple(Doc.from_json(r) for r in rows))
