"""Schedulers: in which order and with what concurrency the statements of a resolved program run.

Both run the same statements through the same walker and commit their logs in statement order,
so values, trace and the first error are the same whichever runs; only timing differs.

- `sequential`: statement order, one at a time, in the calling thread.
- `dataflow`: a ready queue. A statement starts the moment the statements it reads from are done,
  up to `max_workers` at once; retrieve calls of a tool with a `batch` method that become ready
  within `batch_window_s` of each other go out as one batched call (at once when nothing else is
  in flight). After a statement fails, later statements are not started; earlier ones still run,
  so the error reported is the one sequential mode reports.
"""

from __future__ import annotations

import ast
import itertools
import queue
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeAlias, cast

from ..grammar.program import Statement, tool_name
from ..grammar.tools import ToolSpec
from .record import StepLog
from .state import CacheKey, RunState, Stop
from .walker import Frame, convert, failure, guarded, run_statement, tool_raised


def sequential(run: RunState, indexes: list[int], max_workers: int = 1, batch_window_s: float = 0.0) -> None:
    """One statement at a time, in order, in the calling thread (`max_workers` and `batch_window_s` do not
    apply)."""
    for i in indexes:
        if run.abandoned:
            return
        if not run.commit(run_statement(run, run.program.statements[i])):
            return


def batchable(run: RunState, stmt: Statement) -> str | None:
    """The tool name when the statement is one call of a tool with `batch` and no nested calls."""
    node = stmt.node.value
    if not isinstance(node, ast.Call) or run.program.tool_kind(node) is None:
        return None
    if any(run.program.tool_kind(n) for a in run.program.arguments(node).values() for n in ast.walk(a)):
        return None
    name = tool_name(node)
    impl = run.tools.get(name)
    return name if callable(getattr(impl, "batch", None)) else None


class _BatchTool(Protocol):
    """A tool that also answers several calls at once: `batch` takes their arguments, returns their results."""

    def batch(self, calls: list[dict[str, Any]], /) -> Any: ...


class _BatchItem:
    """One statement of a batched call: its frame, call node, arguments, cache key and start time; `result`
    is its (value, JSON size) once known (from the cache, or from the call when `miss`)."""

    __slots__ = ("frame", "node", "kwargs", "key", "start", "result", "miss")

    def __init__(self, frame: Frame, node: ast.Call, kwargs: dict[str, Any], key: CacheKey | None) -> None:
        self.frame = frame
        self.node = node
        self.kwargs = kwargs
        self.key = key
        self.start = time.time()
        cache = frame.run.cache
        self.result: tuple[Any, int] | None = cache.entry(key) if key is not None and cache is not None else None
        self.miss = False


def run_batch(run: RunState, tool: str, stmts: list[Statement]) -> list[StepLog]:
    """One batched call for several single-call statements; each statement still gets its own log."""
    spec = run.language.tools[tool]
    logs = [StepLog(s.index) for s in stmts]
    items = _batch_items(run, spec, stmts, logs)
    misses = [it for it in items if it.result is None]
    if misses and not _call_batch(run, spec, misses):
        return logs  # the run was abandoned
    for it in items:
        frame = it.frame
        if frame.log.error is not None or it.result is None:
            continue
        value, size = it.result
        if not it.miss:
            run.count_hit()
        frame.record_call(frame.plan(it.node), it.kwargs, value, size, not it.miss, it.start)
        frame.log.ok, frame.log.value = True, value
        run.values[frame.stmt.index] = value
    return logs


def _batch_items(run: RunState, spec: ToolSpec, stmts: list[Statement], logs: list[StepLog]) -> list[_BatchItem]:
    """The statements whose arguments could be computed, each with its cached result if any; the others' logs
    get their error."""
    items: list[_BatchItem] = []
    for stmt, log in zip(stmts, logs):
        frame = Frame(run, stmt, log)
        node = cast(ast.Call, stmt.node.value)  # batchable(): the statement's value is one tool call
        try:
            kwargs = frame.arguments(frame.plan(node), node)
        except Stop as s:
            log.error = s.error
            continue
        items.append(_BatchItem(frame, node, kwargs, run.cache_key(spec, kwargs)))
    return items


def _call_batch(run: RunState, spec: ToolSpec, misses: list[_BatchItem]) -> bool:
    """One batched call for the cache misses: each gets its result (cached when it has a key) or its error in
    its log. False when the run was abandoned."""
    first = misses[0]
    try:
        if not run.spend(len(misses)):
            first.frame.budget_spent(first.node)
        impl = cast(_BatchTool, run.tools[spec.name])  # batchable() checked that it has a callable `batch`
        results, exc = guarded(run, first.frame.stmt, _batched, run, spec, impl, misses)
    except Stop as s:
        if s.error is None:
            return False
        for m in misses:
            m.frame.log.error = s.error
        return True
    for i, m in enumerate(misses):
        outcome = exc if exc is not None else results[i]
        if isinstance(outcome, BaseException):
            m.frame.log.error = failure(spec, outcome, m.frame, m.node)
        else:
            m.result = outcome
            if m.key is not None and run.cache is not None:
                run.cache.put(m.key, *outcome)
            m.miss = True
    return True


