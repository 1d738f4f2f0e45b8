"""OpenTelemetry export (issue 22): the `llm` trace events, the spans built from a trace, the CLI flags and
`trace export`, against an OTLP receiver on loopback that decodes what the SDK's exporter sends. The test
against a real Arize Phoenix server is in test_otel_phoenix.py."""

import gzip
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from corpus import JED_HOYER
from scripted_llm import ScriptedLLM, doc_titles

from pyrag_dsl import DEFAULT_LANGUAGE, Param, ToolSpec, ValueType
from pyrag_dsl.agents import LLMClient, LLMConfig
from pyrag_dsl.grammar import Limits
from pyrag_dsl.interpreter import dumps_jsonl, loads_jsonl
from pyrag_dsl.observe.otel import build_spans, traces_url
from pyrag_dsl.pipeline import Pipeline, PipelineConfig
from pyrag_dsl.pipeline.events import LLMCalls, LLMEvent
from pyrag_dsl.pipeline.replay import replay

QUESTION = "Who is older, Jed Hoyer or John William Henry II?"
BIRTHS = {"Jed Hoyer": "December 7, 1973", "John W. Henry": "September 13, 1949"}
KINDS = ["decompose", "plan", "execute", "retrieve", "answer", "retrieve", "answer", "answer"]
ROOT = Path(__file__).resolve().parent.parent


def handler(programs=None, fail_answers=False):
    programs = list(programs or [JED_HOYER])

    def reply(role, prompt, body):
        if role == "decompose":
            return '["When was Jed Hoyer born?", "When was John William Henry II born?"]'
        if role in ("plan", "repair"):
            return programs.pop(0) if len(programs) > 1 else programs[0]
        if fail_answers:
            raise RuntimeError("the answer server is down")
        if role == "answer_docs":
            titles = doc_titles(prompt)
            return f"<answer>{BIRTHS.get(titles[0], 'unknown')}</answer>" if titles else "<answer>unknown</answer>"
        if role == "answer_synth":
            return "<think>1949 is before 1973</think><answer>John William Henry II</answer>"
        return "a summary"

    return reply


class UsageStreaming(ScriptedLLM):
    """A scripted server that ends each streamed reply with a usage chunk, as vLLM does with include_usage."""

    async def _sse(self, text, number):
        async for line in super()._sse(text, number):
            if line.startswith("data: [DONE]"):
                chunk = {
                    "id": "x",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "scripted",
                    "choices": [],
                    "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
                }
                yield f"data: {json.dumps(chunk)}\n\n"
            yield line


@pytest.fixture
def otel_sdk():
    """The [otel] extra (opentelemetry-sdk, opentelemetry-exporter-otlp-proto-http): CI must have it."""
    from pyrag_dsl.observe.otel import OtelUnavailable, require_otel

    try:
        require_otel()
    except OtelUnavailable as e:
        if os.environ.get("CI"):
            pytest.fail(str(e))
        pytest.skip(str(e))


def client(url):
    return LLMClient(LLMConfig(base_url=url, model="scripted", timeout_s=10, retries=0, backoff_s=0.01))


def run_question(url, retriever, **cfg):
    extra = cfg.pop("extra_tools", None)
    return Pipeline(client(url), retriever, config=PipelineConfig(**cfg), extra_tools=extra).run(QUESTION)


