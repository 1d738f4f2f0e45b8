"""OpenTelemetry spans of a question, with the OpenInference semantic conventions (Arize Phoenix, Langfuse...)
and the OpenTelemetry GenAI attributes (Jaeger, Grafana Tempo...).

Spans are built from a trace's events only (header + events, as `read_jsonl` returns them or as a finished
`PipelineResult` holds them), so a live run and a recorded one go through the same code and look the same:
span times are the events' times. One trace per question:

    question                        CHAIN      input: the question, output: the final answer
    ├── decompose / plan / repair   LLM        one per chat request (the `llm` events)
    ├── retrieve                    RETRIEVER  one per retrieve call, with retrieval.documents.N.*
    ├── answer                      LLM        one per answer call, with its chat request's messages and tokens
    └── <tool>                      TOOL       other registered tools (their own LLM requests as children)

Traces written before `llm` events existed still export: decompose / plan / repair spans come from the
decompose, plan and repair events then (without model and token counts). `content=False` leaves out every
text (questions, messages, passages, programs, answers): ids, scores, token counts, models, times stay.

`build_spans` needs nothing but this package; `OtelSink` needs the `[otel]` extra (opentelemetry-sdk and
opentelemetry-exporter-otlp-proto-http) and sends with the SDK's OTLP/HTTP exporter, or emits into an
application's own TracerProvider.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:
    from ..interpreter.trace import TraceEvent

INSTALL_HINT = "pip install 'pyrag-dsl[otel]'"
TRACES_PATH = "/v1/traces"
DEFAULT_SERVICE_NAME = "pyrag-dsl"
MAX_SPAN_ATTRIBUTES = 4096  # our own provider: a retrieve of 100 documents has 400+ attributes (the SDK default: 128)

# OpenInference semantic conventions (openinference-semantic-conventions; spelled out to need no extra package)
SPAN_KIND = "openinference.span.kind"
INPUT_VALUE, INPUT_MIME = "input.value", "input.mime_type"
OUTPUT_VALUE, OUTPUT_MIME = "output.value", "output.mime_type"
METADATA = "metadata"
LLM_MODEL = "llm.model_name"
LLM_INPUT, LLM_OUTPUT = "llm.input_messages", "llm.output_messages"
TOKENS_PROMPT, TOKENS_COMPLETION, TOKENS_TOTAL = (
    "llm.token_count.prompt",
    "llm.token_count.completion",
    "llm.token_count.total",
)
DOCUMENTS = "retrieval.documents"
TOOL_NAME = "tool.name"
TEXT, JSON_MIME = "text/plain", "application/json"
# OpenTelemetry GenAI semantic conventions
GEN_AI_OPERATION = "gen_ai.operation.name"
GEN_AI_MODEL = "gen_ai.request.model"
GEN_AI_INPUT_TOKENS, GEN_AI_OUTPUT_TOKENS = "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"
GEN_AI_TOOL = "gen_ai.tool.name"
GEN_AI_AGENT = "gen_ai.agent.name"

_EPS = 0.002  # seconds: an LLM request inside a tool call (both stamped with time.time())


class OtelUnavailable(ImportError):
    """The [otel] extra is not installed; the message says how to install it."""


def require_otel() -> None:
    """Raise OtelUnavailable (with the pip command) unless the SDK and the OTLP/HTTP exporter import."""
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as e:
        raise OtelUnavailable(
            f"OpenTelemetry export needs the [otel] extra ({e.name or e} is missing): {INSTALL_HINT}"
        ) from None


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of an endpoint given as a base URL (http://host:4318, Phoenix's
    http://host:6006) or as the traces URL itself (.../v1/traces)."""
    url = endpoint.strip().rstrip("/")
    return url if url.endswith(TRACES_PATH) else url + TRACES_PATH


