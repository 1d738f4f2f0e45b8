"""The state of one run, and nothing that acts on it: values per statement, the call budget, tool calls in
flight, the call cache, forced arguments and the committed trace; `Stop`, which ends a statement.

The leaf of the interpreter: the walker, the schedulers, the supervisor and the front door (run.py) import
it; it imports none of them. Values are stored per defining statement; `variables` is the view by name at
the end of the run (each name's last committed definition).
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

from ..grammar.errors import DslError, LimitExceeded
from ..grammar.limits import Limits
from ..grammar.program import Program, Statement
from ..grammar.tools import ToolSpec
from .record import EventSink, Recorder, StepLog
from .trace import TraceEvent
from .values import value_size

Tool: TypeAlias = Callable[..., Any]
CacheKey: TypeAlias = tuple[Any, ...]  # (tool name, its arguments as (name, value) pairs): see RunState.cache_key
UNSET: Any = object()


class Stop(Exception):
    """Ends a statement; `error` is its typed error (None when the run was abandoned)."""

    def __init__(self, error: DslError | None) -> None:
        super().__init__(error)
        self.error = error


class CallCache:
    """Tool results keyed by (tool, arguments): a repeated call is answered from here. Thread-safe without a
    lock: entries are only added, each with one dict store, and read with one dict lookup (both atomic)."""

    def __init__(self) -> None:
        self._store: dict[CacheKey, tuple[Any, int]] = {}

    def entry(self, key: CacheKey) -> tuple[Any, int] | None:
        """(value, JSON size) of a cached result, or None."""
        return self._store.get(key)

    def put(self, key: CacheKey, value: Any, size: int | None = None) -> None:
        entry = (value, value_size(value) if size is None else size)
        self._store[key] = entry

    def __len__(self) -> int:
        return len(self._store)


class Abandoned:
    """Counts tool calls that were abandoned on a timeout and have not returned yet (process-wide)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: set[int] = set()

    def add(self, tokens: Iterable[int]) -> None:
        with self._lock:
            self._tokens.update(tokens)

    def returned(self, token: int) -> None:
        if token in self._tokens:  # a set lookup is atomic; the lock only guards the change
            with self._lock:
                self._tokens.discard(token)

    @property
    def count(self) -> int:
        return len(self._tokens)


ABANDONED = Abandoned()


class RunState:
    """What one execution of a resolved program holds. The walker reads and writes it; other packages use
    the named entry points (`seed_value`, `force_argument`, `value`, `variables`, `error`, `events`)."""

    def __init__(
        self,
        program: Program,
        tools: Mapping[str, Tool],
        *,
        settings: Mapping[str, Any] | None = None,
        cache: CallCache | None = None,
        on_event: EventSink | None = None,
    ) -> None:
        self.program = program
        self.limits: Limits = program.limits
        self.language = program.language
        self.tools = dict(tools)
        self.settings = dict(settings or {})
        self.cache = cache
        n = len(program.statements)
        self.values: list[Any] = [UNSET] * n
        self.committed: list[bool] = [False] * n
        self.recorder = Recorder(self.limits.max_trace_bytes, on_event)
        self.forced: dict[int, dict[str, Any]] = {}  # id(call node) -> arguments to force (adaptive top-k)
        self.tool_calls = 0
        self.cache_hits = 0
        self.abandoned = False
        self.inflight: dict[int, tuple[float, Statement | None]] = {}  # token -> (monotonic start, statement)
        self._lock = threading.Lock()
        missing = sorted(program.tools_used - self.tools.keys())
        if missing:
            raise ValueError(f"no implementation given for tool(s): {', '.join(missing)}")

    # -- named entry points for other packages ------------------------------------------------------
    def seed_value(self, index: int, value: Any) -> None:
        """Give statement `index` a value computed elsewhere (the streamed plan's prefetch), as if it had run;
        it is not committed to the trace."""
        self.values[index] = value

    def force_argument(self, call: ast.Call, name: str, value: Any) -> None:
        """Run the call node `call` with argument `name` set to `value` from now on (adaptive retrieval's
        boosted top-k), whatever the program or the settings give."""
        self.forced.setdefault(id(call), {})[name] = value

    def forced_argument(self, call: ast.Call, name: str) -> Any:
        """The value forced for argument `name` of `call`, or None."""
        return self.forced.get(id(call), {}).get(name)

    # -- values -----------------------------------------------------------------------------------
    def value(self, index: int) -> Any:
        """The value of statement `index` (None when it has not run)."""
        v = self.values[index]
        return None if v is UNSET else v

    @property
    def variables(self) -> dict[str, Any]:
        """Each name's value at the end of the run: its last committed definition."""
        defs = self.program.last_definitions(i for i, c in enumerate(self.committed) if c)
        return {name: self.values[i] for name, i in defs.items()}

    @property
    def error(self) -> DslError | None:
        return self.recorder.error

    @property
    def events(self) -> list[TraceEvent]:
        return self.recorder.events

    # -- the trace --------------------------------------------------------------------------------
    def commit(self, log: StepLog) -> bool:
        """Add a finished statement's events to the trace, in statement order; False when the run stops."""
        if self.abandoned:
            return False
        ok = self.recorder.commit(log, self._over_budget)
        if ok:
            self.committed[log.index] = True
        return ok

    def _over_budget(self, index: int) -> DslError:
        """The error of a trace over its byte budget, at statement `index`."""
        return self.program.smap.error(
            LimitExceeded,
            f"trace is over {self.limits.max_trace_bytes} bytes",
            self.program.statements[index].node,
            limit="max_trace_bytes",
        )

    def abandon(self, err: DslError, stmt: Statement | None = None) -> None:
        """Stop on a timeout or interrupt (the supervisor's call): record the error, count the calls still in
        flight as abandoned, ignore what comes later."""
        with self._lock:
            if stmt is not None and err.span is None:
                err = self.program.smap.error(type(err), err.message, stmt.node, **err.details)
            self.recorder.fail(err, stmt.index if stmt is not None else None)
            self.abandoned = True
            ABANDONED.add(list(self.inflight))

    def oldest_call(self) -> tuple[float, Statement | None] | None:
        """(monotonic start, statement) of the oldest tool call in flight, for the supervisor."""
        calls = list(self.inflight.values())
        return min(calls, key=lambda c: c[0]) if calls else None

    # -- calls ------------------------------------------------------------------------------------
    def cache_key(self, spec: ToolSpec, kwargs: dict[str, Any]) -> CacheKey | None:
        return (spec.name, tuple(kwargs.items())) if (self.cache is not None and spec.memoize) else None

    def spend(self, n: int) -> bool:
        """Take `n` tool calls from the budget; False (nothing taken) when that would overspend it."""
        with self._lock:
            if self.tool_calls + n <= self.limits.max_tool_calls:
                self.tool_calls += n
                return True
        return False

    def count_hit(self) -> None:
        with self._lock:
            self.cache_hits += 1
