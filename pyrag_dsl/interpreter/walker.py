"""The walk: evaluate one statement's expression, node by node, against the values of its bound inputs.

No exec, eval or compile of program text. Names are looked up through the statement's bindings
(resolved at validation), never by their string in an environment. Tool calls go through one
guarded boundary: the call and the conversion of its result run inside the time limit, and any
failure becomes a typed error.
"""

from __future__ import annotations

import ast
import itertools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..grammar.errors import ArgumentOutOfRange, DslError, LimitExceeded, ToolError
from ..grammar.program import Statement
from ..grammar.tools import RunDefault, ToolSpec
from .record import EVENT_OVERHEAD, StepLog
from .supervisor import ABANDONED
from .trace import CALL_EVENT_KINDS, AssignEvent, event_defaults, value_to_json
from .values import BadToolResult, TooLarge, describe_exception, to_value, value_size

if TYPE_CHECKING:
    from .run import Run

Tool = Callable[..., Any]
_TOKENS = itertools.count(1)


class Stop(Exception):
    """Ends a statement; `error` is its typed error (None when the run was abandoned)."""

    def __init__(self, error: DslError | None) -> None:
        super().__init__(error)
        self.error = error


class CallCache:
    """Tool results keyed by (tool, arguments): a repeated call is answered from here. Thread-safe without a
    lock: entries are only added, each with one dict store, and read with one dict lookup (both atomic)."""

    def __init__(self) -> None:
        self._store: dict[tuple, tuple[Any, int]] = {}

    def get(self, key: tuple) -> tuple[bool, Any]:
        entry = self._store.get(key)
        return (False, None) if entry is None else (True, entry[0])

    def entry(self, key: tuple) -> tuple[Any, int] | None:
        """(value, JSON size) of a cached result, or None."""
        return self._store.get(key)

    def put(self, key: tuple, value: Any, size: int | None = None) -> None:
        entry = (value, value_size(value) if size is None else size)
        self._store[key] = entry

    def __len__(self) -> int:
        return len(self._store)


class _ToolRaised(Exception):
    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


def convert(spec: ToolSpec, raw: Any, run: "Run") -> tuple[Any, int]:
    """A tool result as a value of the tool's declared type, with its JSON size."""
    try:
        value = to_value(spec.returns, raw, run.limits)
    except (BadToolResult, TooLarge):
        raise
    except BaseException as e:  # a hostile result (a Mapping whose get raises, a lying sequence...)
        raise BadToolResult(f"reading the result raised {describe_exception(e)}") from None
    return value, value_size(value)


def guarded(run: "Run", stmt: Statement, fn: Callable[..., Any], *args: Any) -> tuple[Any, BaseException | None]:
    """Run `fn(*args)` as an in-flight tool call that the supervisor can time out; never raises its exceptions."""
    token = next(_TOKENS)
    run.inflight[token] = (time.monotonic(), stmt)
    try:
        return fn(*args), None
    except KeyboardInterrupt:
        if threading.current_thread() is threading.main_thread():
            raise  # inline run: Ctrl-C belongs to the user
        return None, _ToolRaised("KeyboardInterrupt", "KeyboardInterrupt")  # not the user's: a worker thread
    except BaseException as e:  # noqa: BLE001 - any failure becomes a typed error below
        return None, e
    finally:
        run.inflight.pop(token, None)
        ABANDONED.returned(token)
        if run.abandoned:
            raise Stop(None)


