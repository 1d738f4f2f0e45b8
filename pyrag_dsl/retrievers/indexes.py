"""Open any index directory as a Retriever, by the kind its `pyrag-index.json` names (index_meta); the
backends import lazily and each imports index_meta, never this module."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import Retriever
from .index_meta import read_meta


def open_index(index_dir: str | Path, **kw: Any) -> Retriever:
    """Open any index directory as a Retriever."""
    meta = read_meta(index_dir)
    if meta["kind"] == "bm25":
        from .bm25 import LuceneBM25Retriever

        return LuceneBM25Retriever(index_dir, **kw)
    if meta["kind"] == "tantivy":
        from .tantivy_bm25 import TantivyRetriever

        return TantivyRetriever(index_dir, **kw)
    from .dense import DenseRetriever

    return DenseRetriever(index_dir, **kw)


__all__ = ["open_index"]
