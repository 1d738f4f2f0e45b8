"""Run a method over QA rows into an output directory: N questions in flight, one record per finished
question (flushed as it finishes), `--resume` by id, a failing question recorded with its typed error.

Layout of an output directory:
  config.json          the exact configuration (checked again by --resume)
  records.jsonl        one JSON line per finished question (records-<shard>.jsonl from Ray tasks)
  traces/<id>/         the question's result.json (and trace.jsonl, generated_code.py for pyrag)
  summary.json/.md     written at the end (and on Ctrl-C, marked partial)
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..config import jsonl
from ..config.retry import wait_for_open_breakers
from ..pipeline.batch import concurrent_map
from .data import QARow, QASet
from .methods import Method, method_class
from .records import EvalError, RecordWriter, error_record, make_record, read_records, write_trace
from .summary import summarize, write_summary

# what --resume compares: a run may only continue with the same method, data, selection, model and settings
FINGERPRINT = ("method", "data", "settings", "llm", "plan_llm", "retriever")


_DESCRIBED = ("model", "base_url", "temperature", "max_tokens", "enable_thinking", "grammar")


def _llm_desc(fields: dict[str, Any] | None) -> dict[str, Any] | None:
    """What identifies an LLM endpoint's behaviour (never its API key)."""
    if fields is None:
        return None
    return {k: fields.get(k) for k in _DESCRIBED}


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("***" if "api_key" in k and v not in (None, "", "EMPTY") else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def run_config(method_name: str, settings: Any, qaset: QASet, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The exact configuration of a run, from the resolved Settings (the ones `pyrag-dsl run` uses): enough to
    reproduce a number. The same for a local and a Ray run, so either may --resume the other."""
    from ..pipeline.config import pipeline_config

    if settings.embedded_llm:
        llm: dict[str, Any] | None = {
            "embedded": True,
            "model": settings.gguf or "default",
            "llama": settings.llama.model_dump(mode="json"),
        }
    else:
        llm = _llm_desc(settings.llm_fields())
    retriever = {
        "url": settings.retriever.url,
        "index": settings.retriever.index,
        "embedded": not settings.retriever.url and not settings.retriever.index,
    }
    if retriever["embedded"]:
        from ..retrievers.embedded import DEFAULT_KIND

        retriever["kind"] = DEFAULT_KIND
    cfg = {
        "method": method_name,
        "data": qaset.describe(),
        "settings": method_class(method_name).settings_of(pipeline_config(settings)),
        "llm": llm,
        "plan_llm": _llm_desc(settings.plan_llm_fields()) if method_name == "pyrag" else None,
        "retriever": retriever if method_name != "direct" else None,
        "all_settings": _scrub(settings.model_dump(mode="json")),
        "package_version": __version__,
        "python": platform.python_version(),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    cfg.update(extra or {})
    return cfg


def prepare_out_dir(out_dir: Path, config: dict[str, Any], resume: bool) -> list[dict[str, Any]]:
    """Create or check the output directory; returns the records already there (for --resume)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EvalError(f"{out_dir} exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = out_dir / "config.json"
    records = read_records(out_dir) if any(out_dir.glob("records*.jsonl")) else []
    if cfg_path.exists():
        try:
            old = jsonl.loads(cfg_path.read_text(encoding="utf-8"))
        except ValueError as e:  # JsonError, UnicodeDecodeError
            raise EvalError(f"{cfg_path} is not JSON ({e}); use another --out") from None
        if not isinstance(old, dict) or not isinstance(old.get("resumed", []), list):
            raise EvalError(f"{cfg_path} is not a run configuration (an object); use another --out")
        if not resume and records:
            raise EvalError(
                f"{out_dir} already holds {len(records)} records: add --resume to continue, or choose another --out"
            )
        if resume:
            diff = [
                k for k in FINGERPRINT if _canon(_comparable(k, old.get(k))) != _canon(_comparable(k, config.get(k)))
            ]
            if diff:
                raise EvalError(
                    f"--resume: the configuration differs from {cfg_path} in {', '.join(diff)}; "
                    "resume with the same method, data, model and settings, or choose another --out"
                )
            config["started"] = old.get("started", config.get("started"))
            config["resumed"] = list(old.get("resumed", [])) + [time.strftime("%Y-%m-%dT%H:%M:%S%z")]
    elif records and not resume:
        raise EvalError(f"{out_dir} holds records but no config.json; choose another --out")
    tmp = cfg_path.with_name("config.json.tmp")
    tmp.write_text(jsonl.dumps(config, indent=2) + "\n", encoding="utf-8")
    tmp.replace(cfg_path)
    return records


def _comparable(key: str, value: Any) -> Any:
    """What --resume compares: everything, except that --limit may change (a run can be extended to more
    questions, or summarised over fewer) since it only takes a prefix of the same selection, and the data
    file is known by its sha256, not by where it lies (a moved checkout or another venv resumes), and the
    embedded server's prompt cache may be switched (it changes memory and speed, not answers)."""
    if key == "data" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k not in ("limit", "rows_selected", "path")}
    if key == "llm" and isinstance(value, dict) and isinstance(value.get("llama"), dict):  # memory, not answers
        return {**value, "llama": {k: v for k, v in value["llama"].items() if k not in _MEMORY_ONLY}}
    return value


_MEMORY_ONLY = ("prompt_cache", "cache_mb")  # the embedded server's RAM prompt cache: same answers on or off


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def answer_row(method: Method, row: QARow, out_dir: Path | None) -> dict[str, Any]:
    """One question: the method's outcome scored into a record (an unexpected exception becomes the
    record's typed error)."""
    t0 = time.monotonic()
    try:
        outcome = method.answer(row.question)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - recorded with its type; the run goes on
        return error_record(row, method.name, e, time.monotonic() - t0)
    trace = None
    if out_dir is not None:
        try:
            trace = write_trace(out_dir, row, outcome)
        except OSError as e:  # the record still goes out; say why its trace is missing
            outcome.error = outcome.error or {"type": type(e).__name__, "message": f"writing the trace: {e}"}
    return make_record(row, outcome, method.name, trace)


@dataclass
class Progress:
    done: int = 0
    total: int = 0
    em_sum: float = 0.0
    errors: int = 0

    @property
    def em(self) -> float | None:
        return self.em_sum / self.done if self.done else None


def run_rows(
    method: Method,
    rows: list[QARow],
    out_dir: Path,
    writer: RecordWriter,
    *,
    concurrency: int = 1,
    on_record: Callable[[dict[str, Any], Progress], None] | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> Progress:
    """Answer `rows` with `concurrency` in flight; each record is written (and flushed) when it finishes."""
    progress = progress or Progress(total=len(rows))

    def done(_i: int, row: QARow, record: dict[str, Any] | None, err: BaseException | None) -> None:
        if err is not None:  # answer_row only raises for Ctrl-C or a bug in the eval itself
            if isinstance(err, KeyboardInterrupt):
                raise err
            record = error_record(row, method.name, err, 0.0)
        if record is None:  # concurrent_map passes ask's record whenever ask did not raise
            raise RuntimeError(f"eval: no record for question {row.id!r}")
        writer.write(record)
        progress.done += 1
        progress.em_sum += record["metrics"]["em"]
        progress.errors += bool(record.get("error"))
        if on_record is not None:
            on_record(record, progress)

    def ask(row: QARow) -> dict[str, Any]:
        wait_for_open_breakers(stop)  # a server failing right now: wait out its cooldown, not record errors
        return answer_row(method, row, out_dir)

    concurrent_map(ask, rows, concurrency, done, stop=stop)
    return progress


def finish(out_dir: Path, qaset: QASet, config: dict[str, Any]) -> dict[str, Any]:
    """Read every record, order them as the data, write summary.json and summary.md; returns the summary."""
    records = read_records(out_dir)
    order = {row.id: i for i, row in enumerate(qaset.rows)}
    records = sorted((r for r in records if r["id"] in order), key=lambda r: order[r["id"]])
    config = dict(config)
    config["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    if hasattr(os, "getloadavg"):
        config.setdefault("machine", {})["load_avg_at_end"] = list(os.getloadavg())
    summary = summarize(records, config, expected=len(qaset.rows))
    write_summary(out_dir, summary)
    return summary


def resolved_settings(out_dir: Path) -> dict[str, Any]:
    """What an earlier session of this run resolved at its start (`settings_resolved`, `embedded_server`), from
    its summary: kept when a resumed run has nothing left to ask and starts no server."""
    try:
        old = jsonl.loads((Path(out_dir) / "summary.json").read_text(encoding="utf-8")).get("config", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {k: old[k] for k in ("settings_resolved", "embedded_server") if isinstance(old, dict) and k in old}


def pending(qaset: QASet, records: list[dict[str, Any]]) -> list[QARow]:
    done = {r["id"] for r in records}
    return [row for row in qaset.rows if row.id not in done]


__all__ = [
    "FINGERPRINT",
    "Progress",
    "answer_row",
    "finish",
    "pending",
    "prepare_out_dir",
    "resolved_settings",
    "run_config",
    "run_rows",
]