# -- the llm trace event -----------------------------------------------------------------------------------
def test_llm_events_are_recorded_after_the_steps_and_replay_still_reproduces(bm25):
    with ScriptedLLM(handler()) as llm:
        result = run_question(llm.url, bm25, llm_events=True)
    assert result.ok and result.final_answer == "John William Henry II"
    kinds = [e.kind for e in result.trace]
    assert kinds == KINDS + ["llm"] * 5 + ["final"]  # the step numbers of the other events do not move
    assert [e.step for e in result.trace] == list(range(1, len(kinds) + 1))
    calls = [e for e in result.trace if isinstance(e, LLMEvent)]
    assert [c.agent for c in calls] == ["decompose", "plan", "answer", "answer", "answer"]
    assert all(c.model == "scripted" and c.prompt_tokens == 1 and c.completion_tokens == 1 for c in calls)
    assert all(c.error is None and not c.content_dropped for c in calls)
    assert QUESTION in calls[0].messages[0]["content"] and calls[0].messages[0]["role"] == "user"
    assert [m["role"] for m in calls[1].messages] == ["system", "user", "assistant", "user"]
    assert calls[4].reply == "<answer>John William Henry II</answer>"  # the reply as the agent got it
    starts = [c.start for c in calls]
    assert starts == sorted(starts) and all(c.start <= c.end for c in calls)
    first, last = result.trace[0], result.trace[-1]
    assert first.start <= calls[0].start and calls[-1].end <= last.end
    # each answer request happened inside its answer call
    answers = [e for e in result.trace if e.kind == "answer"]
    for call, llm_call in zip(answers, calls[2:]):
        assert call.start <= llm_call.start <= llm_call.end <= call.end
        assert call.inputs["query"] in llm_call.messages[-1]["content"]
    header, events = loads_jsonl(dumps_jsonl(result.trace, {"question": QUESTION, "settings": result.settings}))
    assert events == result.trace
    report = replay(header, events)
    assert report.ok, report.diffs


def test_llm_events_are_off_by_default_in_the_library_and_on_in_settings_pipelines(bm25):
    from pyrag_dsl.config.settings import Settings
    from pyrag_dsl.pipeline import pipeline_config

    with ScriptedLLM(handler()) as llm:
        result = run_question(llm.url, bm25)
    assert [e.kind for e in result.trace] == KINDS + ["final"]
    assert pipeline_config(Settings()).llm_events is True  # run, eval and Session


def test_repair_and_failed_requests_are_recorded(bm25):
    broken = JED_HOYER.replace("jed_birth}", "jed_brith}")
    with ScriptedLLM(handler([broken, JED_HOYER])) as llm:
        result = run_question(llm.url, bm25, llm_events=True)
    assert result.ok and result.repair_rounds == 1
    agents = [e.agent for e in result.trace if e.kind == "llm"]
    assert agents == ["decompose", "plan", "repair", "answer", "answer", "answer"]
    repair = next(e for e in result.trace if e.kind == "llm" and e.agent == "repair")
    assert "jed_brith" in repair.messages[-1]["content"]

    with ScriptedLLM(handler(fail_answers=True)) as llm:
        failed = run_question(llm.url, bm25, llm_events=True)
    assert failed.error is not None
    bad = [e for e in failed.trace if e.kind == "llm" and e.agent == "answer"]
    assert len(bad) == 1 and bad[0].reply is None and "500" in bad[0].error
    assert failed.trace[-1].kind == "final"


def test_streamed_plan_asks_vllm_for_usage_and_records_it(bm25):
    with UsageStreaming(handler(), owned_by="vllm") as llm:  # vLLM: the plan streams (and runs as it streams)
        result = run_question(llm.url, bm25, llm_events=True, parallel=True)
        plan_requests = [r for r in llm.requests if r["role"] == "plan"]
    assert result.ok and result.final_answer == "John William Henry II"
    assert plan_requests[0]["stream"] is True and plan_requests[0]["stream_options"] == {"include_usage": True}
    calls = [e for e in result.trace if e.kind == "llm"]
    plan = next(c for c in calls if c.agent == "plan")
    assert (plan.prompt_tokens, plan.completion_tokens) == (11, 7)
    assert sorted(c.agent for c in calls) == ["answer", "answer", "answer", "decompose", "plan"]
    header, events = loads_jsonl(dumps_jsonl(result.trace, {"settings": result.settings}))
    assert replay(header, events).ok

    with ScriptedLLM(handler()) as llm:  # another server: not asked (it may refuse the field); no usage
        result = run_question(llm.url, bm25, llm_events=True, stream_plan=True)
        assert "stream_options" not in [r for r in llm.requests if r["role"] == "plan"][0]
    plan = next(e for e in result.trace if e.kind == "llm" and e.agent == "plan")
    assert plan.prompt_tokens is None and plan.completion_tokens is None and plan.reply


