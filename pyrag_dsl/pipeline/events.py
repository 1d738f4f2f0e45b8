"""Pipeline-level trace events, next to the interpreter's call/assign/error events."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Literal, ParamSpec, TypeVar

from ..interpreter.trace import TraceEvent

if TYPE_CHECKING:
    from ..agents.llm import LLMClient, UsageListener

P = ParamSpec("P")
R = TypeVar("R")


class DecomposeEvent(TraceEvent):
    kind: Literal["decompose"] = "decompose"
    question: str
    sub_queries: list[str]
    fallback: bool
    attempts: int
    raw: list[str] = []


class PlanEvent(TraceEvent):
    """A program from the Plan LLM: round 0 is the first plan, rounds 1.. are repairs."""

    kind: Literal["plan"] = "plan"
    round: int
    program: str
    errors: list[dict[str, Any]] = []  # the errors this program has (empty when it is valid)


class PlanStreamEvent(TraceEvent):
    """Streamed plan execution: the statements dispatched while the plan was being written (seconds
    after streaming began), and when the plan was complete."""

    kind: Literal["plan_stream"] = "plan_stream"
    dispatched: list[dict[str, Any]]
    plan_done_s: float | None = None


class RepairEvent(TraceEvent):
    """Errors sent back to the Plan LLM, and the program it answered with."""

    kind: Literal["repair"] = "repair"
    round: int
    errors: list[dict[str, Any]]
    feedback: str
    program: str


class ExecuteEvent(TraceEvent):
    """Start of one execution of a program (an attempt); the call events that follow belong to it."""

    kind: Literal["execute"] = "execute"
    attempt: int
    program: str
    settings: dict[str, Any]


class AdaptiveRetryEvent(TraceEvent):
    kind: Literal["adaptive_retry"] = "adaptive_retry"
    statement: int
    target: str
    answer: str
    retrieve_statements: list[int]
    topk: int
    rerun: list[int]
    policy: str = "incremental"


class FinalEvent(TraceEvent):
    kind: Literal["final"] = "final"
    final_answer: str | None
    program: str | None
    error: dict[str, Any] | None = None


class LLMEvent(TraceEvent):
    """One chat request of an agent (decompose | plan | repair | answer; a tool that calls the LLM: its name):
    the messages sent, the reply (thinking stripped), the server's token counts (None when it reports none)
    and the model. Recorded when PipelineConfig.llm_events is on; they follow the question's other events
    (before `final`), in the order the requests started. `error`: the request failed (reply None).
    `content_dropped`: the trace's byte budget was spent, so the texts were left out (roles, tokens and
    times kept)."""

    kind: Literal["llm"] = "llm"
    agent: str
    model: str
    messages: list[dict[str, Any]]
    reply: str | None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    content_dropped: bool = False


def append_event(trace: list[TraceEvent], event_cls: type[TraceEvent], **kw: Any) -> None:
    """Append an event of `event_cls` to `trace`, numbered next, ending now (starting at `start`, default now)."""
    now = time.time()
    trace.append(event_cls(step=len(trace) + 1, start=kw.pop("start", now), end=now, **kw))


def _usage_tokens(usage: Any, name: str) -> int | None:
    value = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
    return value if type(value) is int and value >= 0 else None


class LLMCalls:
    """A question's LLM calls, recorded as LLMEvents (pipeline.runner uses one per question).

    Works through the observer hook of agents.llm (CHAT_OBSERVER, a context variable): `call(agent, fn, ...)`
    runs a pipeline agent with its calls labelled `agent`; `tools(tools)` wraps the tools other than
    `retrieve` so that the calls they make, in whatever thread runs them, are labelled with the tool's name
    (`answer`). `flush(trace, max_bytes)` appends the events recorded so far to the trace. Disabled (the
    default of PipelineConfig), it only calls through."""

    def __init__(self, enabled: bool = True) -> None:
        import threading

        self.enabled = enabled
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []

    # -- labelling ----------------------------------------------------------------------------------
    def call(self, agent: str, fn: Callable[P, R], *args: P.args, **kw: P.kwargs) -> R:
        """`fn(*args, **kw)` with the LLM calls it makes recorded as `agent`'s."""
        if not self.enabled:
            return fn(*args, **kw)
        from ..agents.llm import CHAT_OBSERVER

        token = CHAT_OBSERVER.set(_Observer(self, agent))
        try:
            return fn(*args, **kw)
        finally:
            CHAT_OBSERVER.reset(token)

    def tools(self, tools: dict[str, Any]) -> dict[str, Any]:
        """The tools, those other than `retrieve` recording their LLM calls under the tool's name."""
        if not self.enabled:
            return tools
        return {name: fn if name == "retrieve" else _LabelledTool(self, name, fn) for name, fn in tools.items()}

    # -- recording -----------------------------------------------------------------------------------
    def record(
        self,
        agent: str,
        model: str,
        messages: Any,
        reply: str | None,
        usage: Any,
        start: float,
        end: float,
        error: str | None = None,
    ) -> None:
        fields = {
            "agent": agent,
            "model": str(model),
            "start": start,
            "end": end,
            "reply": reply,
            "error": error,
            "messages": [
                {"role": str(m.get("role", "")), "content": m.get("content")} for m in messages if isinstance(m, dict)
            ],
            "prompt_tokens": _usage_tokens(usage, "prompt_tokens") if usage is not None else None,
            "completion_tokens": _usage_tokens(usage, "completion_tokens") if usage is not None else None,
        }
        with self._lock:
            self._events.append(fields)

    def flush(self, trace: list[TraceEvent], max_bytes: int | None = None) -> None:
        """Append the recorded calls to `trace` (numbered after its last step), in the order they started.
        With `max_bytes` (Limits.max_trace_bytes), a call whose texts would take the trace over it is kept
        without them (`content_dropped`): its agent, model, roles, token counts and times stay."""
        with self._lock:
            pending, self._events = self._events, []
        if not pending:
            return
        from ..interpreter.trace import event_json

        used = sum(len(event_json(e).encode("utf-8")) + 1 for e in trace) if max_bytes is not None else 0
        for fields in sorted(pending, key=lambda f: f["start"]):
            event = LLMEvent(step=len(trace) + 1, **fields)
            if max_bytes is not None:
                size = len(event_json(event).encode("utf-8")) + 1
                if used + size > max_bytes:
                    event = event.model_copy(
                        update={
                            "messages": [{"role": m["role"], "content": None} for m in event.messages],
                            "reply": None,
                            "content_dropped": True,
                        }
                    )
                    size = len(event_json(event).encode("utf-8")) + 1
                used += size
            trace.append(event)


