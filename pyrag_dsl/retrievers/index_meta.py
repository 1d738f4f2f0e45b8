"""Index directories: a `pyrag-index.json` file says what kind of index a directory holds."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from .base import RetrievalError

META_FILE = "pyrag-index.json"
INDEX_KINDS = ("bm25", "tantivy", "dense")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_meta(index_dir: Path, kind: str, **info: Any) -> dict[str, Any]:
    meta = {"kind": kind, "format": 1, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **info}
    tmp = index_dir / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    tmp.replace(index_dir / META_FILE)  # written last: a directory with this file is a complete index
    return meta


def read_meta(index_dir: str | Path) -> dict[str, Any]:
    path = Path(index_dir) / META_FILE
    if not Path(index_dir).is_dir():
        raise RetrievalError(str(index_dir), "no such index directory")
    if not path.exists():
        raise RetrievalError(
            str(index_dir), f"not a pyrag-dsl index (no {META_FILE}); build one with 'pyrag-dsl index build'"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise RetrievalError(str(index_dir), f"unreadable {META_FILE}: {e}") from None
    if not isinstance(meta, dict):
        raise RetrievalError(str(index_dir), f"{META_FILE} is not a JSON object")
    if meta.get("kind") not in INDEX_KINDS:
        raise RetrievalError(str(index_dir), f"unknown index kind {meta.get('kind')!r}")
    return meta