class Frame:
    """Evaluates one statement; passed to extension node kinds as their evaluator."""

    __slots__ = ("run", "stmt", "log")

    def __init__(self, run: "Run", stmt: Statement, log: StepLog) -> None:
        self.run = run
        self.stmt = stmt
        self.log = log

    # -- the API extension node kinds use ----------------------------------------------------------
    def eval(self, node: ast.AST) -> Any:
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            return handler(self, node)
        return self.run.language.nodes[type(node)].evaluate(node, self)

    def check_length(self, n: int, node: ast.AST) -> None:
        limit = self.run.limits.max_string_length
        if n > limit:
            self.fail(LimitExceeded, f"text of {n} characters is over the limit {limit}", node,
                      limit="max_string_length", value=n)

    def fail(self, cls: type[DslError], message: str, node: ast.AST | None = None, **kw: Any) -> None:
        """Stop this statement with a typed error at `node` (default: the statement)."""
        raise Stop(self.run.program.smap.error(cls, message, node if node is not None else self.stmt.node, **kw))

    # -- node handlers ------------------------------------------------------------------------------
    def _constant(self, node: ast.Constant) -> Any:
        return node.value

    def _name(self, node: ast.Name) -> Any:
        return self.run.values[self.stmt.binds[node.id]]

    def _fstring(self, node: ast.JoinedStr) -> str:
        parts: list[str] = []
        total = 0
        limit = self.run.limits.max_string_length
        for part in node.values:
            if isinstance(part, ast.Constant):
                s = part.value
            else:
                v = self.eval(part.value)
                s = v if type(v) is str else str(int(v))
            total += len(s)
            if total > limit:
                self.check_length(total, node)  # fails, before the text is built
            parts.append(s)
        return "".join(parts)

    def _call(self, node: ast.Call) -> Any:
        plan = self.plan(node)
        return invoke(self, plan, self.arguments(plan, node), node)

    # -- calls --------------------------------------------------------------------------------------
    def plan(self, node: ast.Call) -> "CallPlan":
        """The call node's CallPlan, computed on first use and kept with the program."""
        plans = self.run.program.plans
        plan = plans.get(node)
        if plan is None:
            plan = plans[node] = CallPlan(self.run, self.stmt, node)
        return plan

    def arguments(self, plan: "CallPlan", node: ast.Call) -> dict[str, Any]:
        """The call's argument values by parameter name: run defaults and overrides (adaptive retrieval's forced
        top-k) applied, ranges checked."""
        run = self.run
        forced = run.overrides.get(id(node)) if run.overrides else None
        kwargs: dict[str, Any] = {}
        for name, how, what, bounded, at in plan.params:
            if forced and name in forced:
                v = forced[name]
            elif how is _BOUND:
                v = run.values[what]
            elif how is _CONST:
                v = what
            elif how is _EVAL:
                v = self.eval(what)
            else:
                v = run.settings.get(what.key, what.fallback)
            if bounded is not None and type(v) is int:
                problem = bounded.out_of_range(v, run.limits)
                if problem:
                    self.fail(ArgumentOutOfRange, f"{plan.spec.name}(): {problem}", at, tool=plan.spec.name,
                              param=name)
            kwargs[name] = v
        return kwargs

    def record_call(self, plan: "CallPlan", kwargs: dict[str, Any], value: Any, size: int, hit: bool,
                    start: float) -> None:
        """Add the call's event to the statement's log, with its charge against the trace budget."""
        charge = plan.charge + size
        inputs: dict[str, Any] = {}
        for k, v in kwargs.items():  # a Docs carries its JSON form and size, computed once
            inputs[k] = value_to_json(v)
            charge += value_size(v)
        values = plan.base.copy()  # the fields in the order build_event gives them (see _event_values)
        values["start"] = start
        values["end"] = time.time()
        values["tool"] = plan.spec.name
        values["inputs"] = inputs
        values["output"] = value_to_json(value)
        values["cached"] = hit
        values["target"] = plan.target
        self.log.events.append((plan.event_cls, values, _CALL_FIELDS, charge))


class CallPlan:
    """What a call node's arguments and event need from the program alone, computed once per node: how to get
    each argument, the event class, the event's fixed fields (defaults and place, see _event_values) and its
    fixed charge."""

    __slots__ = ("spec", "params", "event_cls", "base", "charge", "target")

    def __init__(self, run: "Run", stmt: Statement, node: ast.Call) -> None:
        spec: ToolSpec = run.language.tools[node.func.id]
        given = run.program.arguments(node)
        params = []
        for p in spec.params:  # (name, how, what, param or None when unbounded, node an error points at)
            bounded = p if (p.min is not None or p.max is not None) else None
            if p.name in given:
                a = given[p.name]
                if type(a) is ast.Constant:
                    params.append((p.name, _CONST, a.value, bounded, a))
                elif type(a) is ast.Name:
                    params.append((p.name, _BOUND, stmt.binds[a.id], bounded, a))
                else:
                    params.append((p.name, _EVAL, a, bounded, a))
            elif isinstance(p.default, RunDefault):
                params.append((p.name, _SETTING, p.default, bounded, node))
            else:
                params.append((p.name, _CONST, p.default, bounded, node))
        self.spec = spec
        self.params = tuple(params)
        self.event_cls = CALL_EVENT_KINDS.get(spec.event_kind, CALL_EVENT_KINDS["call"])
        self.base = _event_base(self.event_cls, stmt)
        self.charge = EVENT_OVERHEAD + value_size(stmt.source)
        self.target = stmt.target if node is stmt.node.value else None


_CONST, _BOUND, _EVAL, _SETTING = range(4)