class _Observer:
    """agents.llm's CHAT_OBSERVER for one label: runs the chat call, records it (and its failure)."""

    def __init__(self, calls: LLMCalls, agent: str) -> None:
        self.calls = calls
        self.agent = agent

    def __call__(
        self,
        client: LLMClient,
        messages: list[dict[str, str]],
        on_usage: UsageListener | None,
        chat: Callable[[UsageListener | None], str],
    ) -> str:

        from ..agents.llm import CHAT_OBSERVER

        usage: list[Any] = []

        def hear(u: Any) -> None:
            usage.append(u)
            if on_usage is not None:
                on_usage(u)

        start = time.time()
        token = CHAT_OBSERVER.set(None)  # the inner call is the real one: not observed twice
        try:
            reply = chat(hear)
        except Exception as e:
            self.calls.record(
                self.agent,
                client.config.model,
                messages,
                None,
                usage[-1] if usage else None,
                start,
                time.time(),
                f"{type(e).__name__}: {e}",
            )
            raise
        finally:
            CHAT_OBSERVER.reset(token)
        self.calls.record(
            self.agent, client.config.model, messages, reply, usage[-1] if usage else None, start, time.time()
        )
        return reply


class _LabelledTool:
    """A tool whose LLM calls are recorded under its name, in whatever thread calls it (forwards `batch`)."""

    def __init__(self, calls: LLMCalls, name: str, fn: Any) -> None:
        self.calls, self.name, self.fn = calls, name, fn
        if callable(getattr(fn, "batch", None)):
            self.batch = self._batch

    def __call__(self, *args: Any, **kw: Any) -> Any:
        return self.calls.call(self.name, self.fn, *args, **kw)

    def _batch(self, calls: list[dict[str, Any]]) -> list[Any]:
        batch: Callable[[list[dict[str, Any]]], list[Any]] = self.fn.batch  # set only when fn has one
        return self.calls.call(self.name, batch, calls)
