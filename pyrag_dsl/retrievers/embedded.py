"""The embedded default corpus (HotpotQA dev passages + a few written ones), indexed on first use."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from pathlib import Path

from .base import Progress, Retriever
from .index_meta import META_FILE

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CORPUS_FILES = ("hotpotqa-dev300.corpus.jsonl", "extra-passages.jsonl")
QUESTIONS_FILE = DATA_DIR / "hotpotqa-dev300.qa.jsonl"


def cache_dir() -> Path:
    """$PYRAG_DSL_CACHE, else $XDG_CACHE_HOME/pyrag-dsl, else ~/.cache/pyrag-dsl."""
    env = os.environ.get("PYRAG_DSL_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pyrag-dsl"


def _digest() -> str:
    h = hashlib.sha256()
    for name in CORPUS_FILES:
        h.update((DATA_DIR / name).read_bytes())
    return h.hexdigest()[:16]


def embedded_corpus_path() -> Path:
    """The embedded corpus as one JSONL file in the cache (written once)."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"embedded-corpus-{_digest()}.jsonl"
    if not path.exists():
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as out:
            for name in CORPUS_FILES:
                data = (DATA_DIR / name).read_bytes()
                out.write(data if data.endswith(b"\n") else data + b"\n")
        tmp.replace(path)
    return path


DEFAULT_KIND = "tantivy"  # in-process BM25 without a JVM: fastest first run; "bm25" gives Lucene via pyserini


def embedded_index_built(kind: str = DEFAULT_KIND) -> bool:
    """Whether the embedded corpus's index of this kind is already in the cache."""
    return (cache_dir() / f"embedded-{kind}-{_digest()}" / META_FILE).exists()


def embedded_index(kind: str = DEFAULT_KIND, progress: Progress | None = None) -> Path:
    """The index directory of the embedded corpus; built under a file lock on first use."""
    corpus = embedded_corpus_path()
    final = cache_dir() / f"embedded-{kind}-{_digest()}"
    if (final / META_FILE).exists():
        return final
    with open(cache_dir() / f".{final.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / META_FILE).exists():  # another process built it meanwhile
            return final
        work = final.with_name(final.name + f".building{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        if kind == "bm25":
            from .bm25 import build_bm25_index

            build_bm25_index(corpus, work, progress=progress)
        elif kind == "tantivy":
            from .tantivy_bm25 import build_tantivy_index

            build_tantivy_index(corpus, work, progress=progress)
        elif kind == "dense":
            from .dense import build_dense_index

            build_dense_index(corpus, work, progress=progress)
        else:
            raise ValueError(f"unknown index kind {kind!r}")
        shutil.rmtree(final, ignore_errors=True)
        work.rename(final)
    return final


def open_retriever(
    url: str | None = None,
    index: str | Path | None = None,
    progress: Progress | None = None,
    *,
    timeout_s: float = 30.0,
    retries: int = 3,
    backoff_s: float = 0.5,
) -> Retriever:
    """A retrieval server by URL (with that timeout per request and retries), an index directory, or else the
    embedded corpus (indexed on first use)."""
    from .http_client import HttpRetriever
    from .indexes import open_index

    if url:
        return HttpRetriever(url, timeout=timeout_s, retries=retries, backoff=backoff_s)
    if index:
        return open_index(index)
    return open_index(embedded_index(progress=progress))


def embedded_retriever(kind: str = DEFAULT_KIND, progress: Progress | None = None) -> Retriever:
    from .indexes import open_index

    return open_index(embedded_index(kind, progress))
