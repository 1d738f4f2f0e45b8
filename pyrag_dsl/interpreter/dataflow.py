"""Dataflow execution: statements run in waves; a wave holds every statement whose inputs are ready.

Statements of a wave run concurrently; calls of one tool that has a `batch` method (the retrieve
tool) go out as one batched call. Events are emitted after each wave in statement order, so a run's
trace is deterministic and replay reproduces it. Results equal those of sequential mode.
"""

from __future__ import annotations

import ast
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from .walker import Buffer, _Stop

if TYPE_CHECKING:
    from ..grammar.validate import Statement
    from .walker import Run


def _batchable(run: "Run", stmt: "Statement") -> str | None:
    """The tool name when the statement is a single call of a batchable tool with no nested calls."""
    node = stmt.node.value
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return None
    if any(isinstance(n, ast.Call) for arg in [*node.args, *(k.value for k in node.keywords)] for n in ast.walk(arg)):
        return None
    impl = run.tools.get(node.func.id)
    return node.func.id if callable(getattr(impl, "batch", None)) else None


def _run_one(run: "Run", stmt: "Statement", buffer: Buffer) -> None:
    with run.scope(stmt, buffer):
        try:
            run.run_statement(stmt)
        except _Stop:
            pass


def _run_batch(run: "Run", tool: str, stmts: list["Statement"], buffers: dict[int, Buffer]) -> None:
    spec = run.language.tools[tool]
    items: list[dict[str, Any]] = []
    for stmt in stmts:
        with run.scope(stmt, buffers[stmt.index]):
            try:
                kwargs = run.bind(spec, stmt.node.value)
            except _Stop:
                continue
            key = run.cache_key(spec, kwargs)
            hit, value = run.lookup(key)
            items.append({"stmt": stmt, "kwargs": kwargs, "key": key, "hit": hit, "value": value,
                          "start": time.time()})
    misses = [it for it in items if not it["hit"]]
    raws: list[Any] = []
    failure, cause = None, ""
    if misses:
        with run.scope(misses[0]["stmt"], buffers[misses[0]["stmt"].index]):
            try:
                run.spend(len(misses), misses[0]["stmt"].node.value)
            except _Stop:
                return
            try:
                raws, failure, cause = run.call_tool(lambda: run.tools[tool].batch([m["kwargs"] for m in misses]))
            except _Stop:
                return
        if failure is None and (not isinstance(raws, list) or len(raws) != len(misses)):
            failure, cause = f"batch returned {len(raws) if isinstance(raws, list) else 'no list'} results for " \
                             f"{len(misses)} calls", "BatchError"
    for i, m in enumerate(misses):
        m["raw"] = raws[i] if failure is None else None
    for it in items:
        stmt = it["stmt"]
        with run.scope(stmt, buffers[stmt.index]):
            try:
                value = it["value"]
                if not it["hit"]:
                    value = run.convert(spec, it["raw"], failure, cause, stmt.node.value)
                    if it["key"] is not None:
                        run.cache.put(it["key"], value)
                run.record_call(spec, it["kwargs"], stmt.node.value, value, it["hit"], it["start"])
                run.assign(stmt, value, it["start"])
            except _Stop:
                pass


def run_dataflow(run: "Run", indexes: list[int]) -> None:
    statements = run.program.statements
    todo = sorted(set(indexes))
    waiting = set(todo)
    with ThreadPoolExecutor(max_workers=run.max_workers, thread_name_prefix="pyrag-dsl-step") as pool:
        while todo and run.error is None and not run.abandoned:
            wave = [i for i in todo if not waiting.intersection(statements[i].deps)]
            buffers = {i: Buffer() for i in wave}
            groups: dict[str, list] = {}
            singles = []
            for i in wave:
                tool = _batchable(run, statements[i])
                (groups.setdefault(tool, []) if tool else singles).append(statements[i])
            futures = [pool.submit(_run_one, run, stmt, buffers[stmt.index]) for stmt in singles]
            for tool, stmts in groups.items():
                if len(stmts) == 1:
                    futures.append(pool.submit(_run_one, run, stmts[0], buffers[stmts[0].index]))
                else:
                    futures.append(pool.submit(_run_batch, run, tool, stmts, buffers))
            wait(futures)
            for f in futures:
                f.result()  # an engine bug surfaces here, not silently
            for i in wave:  # also after a timeout: what finished is kept
                run.flush(buffers[i].events)
            if run.abandoned:
                return
            errors = [buffers[i].error for i in wave if buffers[i].error is not None]
            if errors:
                with run._lock:
                    run.error = errors[0]
                return
            todo = [i for i in todo if i not in buffers]
            waiting.difference_update(wave)
