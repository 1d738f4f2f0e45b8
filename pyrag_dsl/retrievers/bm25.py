"""Lucene BM25 through pyserini: index building (as a subprocess) and batch search."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..documents import Doc
from .base import Progress, RetrievalError
from .corpus import Passage, iter_corpus
from .index_meta import file_sha256, write_meta


def build_bm25_index(
    corpus: str | Path,
    out_dir: str | Path,
    *,
    threads: int = 2,
    skip_bad: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Index a JSONL corpus with Lucene. Raises CorpusError on bad lines (unless skip_bad)."""
    out = Path(out_dir)
    created = not out.exists()
    staging = out / ".staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        return _build(corpus, out, staging, threads, skip_bad, progress)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _build(
    corpus: str | Path, out: Path, staging: Path, threads: int, skip_bad: bool, progress: Progress | None
) -> dict[str, Any]:
    t0 = time.monotonic()
    # Lucene indexes files in parallel, not lines: split the corpus into one file per thread.
    shards = [open(staging / f"part{i:02d}.jsonl", "w", encoding="utf-8") for i in range(max(threads, 1))]
    count = 0
    try:
        for count, passage in enumerate(iter_corpus(corpus, skip_bad=skip_bad), start=1):
            shards[count % len(shards)].write(
                json.dumps({"id": passage.id, "contents": passage.contents}, ensure_ascii=False) + "\n"
            )
            if progress and count % 1000 == 0:
                progress("reading corpus", count, None)
    finally:
        for f in shards:
            f.close()
    if count == 0:
        shutil.rmtree(staging)
        raise RetrievalError(str(corpus), "the corpus has no passages")
    if progress:
        progress("reading corpus", count, count)
        progress("lucene indexing", 0, count)
    lucene_dir = out / "lucene"
    if lucene_dir.exists():
        shutil.rmtree(lucene_dir)
    cmd = [
        sys.executable,
        "-m",
        "pyserini.index.lucene",
        "--collection",
        "JsonCollection",
        "--input",
        str(staging),
        "--index",
        str(lucene_dir),
        "--generator",
        "DefaultLuceneDocumentGenerator",
        "--threads",
        str(threads),
        "--storeRaw",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    shutil.rmtree(staging, ignore_errors=True)
    if proc.returncode != 0 or not lucene_dir.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RetrievalError(str(out), "Lucene indexing failed: " + " | ".join(tail))
    if progress:
        progress("lucene indexing", count, count)
    return write_meta(
        out,
        "bm25",
        documents=count,
        corpus=str(corpus),
        corpus_sha256=file_sha256(corpus),
        seconds=round(time.monotonic() - t0, 2),
        k1=0.9,
        b=0.4,
    )


class LuceneBM25Retriever:
    """BM25 search over a Lucene index built by `build_bm25_index` (pyserini's LuceneSearcher)."""

    def __init__(self, index_dir: str | Path, *, k1: float = 0.9, b: float = 0.4, threads: int = 2) -> None:
        self.index_dir = Path(index_dir)
        try:
            import jnius_config

            if not jnius_config.vm_running and "-Xrs" not in jnius_config.get_options():
                jnius_config.add_options("-Xrs")  # leave Ctrl-C to Python: the JVM would exit(130) on SIGINT
            from pyserini.search.lucene import LuceneSearcher
        except ImportError as e:  # pragma: no cover - depends on the install
            raise RetrievalError(str(index_dir), f"pyserini is not installed ({e})") from None
        try:
            self._searcher = LuceneSearcher(str(self.index_dir / "lucene"))
        except Exception as e:  # noqa: BLE001 - Java errors come in many types
            raise RetrievalError(str(index_dir), f"cannot open the Lucene index: {e}") from None
        self._searcher.set_bm25(k1, b)
        self.threads = threads
        self.name = f"bm25:{self.index_dir}"

    def __len__(self) -> int:
        count: int = self._searcher.num_docs  # pyserini's LuceneSearcher (not analysed)
        return count

    def search(self, queries: Sequence[str], topk: int) -> list[list[Doc]]:
        queries = list(queries)
        if len(queries) == 1:
            return [self._hits(self._searcher.search(queries[0], k=topk))]
        qids = [str(i) for i in range(len(queries))]
        found = self._searcher.batch_search(queries, qids, k=topk, threads=self.threads)
        return [self._hits(found.get(q, [])) for q in qids]

    def _hits(self, hits: Iterable[Any]) -> list[Doc]:
        """Docs of pyserini's hits (JLuceneSearcherResult: docid, score, raw JSON)."""
        docs = []
        for hit in hits:
            raw = json.loads(hit.raw)
            docs.append(Passage(str(hit.docid), raw["contents"]).to_doc(float(hit.score)))
        return docs

    def close(self) -> None:
        self._searcher.close()