def test_the_byte_budget_drops_texts_not_calls():
    calls = LLMCalls()
    big = "x" * 2500  # an event of about 5.2 kB: two fit in 12 kB
    for i in range(4):
        calls.record(
            "answer",
            "m",
            [{"role": "user", "content": big}],
            big,
            {"prompt_tokens": 3, "completion_tokens": 2},
            i,
            i + 0.5,
        )
    trace = []
    calls.flush(trace, max_bytes=12_000)
    assert [e.content_dropped for e in trace] == [False, False, True, True]
    assert all(e.prompt_tokens == 3 and e.messages[0]["role"] == "user" for e in trace)
    assert trace[2].reply is None and trace[2].messages[0]["content"] is None
    assert len(dumps_jsonl(trace).encode()) < 12_000
    calls.flush(trace)  # drained: nothing twice
    assert len(trace) == 4


# -- spans built from a trace -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recorded(bm25):
    """A recorded question with llm events, as (header, events)."""
    with ScriptedLLM(handler()) as llm:
        result = run_question(llm.url, bm25, llm_events=True)
    return loads_jsonl(dumps_jsonl(result.trace, {"question": QUESTION, "settings": result.settings}))


def test_spans_of_a_question(recorded):
    header, events = recorded
    root = build_spans(header, events)
    assert (root.name, root.kind) == ("question", "CHAIN")
    assert root.attributes["input.value"] == QUESTION and root.attributes["output.value"] == "John William Henry II"
    assert root.start == events[0].start and root.end == events[-1].end
    assert [(s.name, s.kind) for s in root.children] == [
        ("decompose", "LLM"),
        ("plan", "LLM"),
        ("retrieve", "RETRIEVER"),
        ("answer", "LLM"),
        ("retrieve", "RETRIEVER"),
        ("answer", "LLM"),
        ("answer", "LLM"),
    ]
    llms = [e for e in events if e.kind == "llm"]
    decompose = root.children[0]
    assert (decompose.start, decompose.end) == (llms[0].start, llms[0].end)
    assert decompose.attributes["llm.token_count.total"] == 2 and decompose.attributes["gen_ai.usage.input_tokens"] == 1
    assert decompose.attributes["llm.input_messages.0.message.role"] == "user"
    assert (
        decompose.attributes["gen_ai.operation.name"] == "chat" and decompose.attributes["llm.model_name"] == "scripted"
    )
    retrieve = root.children[2]
    call = next(e for e in events if e.kind == "retrieve")
    assert (retrieve.start, retrieve.end) == (call.start, call.end)
    assert retrieve.attributes["input.value"] == "When was Jed Hoyer born?" and retrieve.attributes["pyrag.topk"] == 5
    for i, doc in enumerate(call.output):
        assert retrieve.attributes[f"retrieval.documents.{i}.document.id"] == doc["id"]
        assert retrieve.attributes[f"retrieval.documents.{i}.document.content"] == doc["text"]
        assert retrieve.attributes[f"retrieval.documents.{i}.document.score"] == pytest.approx(doc["score"])
    answer = root.children[3]  # the answer call and its chat request are one LLM span
    assert answer.attributes["output.value"] == "December 7, 1973"
    assert answer.attributes["llm.token_count.prompt"] == 1 and answer.attributes["pyrag.statement"] == 1
    assert "Document 1 (Title: Jed Hoyer)" in answer.attributes["llm.input_messages.0.message.content"]
    assert not answer.children


def test_no_content_keeps_ids_scores_and_tokens_only(recorded):
    header, events = recorded
    root = build_spans(header, events, content=False)
    everything = [(k, v) for s in root.walk() for k, v in s.attributes.items()]
    everything += [(k, v) for s in root.walk() for _, _, attrs in s.events for k, v in attrs.items()]
    texts = {QUESTION, "John William Henry II", "December 7, 1973", "When was Jed Hoyer born?"}
    for key, value in everything:
        assert not key.endswith((".content", "input.value", "output.value", ".metadata")), key
        assert not any(t in str(value) for t in texts), (key, value)
    retrieve = next(s for s in root.walk() if s.kind == "RETRIEVER")
    assert retrieve.attributes["retrieval.documents.0.document.id"]
    assert retrieve.attributes["retrieval.documents.0.document.score"] > 0
    assert all(s.attributes.get("llm.token_count.total") == 2 for s in root.walk() if s.kind == "LLM")


