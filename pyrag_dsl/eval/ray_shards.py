"""`pyrag-dsl eval --ray [ADDRESS]`: the pending questions sharded over Ray tasks.

Each task opens its own Session (its own LLM clients and retriever, with the driver's resolved settings)
and appends its records to OUT/records-ray-<shard>.jsonl as each question finishes, so OUT must be a
directory every worker can write (a shared file system on a multi-node cluster). Resume and the summary
read every records*.jsonl file, exactly as for a local run: a crash loses only the questions in flight.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .data import QARow


def shard_rows(rows: list[QARow], shards: int) -> list[list[QARow]]:
    """Round-robin shards (question i goes to shard i % shards), empty shards dropped."""
    shards = max(1, min(shards, len(rows)))
    return [rows[i::shards] for i in range(shards) if rows[i::shards]]


def run_shard(shard: int, rows: list[dict[str, Any]], settings: Any, method_name: str, out_dir: str,
              concurrency: int = 1, llm_inflight: int | None = None, retrieval_inflight: int | None = None) -> int:
    """Body of one Ray task (also callable directly): answer `rows`, append records; returns how many."""
    from ..pipeline.batch import EndpointLimits
    from ..pipeline.session import Session
    from .data import QARow
    from .methods import method_class
    from .records import RecordWriter
    from .runner import run_rows

    qrows = [QARow(id=r["id"], question=r["question"], golden_answers=tuple(r["golden_answers"]), type=r.get("type"),
                   supporting_titles=tuple(r.get("supporting_titles") or ()), metadata=r.get("metadata") or {})
             for r in rows]
    limits = EndpointLimits(llm_inflight or concurrency)
    out = Path(out_dir)
    writer = RecordWriter(out / f"records-ray-{shard:03d}.jsonl")
    try:
        with Session(settings) as session:
            method = method_class(method_name).from_session(session, limits=limits)
            if retrieval_inflight:
                limits.overrides[f"retriever:{method.retriever_endpoint}"] = retrieval_inflight
            progress = run_rows(method, qrows, out, writer, concurrency=concurrency)
    finally:
        writer.close()
    return progress.done


def _ray():
    try:
        import ray
    except ImportError:
        from ..cli.common import UsageError

        raise UsageError("--ray needs Ray: pip install 'pyrag-dsl[ray]'") from None
    return ray


def ensure_ray(address: str | None, num_cpus: int | None = None):
    """Connect to Ray: an existing connection, ADDRESS, or a new local instance."""
    ray = _ray()
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
    return ray


def run_on_ray(args: Any, settings: Any, qaset: Any, out_dir: Path, config: dict[str, Any],
               done_records: list[dict[str, Any]], console: Any) -> int:
    """Driver: shard the pending questions over Ray tasks, show progress from the record files, summarise."""
    started_here = not _ray().is_initialized()
    ray = ensure_ray(args.ray or None, args.shards)
    try:
        return _drive(ray, args, qaset, out_dir, settings, config, done_records, console)
    finally:
        if started_here:
            ray.shutdown()  # a local instance started for this command goes with it


def _drive(ray: Any, args: Any, qaset: Any, out_dir: Path, settings: Any, config: dict[str, Any],
           done_records: list[dict[str, Any]], console: Any) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .records import read_records
    from .runner import finish, pending
    from .summary import rich_table

    todo = pending(qaset, done_records)
    n_shards = args.shards or int(ray.cluster_resources().get("CPU", 1))
    shards = shard_rows(todo, n_shards) if todo else []
    console.print(f"eval [bold]{args.method}[/bold] on {qaset.source} over Ray: {len(qaset.rows)} questions, "
                  f"{len(done_records)} already recorded, {len(shards)} tasks; writing {out_dir}", highlight=False)
    task_fn = ray.remote(num_cpus=1, max_retries=0)(run_shard)
    out = str(Path(out_dir).resolve())
    refs = [task_fn.remote(i, [r.to_dict() for r in rows], settings, args.method, out, args.concurrency,
                           args.llm_inflight, args.retrieval_inflight) for i, rows in enumerate(shards)]
    failures: list[str] = []
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console)
    interrupted = False
    try:
        with bar:
            task = bar.add_task(f"{args.method} (ray)", total=len(qaset.rows), completed=len(done_records))
            remaining = list(refs)
            while remaining:
                ready, remaining = ray.wait(remaining, num_returns=len(remaining), timeout=1.0)
                for ref in ready:
                    try:
                        ray.get(ref)
                    except Exception as e:  # noqa: BLE001 - a task that died: its recorded questions stay
                        failures.append(f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
                bar.update(task, completed=len(read_records(Path(out_dir), repair=False)))
                if not remaining:
                    break
                time.sleep(0.2)
    except KeyboardInterrupt:
        interrupted = True
        for ref in refs:
            ray.cancel(ref, force=True)
    summary = finish(Path(out_dir), qaset, config)
    from ..cli.eval_cmds import _wide

    _wide(console).print(rich_table(summary, title=f"{args.method} on {qaset.source} (ray)"
                             + (" (partial)" if not summary["complete"] else "")))
    for f in failures:
        console.print(f"[red]a Ray task failed[/red]: {f}", highlight=False)
    if interrupted or failures or not summary["complete"]:
        console.print("continue with the same command plus --resume", highlight=False)
        return 130 if interrupted else 1
    return 0


__all__ = ["ensure_ray", "run_on_ray", "run_shard", "shard_rows"]
