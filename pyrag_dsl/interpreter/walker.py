"""The walk: evaluate one statement's expression, node by node, against the values of its bound inputs.

No exec, eval or compile of program text. Names are looked up through the statement's bindings
(resolved at validation), never by their string in an environment; a call's arguments come from its
CallPlan, built with the resolved program. Tool calls go through one guarded boundary: the call and the
conversion of its result run inside the time limit, and any failure becomes a typed error. The walker
reads and writes the run's state (state.py) and calls nothing above it.
"""

from __future__ import annotations

import ast
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from ..grammar.errors import ArgumentOutOfRange, DslError, LimitExceeded, ToolError
from ..grammar.program import ARG_BOUND, ARG_CONST, ARG_EVAL, CallPlan, Statement
from ..grammar.tools import ToolSpec
from .record import EVENT_OVERHEAD, StepLog
from .state import ABANDONED, RunState, Stop, Tool
from .trace import CALL_EVENT_KINDS, AssignEvent, event_defaults, value_to_json
from .values import BadToolResult, TooLarge, describe_exception, to_value, value_size

_TOKENS = itertools.count(1)


class _ToolRaised(Exception):
    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause


def convert(spec: ToolSpec, raw: Any, run: RunState) -> tuple[Any, int]:
    """A tool result as a value of the tool's declared type, with its JSON size."""
    try:
        value = to_value(spec.returns, raw, run.limits)
    except (BadToolResult, TooLarge):
        raise
    except BaseException as e:  # a hostile result (a Mapping whose get raises, a lying sequence...)
        raise BadToolResult(f"reading the result raised {describe_exception(e)}") from None
    return value, value_size(value)


def guarded(run: RunState, stmt: Statement, fn: Callable[..., Any], *args: Any) -> tuple[Any, BaseException | None]:
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

    def __init__(self, run: RunState, stmt: Statement, log: StepLog) -> None:
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
            self.fail(
                LimitExceeded,
                f"text of {n} characters is over the limit {limit}",
                node,
                limit="max_string_length",
                value=n,
            )

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
                s = cast(str, part.value)  # validated: an f-string's constant parts are text
            else:
                v = self.eval(cast(ast.FormattedValue, part).value)  # validated: the other parts are fields
                s = v if type(v) is str else str(int(v))
            total += len(s)
            if total > limit:
                self.check_length(total, node)  # fails, before the text is built
            parts.append(s)
        return "".join(parts)

    def _call(self, node: ast.Call) -> Any:
        plan = self.run.program.plans[node]
        return invoke(self, plan, self.arguments(plan, node), node)

    # -- calls --------------------------------------------------------------------------------------
    def plan(self, node: ast.Call) -> CallPlan:
        """The call node's CallPlan, built with the program."""
        return self.run.program.plans[node]

    def arguments(self, plan: CallPlan, node: ast.Call) -> dict[str, Any]:
        """The call's argument values by parameter name: run defaults and forced arguments (adaptive retrieval's
        top-k) applied, ranges checked."""
        run = self.run
        forced = run.forced.get(id(node)) if run.forced else None
        kwargs: dict[str, Any] = {}
        for name, how, what, bounded, at in plan.params:
            if forced and name in forced:
                v = forced[name]
            elif how is ARG_BOUND:
                v = run.values[what]
            elif how is ARG_CONST:
                v = what
            elif how is ARG_EVAL:
                v = self.eval(what)
            else:
                v = run.settings.get(what.key, what.fallback)
            if bounded is not None and type(v) is int:
                problem = bounded.out_of_range(v, run.limits)
                if problem:
                    self.fail(ArgumentOutOfRange, f"{plan.spec.name}(): {problem}", at, tool=plan.spec.name, param=name)
            kwargs[name] = v
        return kwargs

    def budget_spent(self, node: ast.AST) -> None:
        """Stop this statement at `node`: the run's tool call budget is spent (`RunState.spend` said no)."""
        self.fail(
            LimitExceeded,
            f"tool call budget of {self.run.limits.max_tool_calls} is spent",
            node,
            limit="max_tool_calls",
        )

    def record_call(
        self, plan: CallPlan, kwargs: dict[str, Any], value: Any, size: int, hit: bool, start: float
    ) -> None:
        """Add the call's event to the statement's log, with its charge against the trace budget."""
        cls, defaults = _CALL_EVENTS.get(plan.kind) or _CALL_EVENTS["call"]
        charge = EVENT_OVERHEAD + plan.source_size + size
        inputs: dict[str, Any] = {}
        for k, v in kwargs.items():  # a Docs carries its JSON form and size, computed once
            inputs[k] = value_to_json(v)
            charge += value_size(v)
        values = {**defaults, **plan.where}  # the fields in the order build_event gives them (see _event_values)
        values["start"] = start
        values["end"] = time.time()
        values["tool"] = plan.spec.name
        values["inputs"] = inputs
        values["output"] = value_to_json(value)
        values["cached"] = hit
        values["target"] = plan.target
        self.log.events.append((cls, values, _CALL_FIELDS, charge))