def test_a_trace_from_before_llm_events_still_loads_and_exports(bm25):
    with ScriptedLLM(handler()) as llm:
        result = run_question(llm.url, bm25)  # no llm events: as every trace written before them
    header, events = loads_jsonl(dumps_jsonl(result.trace, {"question": QUESTION, "settings": result.settings}))
    root = build_spans(header, events)
    assert [(s.name, s.kind) for s in root.children][:3] == [
        ("decompose", "LLM"),
        ("plan", "LLM"),
        ("retrieve", "RETRIEVER"),
    ]
    assert root.children[0].attributes["output.value"] == json.dumps(result.sub_queries)
    assert root.children[1].attributes["output.value"] == JED_HOYER
    assert "llm.token_count.total" not in root.children[0].attributes
    assert root.children[3].attributes["output.value"] == "December 7, 1973"


SUMMARIZE = ToolSpec(
    name="summarize", params=(Param("text", ValueType.TEXT),), returns=ValueType.TEXT, doc="Summarize a text."
)
TOOL_PROGRAM = """docs1 = retrieve("When was Jed Hoyer born?")
jed_birth = answer("When was Jed Hoyer born?", docs1)
short = summarize(jed_birth)
final_answer = answer(f"Given: {short}. Answer the question: Who is older?")
"""


def test_other_tools_are_tool_spans_with_their_llm_requests_inside(bm25):
    with ScriptedLLM(handler([TOOL_PROGRAM])) as llm:
        llm_client = client(llm.url)

        def summarize(text):
            return llm_client.chat([{"role": "user", "content": f"Shorten: {text}"}])

        result = run_question(
            llm.url,
            bm25,
            llm_events=True,
            language=DEFAULT_LANGUAGE.with_tool(SUMMARIZE),
            extra_tools={"summarize": summarize},
        )
    assert result.ok, result.error
    agents = [e.agent for e in result.trace if e.kind == "llm"]
    assert agents == ["decompose", "plan", "answer", "summarize", "answer"]
    root = build_spans({"question": QUESTION}, result.trace)
    tool = next(s for s in root.children if s.name == "summarize")
    assert tool.kind == "TOOL" and tool.attributes["tool.name"] == "summarize"
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool" and tool.attributes["output.value"] == "a summary"
    assert [(c.name, c.kind) for c in tool.children] == [("summarize", "LLM")]
    assert tool.children[0].attributes["llm.input_messages.0.message.content"] == "Shorten: December 7, 1973"


def test_traces_url():
    assert traces_url("http://127.0.0.1:6006") == "http://127.0.0.1:6006/v1/traces"
    assert traces_url("http://h:4318/") == "http://h:4318/v1/traces"
    assert traces_url("http://h:4318/v1/traces") == "http://h:4318/v1/traces"


# -- OTLP over HTTP, received on loopback --------------------------------------------------------------------
class Receiver:
    """An OTLP/HTTP traces endpoint on loopback: decodes each request with the OTLP protobuf schema."""

    def __init__(self):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                message = ExportTraceServiceRequest()
                message.ParseFromString(body)
                outer.requests.append((self.path, message))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def spans(self):
        """Every span received: dicts with trace/span/parent ids, name, times, attributes, resource."""
        out = []
        for _, message in self.requests:
            for rs in message.resource_spans:
                resource = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        out.append(
                            {
                                "trace": s.trace_id.hex(),
                                "id": s.span_id.hex(),
                                "parent": s.parent_span_id.hex(),
                                "name": s.name,
                                "start": s.start_time_unix_nano,
                                "end": s.end_time_unix_nano,
                                "status": s.status.code,
                                "resource": resource,
                                "attributes": {kv.key: _value(kv.value) for kv in s.attributes},
                            }
                        )
        return out


def _value(v):
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, which) if which else None


def shape(spans):
    """What a trace looks like: each span's name, kind, times and parent's name (ids aside)."""
    by_id = {s["id"]: s for s in spans}
    return sorted(
        (
            s["name"],
            s["attributes"].get("openinference.span.kind"),
            s["start"],
            s["end"],
            by_id[s["parent"]]["name"] if s["parent"] else None,
        )
        for s in spans
    )


