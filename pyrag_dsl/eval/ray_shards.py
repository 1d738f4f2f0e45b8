"""`pyrag-dsl eval --ray [ADDRESS]`: the pending questions sharded over Ray tasks.

Each task opens its own Session (its own LLM clients and retriever, with the driver's resolved settings)
and appends its records to OUT/records-ray-<shard>.jsonl as each question finishes, so OUT must be a
directory every worker can write (a shared file system on a multi-node cluster). Resume and the summary
read every records*.jsonl file, exactly as for a local run: a crash loses only the questions in flight.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config.errors import UsageError
from .data import QARow
from .records import read_records
from .runner import finish


def shard_rows(rows: list[QARow], shards: int) -> list[list[QARow]]:
    """Round-robin shards (question i goes to shard i % shards), empty shards dropped."""
    shards = max(1, min(shards, len(rows)))
    return [rows[i::shards] for i in range(shards) if rows[i::shards]]


def run_shard(
    shard: int,
    rows: list[dict[str, Any]],
    settings: Any,
    method_name: str,
    out_dir: str,
    concurrency: int = 1,
    llm_inflight: int | None = None,
    retrieval_inflight: int | None = None,
) -> int:
    """Body of one Ray task (also callable directly): answer `rows`, append records; returns how many."""
    from ..pipeline.batch import EndpointLimits
    from ..pipeline.session import Session
    from .data import QARow
    from .methods import method_class
    from .records import RecordWriter
    from .runner import run_rows

    qrows = [
        QARow(
            id=r["id"],
            question=r["question"],
            golden_answers=tuple(r["golden_answers"]),
            type=r.get("type"),
            supporting_titles=tuple(r.get("supporting_titles") or ()),
            metadata=r.get("metadata") or {},
        )
        for r in rows
    ]
    limits = EndpointLimits(llm_inflight or concurrency)
    out = Path(out_dir)
    writer = RecordWriter(out / f"records-ray-{shard:03d}.jsonl")
    try:
        with Session(settings) as session:
            method = method_class(method_name).from_session(session, limits=limits)
            if retrieval_inflight:
                limits.cap_retriever(method.retriever_endpoint, retrieval_inflight)
            progress = run_rows(method, qrows, out, writer, concurrency=concurrency)
    finally:
        writer.close()
    return progress.done


def _ray() -> Any:
    """The `ray` module (an optional package, not analysed by mypy)."""
    try:
        import ray
    except ImportError:
        raise UsageError("--ray needs Ray: pip install 'pyrag-dsl[ray]'") from None
    return ray


def ensure_ray(address: str | None, num_cpus: int | None = None) -> Any:
    """Connect to Ray: an existing connection, ADDRESS, or a new local instance."""
    ray = _ray()
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
    return ray


@dataclass
class RayRun:
    """What a sharded run left: the summary (from every record file), the Ray tasks that failed, and
    whether it was interrupted. The eval command prints it as it prints a local run."""

    summary: dict[str, Any]
    failures: list[str] = field(default_factory=list)
    interrupted: bool = False


def run_on_ray(
    todo: list[QARow],
    settings: Any,
    qaset: Any,
    out_dir: Path,
    config: dict[str, Any],
    recorded: int,
    console: Any,
    *,
    method: str,
    address: str | None,
    shards: int | None,
    concurrency: int = 1,
    llm_inflight: int | None = None,
    retrieval_inflight: int | None = None,
) -> RayRun:
    """Driver: shard the pending questions `todo` over Ray tasks, show progress from the record files, and
    summarise (`recorded`: the questions recorded before)."""
    started_here = not _ray().is_initialized()
    ray = ensure_ray(address or None, shards)
    try:
        n_shards = shards or int(ray.cluster_resources().get("CPU", 1))
        parts = shard_rows(todo, n_shards) if todo else []
        console.print(
            f"eval [bold]{method}[/bold] on {qaset.source} over Ray: {len(qaset.rows)} questions, "
            f"{recorded} already recorded, {len(parts)} tasks; writing {out_dir}",
            highlight=False,
        )
        task_fn = ray.remote(num_cpus=1, max_retries=0)(run_shard)
        out = str(Path(out_dir).resolve())
        refs = [
            task_fn.remote(
                i, [r.to_dict() for r in rows], settings, method, out, concurrency, llm_inflight, retrieval_inflight
            )
            for i, rows in enumerate(parts)
        ]
        run = RayRun(summary={})
        try:
            run.failures = _wait(ray, refs, Path(out_dir), f"{method} (ray)", len(qaset.rows), recorded, console)
        except KeyboardInterrupt:
            run.interrupted = True
            for ref in refs:
                ray.cancel(ref, force=True)
        run.summary = finish(Path(out_dir), qaset, config)
        return run
    finally:
        if started_here:
            ray.shutdown()  # a local instance started for this command goes with it


def _wait(ray: Any, refs: list[Any], out_dir: Path, name: str, total: int, recorded: int, console: Any) -> list[str]:
    """Wait for the tasks with a progress bar read from the record files; returns the failed tasks' errors."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    failures: list[str] = []
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
    with bar:
        task = bar.add_task(name, total=total, completed=recorded)
        remaining = list(refs)
        while remaining:
            ready, remaining = ray.wait(remaining, num_returns=len(remaining), timeout=1.0)
            for ref in ready:
                try:
                    ray.get(ref)
                except Exception as e:  # noqa: BLE001 - a task that died: its recorded questions stay
                    failures.append(f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
            bar.update(task, completed=len(read_records(out_dir, repair=False)))
            if not remaining:
                break
            time.sleep(0.2)
    return failures


__all__ = ["RayRun", "ensure_ray", "run_on_ray", "run_shard", "shard_rows"]