def _batched(run: RunState, spec: ToolSpec, impl: _BatchTool, misses: list[_BatchItem]) -> list[Any]:
    """The batched call itself, inside the time limit: (value, JSON size) or the exception, per item."""
    try:
        got = impl.batch([m.kwargs for m in misses])
        if not isinstance(got, list):
            raise ValueError(f"batch returned no list for {len(misses)} calls")
        # a plain copy of at most one item too many: a list subclass's len() and iteration may
        # disagree, or its iteration raise
        raws = list(itertools.islice(iter(got), len(misses) + 1))
    except KeyboardInterrupt:
        raise  # guarded() decides, as for a single call
    except BaseException as e:  # noqa: BLE001 - described here, inside the time limit
        raise tool_raised(e) from None
    if len(raws) != len(misses):
        raise ValueError(f"batch returned {len(raws)} results for {len(misses)} calls")
    out: list[tuple[Any, int] | Exception] = []
    for raw in raws:  # each result converted inside the time limit
        try:
            out.append(convert(spec, raw, run))
        except Exception as e:  # noqa: BLE001 - kept per item, typed below
            out.append(e)
    return out


# Work ready to start on the ready queue: (fn, args, single): fn(*args) returns one StepLog when `single`,
# else a list of them.
_Work: TypeAlias = tuple[Callable[..., Any], tuple[Any, ...], bool]


class _ReadyQueue:
    def __init__(self, run: RunState, indexes: list[int], max_workers: int, batch_window_s: float) -> None:
        self.run = run
        self.stmts = run.program.statements
        self.order = sorted(set(indexes))
        todo = set(self.order)
        self.waiting = {i: set(self.stmts[i].deps) & todo for i in self.order}
        self.dependents: dict[int, list[int]] = {i: [] for i in self.order}
        for j in self.order:
            for i in self.waiting[j]:
                self.dependents[i].append(j)
        self.max_workers = max(1, max_workers)
        self.window = max(0.0, batch_window_s)
        self.logs: dict[int, StepLog] = {}
        self.commit_pos = 0
        self.fail_at: int | None = None
        self.stopped = False
        self.in_flight = 0
        self.batches: dict[str, list[int]] = {}
        self.batch_deadline = 0.0
        self.pending: list[_Work] = []  # work ready to start
        self.done: queue.SimpleQueue[list[StepLog] | BaseException] = queue.SimpleQueue()

    def _allowed(self, i: int) -> bool:
        return not self.stopped and (self.fail_at is None or i < self.fail_at)

    def _ready(self, i: int) -> None:
        if not self._allowed(i):
            return
        tool = batchable(self.run, self.stmts[i])
        if tool is None:
            self.pending.append((run_statement, (self.run, self.stmts[i]), True))
            return
        if not self.batches:
            self.batch_deadline = time.monotonic() + self.window
        self.batches.setdefault(tool, []).append(i)

    def _flush(self) -> None:
        batches, self.batches = self.batches, {}
        for tool, idx in batches.items():
            idx = [i for i in idx if self._allowed(i)]
            if len(idx) == 1:
                self.pending.append((run_statement, (self.run, self.stmts[idx[0]]), True))
            elif idx:
                self.pending.append((run_batch, (self.run, tool, [self.stmts[i] for i in idx]), False))

    def _start(self, pool: ThreadPoolExecutor) -> None:
        """Start the pending work: in this thread when it is the only work (a chain pays no thread hand-off),
        else on the pool."""
        if self.in_flight == 0 and len(self.pending) == 1:
            fn, args, single = self.pending.pop()
            self.in_flight += 1
            out = fn(*args)
            self._finished([out] if single else out)
            return
        pending, self.pending = self.pending, []
        for fn, args, single in pending:
            self.in_flight += 1
            pool.submit(self._work, fn, args, single)

    def _work(self, fn: Callable[..., Any], args: tuple[Any, ...], single: bool) -> None:
        try:
            out = fn(*args)
            self.done.put([out] if single else out)
        except BaseException as e:  # an engine bug: surfaces in the scheduler's thread
            self.done.put(e)

    def _finished(self, logs: list[StepLog]) -> None:
        self.in_flight -= 1
        for log in logs:
            self.logs[log.index] = log
            if log.ok:
                for j in self.dependents[log.index]:
                    self.waiting[j].discard(log.index)
                    if not self.waiting[j]:
                        self._ready(j)
            elif self.fail_at is None or log.index < self.fail_at:
                self.fail_at = log.index
        while self.commit_pos < len(self.order) and self.order[self.commit_pos] in self.logs:
            if not self.run.commit(self.logs.pop(self.order[self.commit_pos])):
                self.stopped = True
                return
            self.commit_pos += 1

    def go(self) -> None:
        pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="pyrag-dsl-step")
        crash: BaseException | None = None
        try:
            for i in self.order:
                if not self.waiting[i]:
                    self._ready(i)
            while not self.run.abandoned:
                if self.batches and (self.in_flight == 0 or time.monotonic() >= self.batch_deadline):
                    self._flush()
                if self.pending and not self.stopped:
                    self._start(pool)
                    continue
                self.pending.clear()
                if self.in_flight == 0 and not self.batches:
                    break
                timeout = 0.05
                if self.batches:
                    timeout = min(timeout, max(self.batch_deadline - time.monotonic(), 0.0))
                try:
                    item = self.done.get(timeout=timeout)
                except queue.Empty:
                    continue
                if isinstance(item, BaseException):
                    crash = crash or item
                    self.in_flight -= 1
                    self.stopped = True
                    continue
                self._finished(item)
        finally:
            pool.shutdown(wait=not self.run.abandoned, cancel_futures=True)
        if crash is not None:
            raise crash


def dataflow(run: RunState, indexes: list[int], max_workers: int, batch_window_s: float) -> None:
    """A ready queue of up to `max_workers` statements at once, batching retrieves within `batch_window_s`."""
    _ReadyQueue(run, indexes, max_workers, batch_window_s).go()


# mode -> scheduler(state, statement indexes, max_workers, batch_window_s)
SCHEDULERS: dict[str, Callable[[RunState, list[int], int, float], None]] = {
    "sequential": sequential,
    "dataflow": dataflow,
}
