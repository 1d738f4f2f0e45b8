"""Per-question eval records: one JSON line per finished question, appended and flushed as it finishes.

An output directory holds `records.jsonl` (and `records-<shard>.jsonl` files from Ray tasks). Reading
tolerates a torn last line (a crash mid-write): the partial line is cut off the file, and that question is
simply run again by `--resume`. A question is never recorded twice: `--resume` skips ids already recorded.
Lines are written and read by config.jsonl (split on "\\n" only: any text in a question or answer round-trips).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path
from typing import Any

from ..config import jsonl
from ..pipeline.outputs import write_result
from .data import QARow
from .methods import Outcome
from .metrics import retrieval_recall, score


class EvalError(Exception):
    """An eval run cannot start or continue (existing records without --resume, a changed configuration...)."""


def record_files(out_dir: Path) -> list[Path]:
    return sorted(p for p in Path(out_dir).glob("records*.jsonl") if p.is_file())


def _cut_torn_tail(path: Path) -> int:
    """Drop a last line without its newline (written by a process that died); returns bytes dropped."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return 0
        block = min(size, 1 << 20)
        f.seek(size - block)
        tail = f.read(block)
        cut = tail.rfind(b"\n")
        keep = size - block + cut + 1 if cut >= 0 else 0
        f.truncate(keep)
        return size - keep


def _record(line: str) -> dict[str, Any] | None:
    """The record on a line: an object with a string id and a metrics object; None for another JSON value.
    Raises JsonError for a line that is not JSON."""
    rec = jsonl.loads(line)
    if isinstance(rec, dict) and isinstance(rec.get("id"), str) and isinstance(rec.get("metrics", {}), dict):
        return rec
    return None


def read_records(out_dir: Path, repair: bool = True) -> list[dict[str, Any]]:
    """Every record of a run directory; the first record of an id wins (a duplicate is ignored)."""
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for path in record_files(out_dir):
        if repair:
            _cut_torn_tail(path)
        for n, line in jsonl.lines(path.read_text(encoding="utf-8")):
            try:
                rec = _record(line)
            except jsonl.JsonError as e:
                if not repair:  # a file being written by another process: its last line may be partial
                    continue
                raise EvalError(f"{path}:{n}: not a JSON record ({e})") from None
            if rec is not None and rec["id"] not in seen:
                seen.add(rec["id"])
                out.append(rec)
    return out


def drop_error_records(out_dir: Path) -> int:
    """Remove the records that carry an error (a server that timed out, a breaker that was open...) so that
    `--resume` asks those questions again; each file is rewritten atomically. Returns how many were removed."""
    removed = 0
    for path in record_files(out_dir):
        _cut_torn_tail(path)
        keep, dropped = [], 0
        for _, line in jsonl.lines(path.read_text(encoding="utf-8")):
            try:
                rec = _record(line)
            except jsonl.JsonError:
                rec = None
            if rec is not None and rec.get("error"):
                dropped += 1
            else:
                keep.append(line)
        if dropped:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text("".join(x + "\n" for x in keep), encoding="utf-8")
            os.replace(tmp, path)
            removed += dropped
    return removed


class RecordWriter:
    """Appends records to one file, each line written whole and flushed (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            _cut_torn_tail(self.path)
        self._f = open(self.path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = jsonl.dumps(record) + "\n"
        with self._lock:
            self._f.write(line)
            self._f.flush()
            os.fsync(self._f.fileno())

    def close(self) -> None:
        with self._lock:
            self._f.close()


def safe_name(ident: str) -> str:
    """A directory name for a question id: the id itself when it is a safe name of at most 100 characters,
    else its safe part plus a hash of the whole id (so that "a/b" and "a_b" never share a directory)."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", ident)[:100]
    if name == ident and name.strip("._"):
        return name
    digest = hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{name if name.strip('._') else 'q'}-{digest}"


def write_trace(out_dir: Path, row: QARow, outcome: Outcome) -> str | None:
    """The question's outputs under traces/<id>/ (pyrag: generated_code.py, trace.jsonl, result.json)."""
    if outcome.result is None:
        return None
    base = Path(out_dir) / "traces"
    name = safe_name(row.id)
    if hasattr(outcome.result, "trace"):
        write_result(base, name, outcome.result)  # type: ignore[arg-type]
        return f"traces/{name}/trace.jsonl"
    d = base / name
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / ".result.json.tmp"
    tmp.write_text(jsonl.dumps(outcome.result, indent=2) + "\n", encoding="utf-8")
    tmp.replace(d / "result.json")
    return f"traces/{name}/result.json"


def make_record(row: QARow, outcome: Outcome, method: str, trace_path: str | None) -> dict[str, Any]:
    metrics: dict[str, float | None] = {**score(outcome.prediction, list(row.golden_answers))}
    titles = [d.get("title", "") for d in outcome.retrieved_docs]
    recall = retrieval_recall(row.supporting_titles, titles) if method != "direct" else None
    metrics["recall"] = recall
    return {
        "id": row.id,
        "question": row.question,
        "gold": list(row.golden_answers),
        "type": row.type,
        "method": method,
        "prediction": outcome.prediction,
        "metrics": metrics,
        "sub_queries": outcome.sub_queries,
        "program": outcome.program,
        "repairs": outcome.repairs,
        "first_program_valid": outcome.first_program_valid,
        "adaptive_retry": outcome.adaptive_retry,
        "llm_calls": outcome.llm_calls,
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "retrievals": outcome.retrievals,
        "retrieved_titles": list(dict.fromkeys(titles)),
        "supporting_titles": list(row.supporting_titles),
        "seconds": outcome.seconds,
        "error": outcome.error,
        "trace": trace_path,
    }


def error_record(row: QARow, method: str, error: BaseException, seconds: float) -> dict[str, Any]:
    """The record of a question whose method raised: typed error, zero scores, the run goes on."""
    out = Outcome(error={"type": type(error).__name__, "message": str(error)}, seconds=round(seconds, 3))
    return make_record(row, out, method, None)


__all__ = [
    "EvalError",
    "RecordWriter",
    "error_record",
    "make_record",
    "read_records",
    "record_files",
    "safe_name",
    "write_trace",
]