def test_a_sink_sends_one_trace_per_question_with_the_recorded_times(recorded, monkeypatch, otel_sdk):
    from pyrag_dsl.observe.otel import OtelSink

    header, events = recorded
    monkeypatch.setenv("OTEL_SERVICE_NAME", "qa-service")
    with Receiver() as receiver:
        with OtelSink(receiver.url) as sink:
            assert sink.export(header, events) and sink.export(header, events)
        spans = receiver.spans()
    assert [path for path, _ in receiver.requests] == ["/v1/traces", "/v1/traces"]  # one request per question
    traces = {s["trace"] for s in spans}
    assert len(traces) == 2 and len(spans) == 16
    one = [s for s in spans if s["trace"] == sorted(traces)[0]]
    (root,) = [s for s in one if not s["parent"]]
    assert root["name"] == "question" and all(s["parent"] == root["id"] for s in one if s is not root)
    assert root["resource"]["service.name"] == "qa-service"
    assert root["start"] == round(events[0].start * 1e9) and root["end"] == round(events[-1].end * 1e9)
    assert all(s["status"] == 1 for s in one)  # OK
    retrieve = next(s for s in one if s["name"] == "retrieve")
    assert retrieve["attributes"]["retrieval.documents.0.document.id"]
    assert shape(one) == shape([s for s in spans if s["trace"] == sorted(traces)[1]])


def test_the_application_provider_gets_the_spans(recorded, otel_sdk):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from pyrag_dsl.observe.otel import OtelSink

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    sink = OtelSink(tracer_provider=provider)
    for event in recorded[1]:  # the on_event form: the spans go out at the final event
        sink(event)
    spans = memory.get_finished_spans()
    assert len(spans) == 8 and sorted(s.name for s in spans)[0] == "answer"
    assert {s.context.trace_id for s in spans} == {spans[0].context.trace_id}


# -- the command line ---------------------------------------------------------------------------------------
def cli(*args, env=None, timeout=300):
    full_env = {**os.environ, **(env or {})}
    for key in (
        "LLM_MODEL",
        "LLM_BASE_URL",
        "PLAN_LLM_MODEL",
        "PLAN_LLM_BASE_URL",
        "OUTPUT_DIR",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_SERVICE_NAME",
    ):
        if key not in (env or {}):
            full_env.pop(key, None)
    return subprocess.run(
        [sys.executable, "-m", "pyrag_dsl.cli", *args], capture_output=True, text=True, timeout=timeout, env=full_env
    )


@pytest.mark.slow(seconds=34)
def test_run_exports_live_and_trace_export_sends_the_same_spans(bm25_index, tmp_path, otel_sdk):
    questions = tmp_path / "q.txt"
    questions.write_text(f"{QUESTION}\n{QUESTION}\n")
    with ScriptedLLM(handler()) as llm, Receiver() as receiver:
        r = cli(
            "run",
            str(questions),
            "--llm-url",
            llm.url,
            "--llm-model",
            "scripted",
            "--index",
            str(bm25_index),
            "--output-dir",
            str(tmp_path / "out"),
            "--otlp-endpoint",
            receiver.url,
        )
        assert r.returncode == 0, r.stderr + r.stdout
        assert "2 question trace(s), 16 spans sent" in r.stderr
        live = receiver.spans()
        receiver.requests.clear()
        (run_dir,) = list((tmp_path / "out").iterdir())
        exported = cli(
            "trace",
            "export",
            str(run_dir / "1"),
            str(run_dir / "2" / "trace.jsonl"),
            env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url},
        )
        assert exported.returncode == 0, exported.stderr
        assert "exported 2 trace(s), 16 spans" in exported.stdout
        recorded = receiver.spans()
    assert len({s["trace"] for s in live}) == 2 and len({s["trace"] for s in recorded}) == 2
    assert shape(live) == shape(recorded)  # the recorded run looks as it did live
    tokens = [s["attributes"]["llm.token_count.total"] for s in live if s["attributes"].get("llm.model_name")]
    assert tokens == [2] * 10


