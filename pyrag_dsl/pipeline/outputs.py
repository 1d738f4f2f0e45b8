"""The outputs directory: OUTPUT_DIR/<timestamp>/<n>/{generated_code.py, trace.jsonl, result.json}.
Each file is written atomically; a question's files are complete before the next question starts."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..interpreter.trace import dumps_jsonl
from .runner import PipelineResult


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


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_result(run_dir: Path, n: int, result: PipelineResult) -> Path:
    out = run_dir / str(n)
    out.mkdir(parents=True, exist_ok=True)
    if result.generated_code is not None:
        _atomic_write(out / "generated_code.py", result.generated_code)
    _atomic_write(out / "trace.jsonl", dumps_jsonl(result.trace, {"question": result.original_query,
                                                                  "settings": result.settings}))
    _atomic_write(out / "result.json", json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")
    return out