def endpoint_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The traces URL from the standard variables: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as it is), else
    OTEL_EXPORTER_OTLP_ENDPOINT (a base URL: /v1/traces is added). None when neither is set."""
    env = os.environ if environ is None else environ
    url = (env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or "").strip()
    if url:
        return url
    base = (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
    return traces_url(base) if base else None


# -- spans as data ------------------------------------------------------------------------------------
@dataclass
class SpanSpec:
    """One span to emit: times in seconds since the epoch (the trace's), attributes without None values."""

    name: str
    kind: str  # OpenInference span kind: CHAIN | LLM | RETRIEVER | TOOL
    start: float
    end: float
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # the span's status is ERROR with this description
    events: list[tuple[str, float, dict[str, Any]]] = field(default_factory=list)  # (name, time, attributes)
    children: list["SpanSpec"] = field(default_factory=list)

    def walk(self) -> Iterable["SpanSpec"]:
        yield self
        for child in self.children:
            yield from child.walk()


def _get(event: Any, name: str, default: Any = None) -> Any:
    """A field of a typed event or of an event read as a plain dict."""
    if isinstance(event, dict):
        return event.get(name, default)
    return getattr(event, name, default)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _json(value)


def _mime(value: Any) -> str:
    return TEXT if isinstance(value, str) else JSON_MIME


class _Builder:
    def __init__(self, header: Mapping[str, Any], events: list[Any], content: bool) -> None:
        self.header = dict(header or {})
        self.events = list(events)
        self.content = content

    def put(self, attrs: dict[str, Any], key: str, value: Any, *, is_content: bool = False) -> None:
        if value is None or (is_content and not self.content):
            return
        attrs[key] = value

    def io(self, attrs: dict[str, Any], key: str, value: Any) -> None:
        """input / output value with its MIME type (content)."""
        if value is None or not self.content:
            return
        attrs[f"{key}.value"] = _text(value)
        attrs[f"{key}.mime_type"] = _mime(value)

    def messages(self, attrs: dict[str, Any], prefix: str, messages: list[dict[str, Any]]) -> None:
        for i, m in enumerate(messages):
            self.put(attrs, f"{prefix}.{i}.message.role", str(m.get("role") or ""))
            content = m.get("content")
            if content is not None:
                self.put(attrs, f"{prefix}.{i}.message.content", _text(content), is_content=True)

    # -- spans ------------------------------------------------------------------------------------------
    def llm_attrs(self, attrs: dict[str, Any], e: Any) -> None:
        """The attributes of one chat request (an `llm` event)."""
        model = _get(e, "model")
        self.put(attrs, LLM_MODEL, model)
        self.put(attrs, GEN_AI_MODEL, model)
        self.put(attrs, GEN_AI_OPERATION, "chat")
        messages = _get(e, "messages") or []
        self.messages(attrs, LLM_INPUT, messages)
        reply = _get(e, "reply")
        if reply is not None:
            self.messages(attrs, LLM_OUTPUT, [{"role": "assistant", "content": reply}])
        prompt, completion = _get(e, "prompt_tokens"), _get(e, "completion_tokens")
        self.put(attrs, TOKENS_PROMPT, prompt)
        self.put(attrs, TOKENS_COMPLETION, completion)
        self.put(attrs, GEN_AI_INPUT_TOKENS, prompt)
        self.put(attrs, GEN_AI_OUTPUT_TOKENS, completion)
        if prompt is not None and completion is not None:
            attrs[TOKENS_TOTAL] = prompt + completion
        if _get(e, "content_dropped"):
            attrs["pyrag.content_dropped"] = True

    def llm_span(self, e: Any) -> SpanSpec:
        agent = str(_get(e, "agent") or "llm")
        attrs: dict[str, Any] = {SPAN_KIND: "LLM", "pyrag.agent": agent, "pyrag.step": _get(e, "step")}
        messages = _get(e, "messages") or []
        users = [m for m in messages if m.get("role") == "user" and m.get("content") is not None]
        if users:
            self.io(attrs, "input", users[-1]["content"])
        self.io(attrs, "output", _get(e, "reply"))
        self.llm_attrs(attrs, e)
        error = _get(e, "error")
        return SpanSpec(
            agent,
            "LLM",
            _get(e, "start"),
            _get(e, "end"),
            _clean(attrs),
            error=self.error_text(error) if error else None,
        )

    def error_text(self, message: str | None, kind: str | None = None) -> str:
        if not self.content:
            return kind or "error"
        return f"{kind}: {message}" if kind and message else str(message or kind or "error")

    def call_span(self, e: Any, llms: list[Any]) -> SpanSpec:
        """A tool call: RETRIEVER for retrieve, LLM for answer (merged with its chat request), TOOL otherwise."""
        tool = str(_get(e, "tool") or _get(e, "kind"))
        inputs = dict(_get(e, "inputs") or {})
        output = _get(e, "output")
        attrs: dict[str, Any] = {
            "pyrag.step": _get(e, "step"),
            "pyrag.statement": _get(e, "statement"),
            "pyrag.line": _get(e, "line"),
            "pyrag.target": _get(e, "target"),
            "pyrag.cached": bool(_get(e, "cached", False)),
        }
        self.put(attrs, "pyrag.source", _get(e, "source"), is_content=True)
        children: list[SpanSpec] = []
        if tool == "retrieve":
            kind = "RETRIEVER"
            attrs.update({SPAN_KIND: kind, GEN_AI_OPERATION: "execute_tool", GEN_AI_TOOL: tool})
            self.io(attrs, "input", inputs.get("query"))
            self.put(attrs, "pyrag.topk", inputs.get("topk"))
            for i, d in enumerate(output if isinstance(output, list) else []):
                d = d if isinstance(d, dict) else {}
                prefix = f"{DOCUMENTS}.{i}.document"
                self.put(attrs, f"{prefix}.id", None if d.get("id") is None else str(d.get("id")))
                score = d.get("score")
                self.put(attrs, f"{prefix}.score", float(score) if isinstance(score, (int, float)) else None)
                self.put(attrs, f"{prefix}.content", d.get("text"), is_content=True)
                if d.get("title") is not None:
                    self.put(attrs, f"{prefix}.metadata", _json({"title": d.get("title")}), is_content=True)
        elif tool == "answer":
            kind = "LLM"
            attrs.update({SPAN_KIND: kind, "pyrag.agent": "answer"})
            self.io(attrs, "input", inputs.get("query"))
            docs = inputs.get("docs")
            if isinstance(docs, list):
                attrs["pyrag.documents"] = len(docs)
            self.io(attrs, "output", output)
            if len(llms) == 1:  # its one chat request: the span is that request (model, messages, tokens)
                self.llm_attrs(attrs, llms[0])
                if _get(llms[0], "error"):
                    return SpanSpec(
                        tool,
                        kind,
                        _get(e, "start"),
                        _get(e, "end"),
                        _clean(attrs),
                        error=self.error_text(_get(llms[0], "error")),
                    )
            else:
                children = [self.llm_span(x) for x in llms]
        else:
            kind = "TOOL"
            attrs.update({SPAN_KIND: kind, TOOL_NAME: tool, GEN_AI_OPERATION: "execute_tool", GEN_AI_TOOL: tool})
            self.io(attrs, "input", inputs)
            self.io(attrs, "output", output)
            children = [self.llm_span(x) for x in llms]
        return SpanSpec(tool, kind, _get(e, "start"), _get(e, "end"), _clean(attrs), children=children)

    def fallback_spans(self) -> list[SpanSpec]:
        """Decompose / plan / repair spans of a trace without `llm` events (written before they existed)."""
        spans = []
        for e in self.events:
            kind = _get(e, "kind")
            if kind == "decompose":
                attrs = {
                    SPAN_KIND: "LLM",
                    "pyrag.agent": "decompose",
                    GEN_AI_OPERATION: "chat",
                    "pyrag.attempts": _get(e, "attempts"),
                    "pyrag.fallback": bool(_get(e, "fallback", False)),
                }
                self.io(attrs, "input", _get(e, "question"))
                self.io(attrs, "output", list(_get(e, "sub_queries") or []))
                self.messages(attrs, LLM_OUTPUT, [{"role": "assistant", "content": r} for r in _get(e, "raw") or []])
            elif kind == "plan" and not _get(e, "round"):
                attrs = {SPAN_KIND: "LLM", "pyrag.agent": "plan", GEN_AI_OPERATION: "chat"}
                self.io(attrs, "output", _get(e, "program"))
            elif kind == "repair":
                attrs = {
                    SPAN_KIND: "LLM",
                    "pyrag.agent": "repair",
                    GEN_AI_OPERATION: "chat",
                    "pyrag.round": _get(e, "round"),
                }
                self.io(attrs, "input", _get(e, "feedback"))
                self.io(attrs, "output", _get(e, "program"))
            else:
                continue
            attrs["pyrag.step"] = _get(e, "step")
            spans.append(SpanSpec(str(attrs["pyrag.agent"]), "LLM", _get(e, "start"), _get(e, "end"), _clean(attrs)))
        return spans

    def match_llm(self, calls: list[Any], llms: list[Any]) -> dict[int, list[Any]]:
        """The chat requests made inside each tool call (by the tool's label, within its times; for answer the
        one whose prompt holds the call's query first). Returns {index in calls: [llm events]}."""
        free = sorted(llms, key=lambda x: _get(x, "start"))
        used: set[int] = set()
        matched: dict[int, list[Any]] = {}
        for n, c in enumerate(calls):
            if _get(c, "cached"):
                continue
            tool, start, end = _get(c, "tool"), _get(c, "start"), _get(c, "end")
            inside = [
                i
                for i, x in enumerate(free)
                if i not in used
                and _get(x, "agent") == tool
                and _get(x, "start") >= start - _EPS
                and _get(x, "end") <= end + _EPS
            ]
            if not inside:
                continue
            if tool == "answer":
                query = str((_get(c, "inputs") or {}).get("query") or "")
                holds = [
                    i
                    for i in inside
                    if query and any(query in str(m.get("content") or "") for m in _get(free[i], "messages") or [])
                ]
                inside = (holds or inside)[:1]
            used.update(inside)
            matched[n] = [free[i] for i in inside]
        return matched

    def root(self) -> SpanSpec:
        events = self.events
        by_kind: dict[str, list[Any]] = {}
        for e in events:
            by_kind.setdefault(str(_get(e, "kind")), []).append(e)
        decompose = (by_kind.get("decompose") or [None])[0]
        final = (by_kind.get("final") or [None])[-1]
        question = self.header.get("question") or (_get(decompose, "question") if decompose is not None else None)
        times = [t for e in events for t in (_get(e, "start"), _get(e, "end")) if isinstance(t, (int, float))]
        start, end = (min(times), max(times)) if times else (0.0, 0.0)
        name = "question" if (question is not None or decompose is not None) else "program"
        attrs = self.root_attributes(by_kind, question, decompose, final)
        error = _get(final, "error") if final is not None else None
        root = SpanSpec(name, "CHAIN", start, end, attrs)
        if isinstance(error, dict):
            attrs["pyrag.error.type"] = str(error.get("type"))
            root.error = self.error_text(error.get("message"), str(error.get("type")))
        root.children = self.root_children(by_kind.get("llm", []))
        for e in events:  # the steps that are not spans: events on the question's span
            step = self.step_event(e)
            if step is not None:
                root.events.append(step)
        for span in root.walk():
            span.attributes = _clean(span.attributes)
            span.events = [(n, t, _clean(a)) for n, t, a in span.events]
        return root

    def root_attributes(
        self, by_kind: dict[str, list[Any]], question: Any, decompose: Any, final: Any
    ) -> dict[str, Any]:
        """The question span's attributes: its input and output, the program, sub-queries, repair and retry
        counts, and the settings that shape a run."""
        header = self.header
        given = header.get("settings")
        settings: dict[str, Any] = given if isinstance(given, dict) else {}
        attrs: dict[str, Any] = {SPAN_KIND: "CHAIN", GEN_AI_OPERATION: "invoke_agent", GEN_AI_AGENT: "pyrag-dsl"}
        self.io(attrs, "input", question if question is not None else header.get("program"))
        if final is not None:
            self.io(attrs, "output", _get(final, "final_answer"))
            self.put(attrs, "pyrag.program", _get(final, "program"), is_content=True)
        else:  # an exec run: the caller may give the answer in the header
            self.io(attrs, "output", header.get("final_answer"))
        if decompose is not None:
            self.put(
                attrs, "pyrag.sub_queries", [str(q) for q in _get(decompose, "sub_queries") or []], is_content=True
            )
        attrs["pyrag.repair_rounds"] = len(by_kind.get("repair", []))
        attrs["pyrag.adaptive_retries"] = len(by_kind.get("adaptive_retry", []))
        picked = {
            k: settings[k]
            for k in ("topk", "boosted_topk", "policy", "parallel", "plan_grammar", "max_repairs", "stream_plan")
            if k in settings
        }
        if picked:
            attrs[METADATA] = _json(picked)
        return attrs

    def root_children(self, llms: list[Any]) -> list[SpanSpec]:
        """The question span's children in time order: the LLM calls no tool call made (in a trace without LLM
        events, the spans rebuilt from the other events) and every tool call with the LLM calls inside it."""
        calls = [e for e in self.events if _get(e, "kind") in ("retrieve", "answer", "call")]
        matched = self.match_llm(calls, llms)
        used = {id(x) for xs in matched.values() for x in xs}
        children: list[tuple[float, int, SpanSpec]] = []
        for x in llms:
            if id(x) not in used:
                children.append((_get(x, "start"), _get(x, "step") or 0, self.llm_span(x)))
        if not llms:
            children += [(s.start, s.attributes.get("pyrag.step") or 0, s) for s in self.fallback_spans()]
        for n, c in enumerate(calls):
            children.append((_get(c, "start"), _get(c, "step") or 0, self.call_span(c, matched.get(n, []))))
        return [s for _, _, s in sorted(children, key=lambda t: (t[0], t[1]))]

    def step_event(self, e: Any) -> tuple[str, float, dict[str, Any]] | None:
        """A step that is not a span, as an event on the question's span (execute, adaptive retry, error)."""
        kind = _get(e, "kind")
        if kind == "execute":
            return (
                "execute",
                _get(e, "start"),
                {"pyrag.attempt": _get(e, "attempt"), "pyrag.topk": (_get(e, "settings") or {}).get("topk")},
            )
        if kind == "adaptive_retry":
            ev = {
                "pyrag.statement": _get(e, "statement"),
                "pyrag.target": _get(e, "target"),
                "pyrag.topk": _get(e, "topk"),
                "pyrag.rerun": [int(i) for i in _get(e, "rerun") or []],
            }
            self.put(ev, "pyrag.answer", _get(e, "answer"), is_content=True)
            return ("adaptive_retry", _get(e, "start"), ev)
        if kind == "error":
            err = _get(e, "error") or {}
            ev = {"exception.type": str(err.get("type"))}
            self.put(ev, "exception.message", err.get("message"), is_content=True)
            self.put(ev, "pyrag.line", err.get("line"))
            return ("exception", _get(e, "start"), ev)
        return None


def _clean(attrs: dict[str, Any]) -> dict[str, Any]:
    """Attributes OpenTelemetry accepts: no None, scalars or lists of strings/ints."""
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if v is None:
            continue
        if isinstance(v, (str, bool, int, float)):
            out[k] = v
        elif isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
            out[k] = list(v)
        elif isinstance(v, (list, tuple)) and all(type(x) is int for x in v):
            out[k] = list(v)
        else:
            out[k] = _json(v)
    return out


def build_spans(header: Mapping[str, Any] | None, events: Iterable[Any], *, content: bool = True) -> SpanSpec:
    """The span tree of one question's trace (typed events or plain dicts): the CHAIN root and its children."""
    return _Builder(header or {}, list(events), content).root()


def read_trace(path: str | Path) -> tuple[dict[str, Any], list[TraceEvent]]:
    """A trace file's header and typed events (pipeline kinds included)."""
    from ..interpreter.trace import read_jsonl
    from ..pipeline import events as _pipeline_events  # noqa: F401 - registers the pipeline's event kinds

    return read_jsonl(path)


def trace_files(path: str | Path) -> list[Path]:
    """TRACE.jsonl itself; a question's directory: its trace.jsonl; a run or eval directory: every
    trace.jsonl under it (sorted). Raises FileNotFoundError when there is none."""
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        if (p / "trace.jsonl").is_file():
            return [p / "trace.jsonl"]
        found = sorted(p.rglob("trace.jsonl"), key=lambda f: [int(s) if s.isdigit() else s for s in f.parts])
        if found:
            return found
        raise FileNotFoundError(f"no trace.jsonl under {path}")
    raise FileNotFoundError(f"no such file or directory: {path}")


# -- OpenTelemetry ------------------------------------------------------------------------------------
def _ns(seconds: float) -> int:
    return int(round(float(seconds) * 1e9))


def _collector() -> Any:
    """A span processor that keeps the ended spans until OtelSink sends them (one request per question)."""
    import threading

    from opentelemetry.sdk.trace import SpanProcessor

    class Collect(SpanProcessor):
        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.spans: list[Any] = []

        def on_end(self, span: Any) -> None:
            with self.lock:
                self.spans.append(span)

        def take(self, trace_id: int) -> list[Any]:
            with self.lock:
                mine = [s for s in self.spans if s.context.trace_id == trace_id]
                self.spans = [s for s in self.spans if s.context.trace_id != trace_id]
            return mine

    return Collect()


class OtelSink:
    """Emits each question's spans (one trace per question) when the question is done.

    `endpoint`: an OTLP/HTTP endpoint (base URL or .../v1/traces; None: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
    OTEL_EXPORTER_OTLP_ENDPOINT): the sink has its own TracerProvider and sends each question's spans in one
    request as soon as it is exported. `tracer_provider`: emit into an application's provider instead (its
    processors and exporters send them). `content=False` leaves out message, document and answer texts.

    Feed it a finished question with `export_result(result)`, a recorded trace with `export(header, events)` or
    `export_file(path)`, or event by event as an on_event sink (`sink(event)`: the spans go out at the `final`
    event; one question at a time). `exported`/`failed` count the questions."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        content: bool = True,
        tracer_provider: Any = None,
        service_name: str | None = None,
        timeout_s: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        require_otel()
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import SpanLimits, TracerProvider

        from .. import __version__

        self.content = content
        self.exported = 0
        self.failed = 0
        self.spans_sent = 0
        self.last_error: str | None = None
        self._pending: list[Any] = []
        self._exporter = None
        self._collect: Any = None
        self.endpoint: str | None = None
        if tracer_provider is None:
            url = traces_url(endpoint) if endpoint else endpoint_from_env()
            if not url:
                raise ValueError("no OTLP endpoint: pass one, or set OTEL_EXPORTER_OTLP_ENDPOINT")
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            attrs: dict[str, Any] = {"service.version": __version__}
            if service_name or not os.environ.get("OTEL_SERVICE_NAME"):
                attrs["service.name"] = service_name or DEFAULT_SERVICE_NAME
            self.endpoint = url
            self._exporter = OTLPSpanExporter(endpoint=url, timeout=timeout_s, headers=dict(headers or {}) or None)
            self._collect = _collector()
            tracer_provider = TracerProvider(
                resource=Resource.create(attrs),
                span_limits=SpanLimits(
                    max_span_attributes=MAX_SPAN_ATTRIBUTES, max_event_attributes=MAX_SPAN_ATTRIBUTES
                ),
            )
            tracer_provider.add_span_processor(self._collect)
            self._own_provider = tracer_provider
        else:
            self._own_provider = None
        self.tracer = tracer_provider.get_tracer("pyrag_dsl.observe.otel", __version__)

    # -- emitting ---------------------------------------------------------------------------------------
    def _emit(self, spec: SpanSpec, parent: Any) -> Any:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        kind = SpanKind.CLIENT if spec.kind in ("LLM", "RETRIEVER") else SpanKind.INTERNAL
        span = self.tracer.start_span(
            spec.name, context=parent, kind=kind, attributes=spec.attributes, start_time=_ns(spec.start)
        )
        for name, at, attrs in spec.events:
            span.add_event(name, attributes=attrs, timestamp=_ns(at))
        span.set_status(Status(StatusCode.ERROR, spec.error) if spec.error is not None else Status(StatusCode.OK))
        context = trace.set_span_in_context(span)
        for child in spec.children:
            self._emit(child, context)
        span.end(end_time=max(_ns(spec.end), _ns(spec.start)))
        return span

    def export(self, header: Mapping[str, Any] | None, events: Iterable[Any]) -> bool:
        """Emit one question's spans (a new trace); with an endpoint, send them now. True when sent (or handed
        to the application's provider)."""
        from opentelemetry.context import Context

        spec = build_spans(header, events, content=self.content)
        root = self._emit(spec, Context())  # an empty context: the question's span starts a new trace
        if self._collect is None:
            self.exported += 1
            return True
        from opentelemetry.sdk.trace.export import SpanExportResult

        spans = self._collect.take(root.get_span_context().trace_id)
        exporter = self._exporter
        if exporter is None:  # close() has run: nothing goes out any more
            ok, self.last_error = False, "the sink is closed"
        else:
            try:
                ok = exporter.export(spans) == SpanExportResult.SUCCESS
            except Exception as e:  # noqa: BLE001 - an exporter must never break a run
                ok, self.last_error = False, f"{type(e).__name__}: {e}"
        if ok:
            self.exported += 1
            self.spans_sent += len(spans)
        else:
            self.failed += 1
            self.last_error = self.last_error or f"the OTLP endpoint {self.endpoint} did not take the spans"
        return ok

    def export_result(self, result: Any) -> bool:
        """A finished question (PipelineResult): its trace with its question and settings."""
        return self.export({"question": result.original_query, "settings": result.settings}, result.trace)

    def export_file(self, path: str | Path) -> bool:
        """A recorded trace (trace.jsonl)."""
        header, events = read_trace(path)
        return self.export(header, events)

    def on_event(self, event: Any) -> None:
        """An on_event sink: collects a question's events; at its `final` event, exports them."""
        self._pending.append(event)
        if _get(event, "kind") == "final":
            events, self._pending = self._pending, []
            self.export({}, events)

    __call__ = on_event

    def close(self) -> None:
        """Send what is pending (an on_event question without its final event is dropped) and stop."""
        self._pending = []
        if self._exporter is not None:
            self._exporter.shutdown()  # type: ignore[no-untyped-call]  # OTLPSpanExporter.shutdown has no annotations
            self._exporter = None
        if self._own_provider is not None:
            self._own_provider.shutdown()
            self._own_provider = None

    def __enter__(self) -> "OtelSink":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = [
    "INSTALL_HINT",
    "OtelSink",
    "OtelUnavailable",
    "SpanSpec",
    "build_spans",
    "endpoint_from_env",
    "read_trace",
    "require_otel",
    "trace_files",
    "traces_url",
]
