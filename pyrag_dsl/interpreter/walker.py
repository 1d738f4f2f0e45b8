"""The AST walker: runs a validated Program node by node. No exec, eval or compile of program text."""

from __future__ import annotations

import ast
import contextlib
import contextvars
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..grammar.errors import DslError, LimitExceeded, ToolError
from ..grammar.language import FINAL_ANSWER
from ..grammar.limits import Limits
from ..grammar.tools import REQUIRED, RunDefault, ToolSpec
from ..grammar.validate import Program, Statement
from .trace import CALL_EVENT_KINDS, AssignEvent, ErrorEvent, TraceEvent, value_to_json
from .values import BadToolResult, TooLarge, to_value, value_size

Tool = Callable[..., Any]
EventSink = Callable[[TraceEvent], None]


class CallCache:
    """Tool results keyed by (tool, arguments): a repeated call is answered from here."""

    def __init__(self) -> None:
        self._store: dict[tuple, Any] = {}

    def get(self, key: tuple) -> tuple[bool, Any]:
        if key in self._store:
            return True, self._store[key]
        return False, None

    def put(self, key: tuple, value: Any) -> None:
        self._store[key] = value

    def __len__(self) -> int:
        return len(self._store)


@dataclass
class ExecutionResult:
    program: Program
    variables: dict[str, Any]
    trace: list[TraceEvent]
    error: DslError | None = None
    tool_calls: int = 0
    cache_hits: int = 0
    elapsed_s: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def final_answer(self) -> str | None:
        value = self.variables.get(FINAL_ANSWER)
        return None if value is None else str(value)

    def raise_for_error(self) -> "ExecutionResult":
        if self.error is not None:
            raise self.error
        return self


class _Stop(Exception):
    """Ends the walk; the error is already recorded."""


@dataclass
class Buffer:
    """Events and the error of one statement run in dataflow mode, held until its wave is emitted."""

    events: list[TraceEvent] = field(default_factory=list)
    error: DslError | None = None


def _describe_exception(e: BaseException) -> str:
    try:
        text = str(e)
    except BaseException:  # a hostile __str__ must not escape
        text = ""
    name = type(e).__name__
    text = text.replace("\n", " ")[:300]
    return f"{name}: {text}" if text else name


