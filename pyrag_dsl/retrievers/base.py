"""The retriever protocol: batch search from queries to ranked documents; every backend implements it."""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence, runtime_checkable

from ..documents import Doc, Docs


class RetrievalError(Exception):
    """A retrieval backend or server failed. `source` names the index or URL, `cause` says why."""

    def __init__(self, source: str, cause: str) -> None:
        super().__init__(f"{source}: {cause}")
        self.source = source
        self.cause = cause


Progress = Callable[[str, int, int | None], None]  # an index build's (stage, done, total) callback


@runtime_checkable
class Retriever(Protocol):
    """`search(queries, topk)` returns one ranked list of documents per query, best first."""

    def search(self, queries: Sequence[str], topk: int) -> list[list[Doc]]: ...

    def close(self) -> None: ...


class RetrieveTool:
    """The engine's `retrieve(query, topk)` tool over any Retriever."""

    def __init__(self, retriever: Retriever) -> None:
        self.retriever = retriever

    def __call__(self, query: str, topk: int) -> Docs:
        return Docs(tuple(self.retriever.search([query], topk)[0]))

    def batch(self, calls: list[dict[str, Any]]) -> list[Docs]:
        """Many calls at once: one search per distinct top-k (one HTTP request for an HTTP retriever)."""
        found: dict[int, Docs] = {}
        by_topk: dict[int, list[int]] = {}
        for i, kw in enumerate(calls):
            by_topk.setdefault(kw["topk"], []).append(i)
        for topk, idxs in by_topk.items():
            results = self.retriever.search([calls[i]["query"] for i in idxs], topk)
            if len(results) != len(idxs):  # the protocol: one list per query
                raise RetrievalError(
                    type(self.retriever).__name__, f"{len(results)} result lists for {len(idxs)} queries"
                )
            for i, docs in zip(idxs, results):
                found[i] = Docs(tuple(docs))
        return [found[i] for i in range(len(calls))]  # every call is in one top-k group