def failure(spec: ToolSpec, exc: BaseException, frame: Frame, node: ast.Call) -> DslError:
    """The typed error for a failed call or a bad result."""
    smap = frame.run.program.smap
    if isinstance(exc, TooLarge):
        return smap.error(LimitExceeded, f"{spec.name}(): {exc}", node, limit=exc.limit, tool=spec.name)
    if isinstance(exc, BadToolResult):
        return smap.error(
            ToolError, f"{spec.name}() returned a bad result: {exc}", node, tool=spec.name, cause="BadToolResult"
        )
    if isinstance(exc, _ToolRaised):
        return smap.error(ToolError, f"{spec.name}() failed: {exc}", node, tool=spec.name, cause=exc.cause)
    return smap.error(
        ToolError,
        f"{spec.name}() failed: {describe_exception(exc)}",
        node,
        tool=spec.name,
        cause=describe_exception(exc).split(":")[0],
    )


def call_once(run: RunState, spec: ToolSpec, impl: Tool, kwargs: dict[str, Any]) -> tuple[Any, int]:
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
    cache = run.cache
    key = run.cache_key(spec, kwargs)  # None when there is no cache
    start = time.time()
    cached = cache.entry(key) if key is not None and cache is not None else None
    if cached is None:
        if not run.spend(1):
            frame.budget_spent(node)
        result, exc = guarded(run, frame.stmt, call_once, run, spec, run.tools[spec.name], kwargs)
        if exc is not None:
            raise Stop(failure(spec, exc, frame, node))
        value, size = result
        if key is not None and cache is not None:
            cache.put(key, value, size)
    else:
        value, size = cached
        run.count_hit()
    frame.record_call(plan, kwargs, value, size, cached is not None, start)
    return value


def run_statement(run: RunState, stmt: Statement) -> StepLog:
    """Evaluate one statement; its value, events and error are in the returned log."""
    log = StepLog(stmt.index)
    frame = Frame(run, stmt, log)
    node = stmt.node.value
    call = node if type(node) is ast.Call else None  # a call statement's event is its call's (times taken there)
    start = 0.0 if call is not None else time.time()
    try:
        value = frame._call(call) if call is not None else frame.eval(node)
    except Stop as s:
        log.error = s.error
        return log
    except RecursionError:
        log.error = run.program.smap.error(LimitExceeded, "expression nested too deeply", stmt.node, limit="max_depth")
        return log
    if call is None:
        values = _event_values(AssignEvent, stmt, start, {"output": value_to_json(value), "target": stmt.target})
        log.events.append(
            (AssignEvent, values, _ASSIGN_FIELDS, EVENT_OVERHEAD + value_size(stmt.source) + value_size(value))
        )
    log.ok, log.value = True, value
    run.values[stmt.index] = value
    return log


def _event_base(cls: type, stmt: Statement) -> dict[str, Any]:
    """The fields of an event of `cls` at `stmt` known before it runs: the class's defaults, then the
    statement's place."""
    return {**event_defaults(cls), **stmt.place()}


def _event_values(cls: type, stmt: Statement, start: float, rest: dict[str, Any]) -> dict[str, Any]:
    """All of an event's fields but `step`, in the order build_event gives them: `_event_base`, the times,
    then `rest`."""
    return {**_event_base(cls, stmt), "start": start, "end": time.time(), **rest}


# The fields a call / assign event is given explicitly (the others are the class's defaults), `step` included.
_WHERE_FIELDS = ("statement", "line", "col", "end_line", "end_col", "source")
_CALL_FIELDS = frozenset((*_WHERE_FIELDS, "start", "end", "tool", "inputs", "output", "cached", "target", "step"))
_ASSIGN_FIELDS = frozenset((*_WHERE_FIELDS, "start", "end", "output", "target", "step"))

# event kind -> (call event class, its defaults)
_CALL_EVENTS = {kind: (cls, event_defaults(cls)) for kind, cls in CALL_EVENT_KINDS.items()}

_HANDLERS: dict[type, Callable[[Frame, Any], Any]] = {
    ast.Constant: Frame._constant,
    ast.Name: Frame._name,
    ast.JoinedStr: Frame._fstring,
    ast.Call: Frame._call,
}
