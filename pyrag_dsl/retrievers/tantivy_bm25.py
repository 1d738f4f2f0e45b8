"""BM25 with tantivy (a Rust search library, no JVM): fast in-process search that runs outside the GIL,
so a batch of queries is searched on several threads at once. Its BM25 uses k1=1.2, b=0.75 (fixed),
so scores differ from Lucene's k1=0.9, b=0.4."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..documents import Doc
from .base import Progress, RetrievalError
from .corpus import Passage, iter_corpus
from .index_meta import file_sha256, write_meta

if TYPE_CHECKING:
    import tantivy


def _schema() -> tantivy.Schema:
    import tantivy

    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw")
    sb.add_text_field("contents", stored=True, tokenizer_name="en_stem")
    return sb.build()


def build_tantivy_index(
    corpus: str | Path, out_dir: str | Path, *, skip_bad: bool = False, progress: Progress | None = None
) -> dict[str, Any]:
    try:
        import tantivy
    except ImportError:
        raise RetrievalError(str(out_dir), "tantivy is not installed (pip install tantivy)") from None
    out = Path(out_dir)
    created = not out.exists()
    (out / "tantivy").mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    index = writer = None
    try:
        index = tantivy.Index(_schema(), path=str(out / "tantivy"))
        writer = index.writer()
        count = 0
        for count, p in enumerate(iter_corpus(corpus, skip_bad=skip_bad), start=1):
            writer.add_document(tantivy.Document(id=p.id, contents=p.contents))
            if progress and count % 1000 == 0:
                progress("indexing", count, None)
        if count == 0:
            raise RetrievalError(str(corpus), "the corpus has no passages")
        writer.commit()
        writer.wait_merging_threads()
    except BaseException:
        if writer is not None:  # let tantivy's writer threads stop and release their files first
            with contextlib.suppress(Exception):
                writer.rollback()
        writer = index = None
        _remove(out / "tantivy")
        if created:
            _remove(out)
        raise
    if progress:
        progress("indexing", count, count)
    return write_meta(
        out,
        "tantivy",
        documents=count,
        corpus=str(corpus),
        corpus_sha256=file_sha256(corpus),
        seconds=round(time.monotonic() - t0, 2),
    )


def _remove(path: Path) -> None:
    """Remove a directory that a just-dropped tantivy writer may still be releasing (bounded retries)."""
    for _ in range(50):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(0.02)


class TantivyRetriever:
    def __init__(self, index_dir: str | Path, *, threads: int | None = None) -> None:
        try:
            import tantivy
        except ImportError:
            raise RetrievalError(str(index_dir), "tantivy is not installed (pip install tantivy)") from None
        self.index_dir = Path(index_dir)
        try:
            self._index = tantivy.Index.open(str(self.index_dir / "tantivy"))
        except Exception as e:  # noqa: BLE001 - tantivy raises ValueError/OSError variants
            raise RetrievalError(str(index_dir), f"cannot open the tantivy index: {e}") from None
        self._searcher = self._index.searcher()
        self._pool = ThreadPoolExecutor(max_workers=threads or min(4, os.cpu_count() or 2))
        self.name = f"tantivy:{self.index_dir}"

    def __len__(self) -> int:
        return self._searcher.num_docs

    def _one(self, query: str, topk: int) -> list[Doc]:
        parsed, _errors = self._index.parse_query_lenient(query, ["contents"])
        hits = self._searcher.search(parsed, topk).hits
        docs = []
        for score, address in hits:
            stored = self._searcher.doc(address)
            docs.append(Passage(stored["id"][0], stored["contents"][0]).to_doc(float(score)))
        return docs

    def search(self, queries: Sequence[str], topk: int) -> list[list[Doc]]:
        if len(queries) <= 2:
            return [self._one(q, topk) for q in queries]
        return list(self._pool.map(lambda q: self._one(q, topk), queries))

    def close(self) -> None:
        self._pool.shutdown(wait=False)