@pytest.mark.slow(seconds=72)
def test_exec_and_eval_export(bm25_index, tmp_path, otel_sdk):
    program = tmp_path / "p.py"
    program.write_text(JED_HOYER)
    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "question": QUESTION, "golden_answers": ["John William Henry II"]}) + "\n"
            for i in range(2)
        )
    )
    with ScriptedLLM(handler()) as llm, Receiver() as receiver:
        base = [
            "--llm-url",
            llm.url,
            "--llm-model",
            "scripted",
            "--index",
            str(bm25_index),
            "--otlp-endpoint",
            receiver.url,
            "--otel-no-content",
        ]
        r = cli("exec", str(program), *base)
        assert r.returncode == 0, r.stderr + r.stdout
        (root,) = [s for s in receiver.spans() if not s["parent"]]
        assert root["name"] == "program" and len(receiver.spans()) == 6
        assert not any(k.endswith(("input.value", ".content")) for s in receiver.spans() for k in s["attributes"])
        receiver.requests.clear()
        r = cli("eval", "--data", str(qa), "--out", str(tmp_path / "ev"), *base)
        assert r.returncode == 0, r.stderr + r.stdout
        spans = receiver.spans()
    roots = [s for s in spans if not s["parent"]]
    assert len(roots) == 2 and {s["name"] for s in roots} == {"question"}
    assert {s["attributes"]["openinference.span.kind"] for s in spans} == {"CHAIN", "LLM", "RETRIEVER"}


def test_cli_errors(tmp_path, recorded, otel_sdk):
    trace = tmp_path / "trace.jsonl"
    trace.write_text(dumps_jsonl(recorded[1], recorded[0]))
    r = cli("trace", "export", str(trace))
    assert r.returncode == 2 and "no OTLP endpoint" in r.stderr
    r = cli("trace", "export", str(tmp_path / "nothing"), "--otlp-endpoint", "http://127.0.0.1:9")
    assert r.returncode == 2 and "no such file or directory" in r.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    r = cli("trace", "export", str(bad), "--otlp-endpoint", "http://127.0.0.1:9")
    assert r.returncode == 2 and "bad.jsonl" in r.stderr
    r = cli("trace", "export", str(trace), "--otlp-endpoint", "ftp://x")
    assert r.returncode == 2 and "http://" in r.stderr
    with socket.socket() as s:  # a port nobody listens on: the spans are not taken, exit 3, quickly
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = cli("trace", "export", str(trace), "--otlp-endpoint", f"http://127.0.0.1:{port}", timeout=60)  # a hang guard
    assert r.returncode == 3 and "not exported" in r.stderr


def test_without_the_extra_the_flag_is_a_usage_error_with_the_pip_command(tmp_path, recorded):
    shadow = tmp_path / "shadow" / "opentelemetry"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('opentelemetry is not installed here')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "shadow"), str(ROOT)])}
    trace = tmp_path / "trace.jsonl"
    trace.write_text(dumps_jsonl(recorded[1], recorded[0]))
    r = cli("trace", "export", str(trace), "--otlp-endpoint", "http://127.0.0.1:9", env=env)
    assert r.returncode == 2 and "pip install 'pyrag-dsl[otel]'" in r.stderr
    r = cli("run", "-", "--otlp-endpoint", "http://127.0.0.1:9", env=env)  # before any server starts
    assert r.returncode == 2 and "pip install 'pyrag-dsl[otel]'" in r.stderr


def test_the_library_example_of_docs_trace(bm25_index, otel_sdk):
    """docs/trace.md's embedding example, with a scripted LLM and a real index instead of the defaults."""
    from pyrag_dsl.observe.otel import OtelSink
    from pyrag_dsl.pipeline import Session, Settings

    with ScriptedLLM(handler()) as llm, Receiver() as receiver:
        settings = Settings.resolve(
            flags={"llm_url": llm.url, "llm_model": "scripted", "index": str(bm25_index)}, environ={}
        )
        with Session(settings) as session, OtelSink(receiver.url, content=True) as spans:
            for question in [QUESTION]:
                result = session.pipeline.run(question)  # the Session's pipeline records the llm events
                spans.export_result(result)
        assert result.final_answer == "John William Henry II" and spans.exported == 1 and spans.failed == 0
        got = receiver.spans()
    assert len(got) == 8 and sum(1 for s in got if s["attributes"].get("llm.token_count.total") == 2) == 5
