"""The outputs directory: OUTPUT_DIR/<timestamp>/<n>/{generated_code.py, trace.jsonl, result.json}.
Each file is written atomically; a question's files are complete before the next question starts."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ..config import jsonl
from ..interpreter.trace import TraceEvent, dumps_jsonl
from .result import PipelineResult


def new_run_dir(output_dir: str | Path) -> Path:
    base = Path(output_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        path = base / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            continue
    raise OSError(f"cannot create a run directory under {base}")


class OutputError(OSError):
    """A result file could not be written (disk full, read-only...): `.path` names it; no temp file is left."""

    def __init__(self, path: Path, cause: OSError) -> None:
        self.message = f"cannot write {path}: {cause.strerror or cause}"
        super().__init__(cause.errno, self.message)
        self.path = path
        self.cause = cause

    def __str__(self) -> str:
        return self.message


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise OutputError(path, e) from e


def write_trace(path: str | Path, events: list[TraceEvent], meta: dict[str, Any]) -> None:
    """A trace file (exec --trace), atomically; raises OutputError naming it."""
    _atomic_write(Path(path), dumps_jsonl(events, meta))


def write_result(run_dir: Path, n: int, result: PipelineResult) -> Path:
    """Write one question's files; raises OutputError naming the file that failed."""
    out = run_dir / str(n)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(out, e) from e
    if result.generated_code is not None:
        _atomic_write(out / "generated_code.py", result.generated_code)
    _atomic_write(
        out / "trace.jsonl", dumps_jsonl(result.trace, {"question": result.original_query, "settings": result.settings})
    )
    _atomic_write(out / "result.json", jsonl.dumps(result.to_dict(), indent=2) + "\n")
    return out