def failure(spec: ToolSpec, exc: BaseException, frame: Frame, node: ast.Call) -> DslError:
    """The typed error for a failed call or a bad result."""
    smap = frame.run.program.smap
    if isinstance(exc, TooLarge):
        return smap.error(LimitExceeded, f"{spec.name}(): {exc}", node, limit=exc.limit, tool=spec.name)
    if isinstance(exc, BadToolResult):
        return smap.error(ToolError, f"{spec.name}() returned a bad result: {exc}", node, tool=spec.name,
                          cause="BadToolResult")
    if isinstance(exc, _ToolRaised):
        return smap.error(ToolError, f"{spec.name}() failed: {exc}", node, tool=spec.name, cause=exc.cause)
    return smap.error(ToolError, f"{spec.name}() failed: {describe_exception(exc)}", node, tool=spec.name,
                      cause=describe_exception(exc).split(":")[0])


def call_once(run: "Run", spec: ToolSpec, impl: Tool, kwargs: dict[str, Any]) -> tuple[Any, int]:
    """Call the tool and convert its result: (value, JSON size)."""
    try:
        raw = impl(**kwargs)
    except KeyboardInterrupt:
        raise  # guarded() decides: the user's Ctrl-C in an inline run, a tool failure in a worker thread
    except BaseException as e:  # noqa: BLE001
        raise tool_raised(e) from None
    return convert(spec, raw, run)


def tool_raised(e: BaseException) -> Exception:
    """A tool's exception, described now (inside the call's time limit: a hostile __str__ may be slow)."""
    text = describe_exception(e)
    return _ToolRaised(text, text.split(":")[0])


def invoke(frame: Frame, plan: CallPlan, kwargs: dict[str, Any], node: ast.Call) -> Any:
    """Call a tool (or answer from the cache) and record the call event."""
    run = frame.run
    spec = plan.spec
    key = run.cache_key(spec, kwargs)
    start = time.time()
    cached = run.cache.entry(key) if key is not None else None
    if cached is None:
        run.spend(1, frame, node)
        result, exc = guarded(run, frame.stmt, call_once, run, spec, run.tools[spec.name], kwargs)
        if exc is not None:
            raise Stop(failure(spec, exc, frame, node))
        value, size = result
        if key is not None:
            run.cache.put(key, value, size)
    else:
        value, size = cached
        run.count_hit()
    frame.record_call(plan, kwargs, value, size, cached is not None, start)
    return value


def run_statement(run: "Run", stmt: Statement) -> StepLog:
    """Evaluate one statement; its value, events and error are in the returned log."""
    log = StepLog(stmt.index)
    frame = Frame(run, stmt, log)
    node = stmt.node.value
    is_call = type(node) is ast.Call  # a call statement's event is its call's (times taken there)
    start = 0.0 if is_call else time.time()
    try:
        value = frame._call(node) if is_call else frame.eval(node)
    except Stop as s:
        log.error = s.error
        return log
    except RecursionError:
        log.error = run.program.smap.error(LimitExceeded, "expression nested too deeply", stmt.node, limit="max_depth")
        return log
    if not is_call:
        values = _event_values(AssignEvent, stmt, start, {"output": value_to_json(value), "target": stmt.target})
        log.events.append((AssignEvent, values, _ASSIGN_FIELDS,
                           EVENT_OVERHEAD + value_size(stmt.source) + value_size(value)))
    log.ok, log.value = True, value
    run.values[stmt.index] = value
    return log


def _event_base(cls: type, stmt: Statement) -> dict[str, Any]:
    """The fields of an event of `cls` at `stmt` known before it runs: the class's defaults, then the
    statement's place."""
    span = stmt.span
    return {**event_defaults(cls), "statement": stmt.index, "line": span.line, "col": span.col,
            "end_line": span.end_line, "end_col": span.end_col, "source": stmt.source}


def _event_values(cls: type, stmt: Statement, start: float, rest: dict[str, Any]) -> dict[str, Any]:
    """All of an event's fields but `step`, in the order build_event gives them: `_event_base`, the times,
    then `rest`."""
    return {**_event_base(cls, stmt), "start": start, "end": time.time(), **rest}


# The fields a call / assign event is given explicitly (the others are the class's defaults), `step` included.
_WHERE_FIELDS = ("statement", "line", "col", "end_line", "end_col", "source")
_CALL_FIELDS = frozenset((*_WHERE_FIELDS, "start", "end", "tool", "inputs", "output", "cached", "target", "step"))
_ASSIGN_FIELDS = frozenset((*_WHERE_FIELDS, "start", "end", "output", "target", "step"))

_HANDLERS: dict[type, Callable[[Frame, Any], Any]] = {
    ast.Constant: Frame._constant,
    ast.Name: Frame._name,
    ast.JoinedStr: Frame._fstring,
    ast.Call: Frame._call,
}