class Run:
    """The state of one execution: variables, trace, counters. Statements run through `run_statement`."""

    def __init__(
        self,
        program: Program,
        tools: Mapping[str, Tool],
        *,
        settings: Mapping[str, Any] | None = None,
        cache: CallCache | None = None,
        on_event: EventSink | None = None,
        mode: str = "sequential",
        max_workers: int = 4,
    ) -> None:
        if mode not in ("sequential", "dataflow"):
            raise ValueError(f"mode must be 'sequential' or 'dataflow', got {mode!r}")
        self.program = program
        self.limits: Limits = program.limits
        self.language = program.language
        self.tools = dict(tools)
        self.settings = dict(settings or {})
        self.cache = cache
        self.on_event = on_event
        self.mode = mode
        self.max_workers = max_workers
        self.env: dict[str, Any] = {}
        self.events: list[TraceEvent] = []
        self.error: DslError | None = None
        self.tool_calls = 0
        self.cache_hits = 0
        self.trace_bytes = 0
        self.overrides: dict[int, dict[str, Any]] = {}  # id(call node) -> arguments to force (adaptive top-k)
        self.abandoned = False
        self._lock = threading.Lock()
        self._local = threading.local()  # per thread: the statement being run and, in dataflow mode, its buffer
        self._inflight: dict[int, tuple[float, Statement | None]] = {}  # thread id -> (monotonic start, statement)
        self._handlers: dict[type, Callable[[Any], Any]] = {
            ast.Constant: self._constant,
            ast.Name: self._name,
            ast.JoinedStr: self._fstring,
            ast.Call: self._call,
        }
        missing = sorted(program.tools_used - self.tools.keys())
        if missing:
            raise ValueError(f"no implementation given for tool(s): {', '.join(missing)}")

    @property
    def _stmt(self) -> Statement | None:
        return getattr(self._local, "stmt", None)

    def oldest_call(self) -> tuple[float, Statement | None] | None:
        """(monotonic start, statement) of the oldest tool call in flight, for the supervisor."""
        calls = list(self._inflight.values())
        return min(calls, key=lambda c: c[0]) if calls else None

    @contextlib.contextmanager
    def scope(self, stmt: Statement, buffer: "Buffer | None" = None):
        """Run code as part of `stmt`; with a buffer, its events and error are held for ordered emission."""
        outer = (self._stmt, getattr(self._local, "buffer", None))
        self._local.stmt, self._local.buffer = stmt, buffer
        try:
            yield
        finally:
            self._local.stmt, self._local.buffer = outer

    # -- public -------------------------------------------------------------------------------
    def run_all(self) -> None:
        self.run_statements(range(len(self.program.statements)))

    def run_statements(self, indexes) -> None:
        """Run the given statements (in order, or by dataflow waves); stops at the first error."""
        if self.mode == "dataflow":
            from .dataflow import run_dataflow

            run_dataflow(self, list(indexes))
            return
        try:
            for i in indexes:
                self.run_statement(self.program.statements[i])
        except _Stop:
            pass

    def run_statement(self, stmt: Statement) -> None:
        with self.scope(stmt, getattr(self._local, "buffer", None)):
            start = time.time()
            self.assign(stmt, self.eval(stmt.node.value), start)

    def assign(self, stmt: Statement, value: Any, start: float) -> None:
        with self._lock:
            if self.abandoned:
                raise _Stop
            self.env[stmt.target] = value
            if not isinstance(stmt.node.value, ast.Call):
                self._emit(AssignEvent(step=len(self.events) + 1, start=start, end=time.time(),
                                       output=value_to_json(value), **self._where(stmt)))

    # -- helpers for extension node kinds ---------------------------------------------------------
    def eval(self, node: ast.AST) -> Any:
        handler = self._handlers.get(type(node))
        if handler is not None:
            return handler(node)
        return self.language.nodes[type(node)].evaluate(node, self)

    def check_length(self, n: int, node: ast.AST) -> None:
        if n > self.limits.max_string_length:
            self.fail(LimitExceeded, f"text of {n} characters is over the limit {self.limits.max_string_length}",
                      node, limit="max_string_length", value=n)

    def fail(self, cls: type[DslError], message: str, node: ast.AST | None = None, **kw: Any) -> None:
        """Record an error event and stop the run."""
        err = self.program.smap.error(cls, message, node if node is not None else self._stmt.node, **kw)
        self._record_error(err)
        raise _Stop

    # -- node handlers ----------------------------------------------------------------------------
    def _constant(self, node: ast.Constant) -> Any:
        return node.value

    def _name(self, node: ast.Name) -> Any:
        return self.env[node.id]

    def _fstring(self, node: ast.JoinedStr) -> str:
        parts: list[str] = []
        total = 0
        for part in node.values:
            if isinstance(part, ast.Constant):
                s = part.value
            else:
                inner = part.value
                v = self.env[inner.id] if isinstance(inner, ast.Name) else inner.value
                s = v if type(v) is str else str(int(v))
            total += len(s)
            parts.append(s)
        self.check_length(total, node)
        return "".join(parts)

    def _call(self, node: ast.Call) -> Any:
        spec: ToolSpec = self.language.tools[node.func.id]
        return self._invoke(spec, self.bind(spec, node), node)

    def bind(self, spec: ToolSpec, node: ast.Call) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults and overrides applied."""
        kwargs: dict[str, Any] = {}
        for param, arg in zip(spec.params, node.args):
            kwargs[param.name] = self.eval(arg)
        for kw in node.keywords:
            kwargs[kw.arg] = self.eval(kw.value)
        for p in spec.params:
            if p.name not in kwargs:
                d = p.default
                if isinstance(d, RunDefault):
                    d = self.settings.get(d.key, d.fallback)
                elif d is REQUIRED:  # cannot happen after validation
                    self.fail(ToolError, f"{spec.name}() is missing '{p.name}'", node)
                kwargs[p.name] = d
        kwargs = {p.name: kwargs[p.name] for p in spec.params}
        if self.overrides:
            kwargs.update(self.overrides.get(id(node), ()))
        return kwargs

    def cache_key(self, spec: ToolSpec, kwargs: dict[str, Any]) -> tuple | None:
        return (spec.name, tuple(kwargs.items())) if (self.cache is not None and spec.memoize) else None

    def lookup(self, key: tuple | None) -> tuple[bool, Any]:
        return self.cache.get(key) if key is not None else (False, None)

    def spend(self, n: int, node: ast.AST) -> None:
        with self._lock:
            if self.tool_calls + n > self.limits.max_tool_calls:
                over = True
            else:
                self.tool_calls += n
                over = False
        if over:
            self.fail(LimitExceeded, f"tool call budget of {self.limits.max_tool_calls} is spent", node,
                      limit="max_tool_calls")

    def call_tool(self, fn: Callable[[], Any]) -> tuple[Any, str | None, str]:
        """Call a tool; any exception becomes (None, message, exception type name)."""
        me = threading.get_ident()
        self._inflight[me] = (time.monotonic(), self._stmt)
        try:
            return fn(), None, ""
        except BaseException as e:  # noqa: BLE001 - any tool failure becomes a ToolError
            return None, _describe_exception(e), type(e).__name__
        finally:
            self._inflight.pop(me, None)
            if self.abandoned:
                raise _Stop

    def convert(self, spec: ToolSpec, raw: Any, failure: str | None, cause: str, node: ast.Call) -> Any:
        if failure is not None:
            self.fail(ToolError, f"{spec.name}() failed: {failure}", node, tool=spec.name, cause=cause)
        try:
            return to_value(spec.returns, raw, self.limits)
        except BadToolResult as e:
            self.fail(ToolError, f"{spec.name}() returned a bad result: {e}", node, tool=spec.name)
        except TooLarge as e:
            self.fail(LimitExceeded, f"{spec.name}(): {e}", node, limit=e.limit, tool=spec.name)

    def _invoke(self, spec: ToolSpec, kwargs: dict[str, Any], node: ast.Call) -> Any:
        key = self.cache_key(spec, kwargs)
        start = time.time()
        hit, value = self.lookup(key)
        if not hit:
            self.spend(1, node)
            raw, failure, cause = self.call_tool(lambda: self.tools[spec.name](**kwargs))
            value = self.convert(spec, raw, failure, cause, node)
            if key is not None:
                self.cache.put(key, value)
        self.record_call(spec, kwargs, node, value, hit, start)
        return value

    def record_call(self, spec: ToolSpec, kwargs: dict[str, Any], node: ast.Call, value: Any, hit: bool,
                    start: float) -> None:
        stmt = self._stmt
        event_cls = CALL_EVENT_KINDS.get(spec.event_kind, CALL_EVENT_KINDS["call"])
        size = sum(value_size(v) for v in kwargs.values()) + value_size(value)
        with self._lock:
            if self.abandoned:
                raise _Stop
            self.cache_hits += hit
            self._charge(size, node)
            self._emit(event_cls(
                step=len(self.events) + 1, start=start, end=time.time(), tool=spec.name,
                inputs={k: value_to_json(v) for k, v in kwargs.items()}, output=value_to_json(value),
                cached=hit, **self._where(stmt, target=stmt.target if node is stmt.node.value else None),
            ))

    # -- trace ------------------------------------------------------------------------------------
    def _where(self, stmt: Statement, target: str | None = "") -> dict[str, Any]:
        s = stmt.span
        return {"statement": stmt.index, "line": s.line, "col": s.col, "end_line": s.end_line, "end_col": s.end_col,
                "source": stmt.source, "target": stmt.target if target == "" else target}

    def _charge(self, size: int, node: ast.AST) -> None:
        self.trace_bytes += size
        if self.trace_bytes > self.limits.max_trace_bytes:
            err = self.program.smap.error(LimitExceeded, f"trace is over {self.limits.max_trace_bytes} bytes", node,
                                          limit="max_trace_bytes")
            self._record_error(err, locked=True)
            raise _Stop

    def _emit(self, event: TraceEvent) -> None:
        buffer = getattr(self._local, "buffer", None)
        if buffer is not None:
            buffer.events.append(event)
            return
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def flush(self, events: list[TraceEvent]) -> None:
        """Emit buffered events (dataflow mode), numbered in emission order."""
        with self._lock:
            for event in events:
                self._emit(event.model_copy(update={"step": len(self.events) + 1}))

    def _record_error(self, err: DslError, locked: bool = False) -> None:
        with contextlib.nullcontext() if locked else self._lock:
            buffer = getattr(self._local, "buffer", None)
            stmt = self._stmt.index if self._stmt else None
            now = time.time()
            if buffer is not None:
                if buffer.error is None and not self.abandoned:
                    buffer.error = err
                    buffer.events.append(ErrorEvent(step=0, start=now, end=now, statement=stmt, error=err.to_dict()))
            elif self.error is None and not self.abandoned:
                self.error = err
                self._emit(ErrorEvent(step=len(self.events) + 1, start=now, end=now, statement=stmt,
                                      error=err.to_dict()))

    def abandon(self, err: DslError, stmt: Statement | None = None) -> None:
        """Called by the supervisor on a timeout: record the error, then ignore whatever the walker does next."""
        with self.scope(stmt) if stmt is not None else contextlib.nullcontext(), self._lock:
            self._record_error(err, locked=True)
            self.abandoned = True


class _Workers:
    """Reusable daemon threads for supervised runs: starting a thread per run costs more than a run."""

    max_idle = 8

    def __init__(self) -> None:
        self._idle: list[queue.SimpleQueue] = []
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], None]) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._loop, args=(inbox,), name="pyrag-dsl-run", daemon=True).start()
        inbox.put(fn)

    def _loop(self, inbox: queue.SimpleQueue) -> None:
        while True:
            inbox.get()()  # the callable catches everything itself
            with self._lock:
                if len(self._idle) >= self.max_idle:
                    return
                self._idle.append(inbox)


_WORKERS = _Workers()


def supervise(run: Run, work: Callable[[], None]) -> None:
    """Run `work` in a worker thread and enforce the per-call and per-run wall-clock limits.

    A tool that overruns is abandoned (Python cannot kill a thread): its late result is ignored.
    Without timeouts the work runs inline in the caller's thread.
    """
    limits = run.limits
    if limits.tool_timeout_s is None and limits.run_timeout_s is None:
        work()
        return
    done = threading.Event()
    ctx = contextvars.copy_context()

    crash: list[BaseException] = []

    def target() -> None:
        try:
            ctx.run(work)
        except BaseException as e:  # an engine bug: re-raised in the caller's thread below
            crash.append(e)
        finally:
            done.set()

    run_deadline = time.monotonic() + limits.run_timeout_s if limits.run_timeout_s else None
    _WORKERS.submit(target)
    try:
        while not done.wait(timeout=0.05):
            now = time.monotonic()
            if run_deadline is not None and now >= run_deadline:
                run.abandon(LimitExceeded(f"run took longer than {limits.run_timeout_s} s", limit="run_timeout_s"))
                return
            oldest = run.oldest_call()
            if oldest is not None and limits.tool_timeout_s is not None and now - oldest[0] >= limits.tool_timeout_s:
                stmt = oldest[1]
                span = stmt.span if stmt else None
                run.abandon(LimitExceeded(f"a tool call took longer than {limits.tool_timeout_s} s", span,
                                          source_line=run.program.smap.line(span.line) if span else None,
                                          limit="tool_timeout_s"), stmt)
                return
        if crash:
            raise crash[0]
    except BaseException:  # Ctrl-C while waiting: keep what was computed, stop the walker
        run.abandon(LimitExceeded("run interrupted", limit="interrupted"))
        raise


def execute(
    program: Program,
    tools: Mapping[str, Tool],
    *,
    settings: Mapping[str, Any] | None = None,
    cache: CallCache | None = None,
    on_event: EventSink | None = None,
    mode: str = "sequential",
    max_workers: int = 4,
) -> ExecutionResult:
    """Execute a validated program with the given tool implementations.

    `settings` feeds run defaults such as `topk`; `cache` memoizes calls by their arguments (pass
    one CallCache to several runs to reuse results). Errors end the run and are returned, not
    raised: the variables and trace computed so far are kept in the result. `mode="dataflow"` runs
    independent statements concurrently and batches retrieve calls (same results, see dataflow.py).
    """
    if not isinstance(program, Program):
        raise TypeError("execute() takes a validated Program; use parse_program(source) first")
    started = time.monotonic()
    run = Run(program, tools, settings=settings, cache=cache if cache is not None else CallCache(), on_event=on_event,
              mode=mode, max_workers=max_workers)
    supervise(run, run.run_all)
    with run._lock:
        return ExecutionResult(
            program=program, variables=dict(run.env), trace=list(run.events), error=run.error,
            tool_calls=run.tool_calls, cache_hits=run.cache_hits, elapsed_s=time.monotonic() - started,
            settings=dict(run.settings),
        )


__all__ = ["CallCache", "ExecutionResult", "Run", "Tool", "execute", "supervise"]
