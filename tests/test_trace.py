import json

import pytest
from conftest import RecordingTools
from corpus import VALID_PROGRAMS

from pyrag_dsl import execute, parse_program
from pyrag_dsl.documents import Docs
from pyrag_dsl.interpreter import SCHEMA_VERSION, dumps_jsonl, loads_jsonl, read_jsonl, write_jsonl


def _run(name="nested_and_keywords", answer=None):
    tools = RecordingTools()
    if answer:
        tools.answer = answer
    return execute(parse_program(VALID_PROGRAMS[name]), tools.as_dict())


def test_round_trip_gives_equal_typed_events(tmp_path):
    result = _run()
    path = tmp_path / "trace.jsonl"
    write_jsonl(path, result.trace, {"question": "q"})
    header, events = read_jsonl(path)
    assert header == {"schema": "pyrag-dsl-trace", "version": SCHEMA_VERSION, "question": "q"}
    assert events == result.trace
    assert [type(e) for e in events] == [type(e) for e in result.trace]
    assert isinstance(events[1].output_value(), Docs)
    assert events[1].output_value() == result.trace[1].output_value()
    assert not (tmp_path / "trace.jsonl.tmp").exists()


def test_error_events_round_trip():
    def answer(query, docs):
        raise RuntimeError("down")

    result = _run("jed_hoyer", answer)
    _, events = loads_jsonl(dumps_jsonl(result.trace))
    assert events == result.trace and events[-1].kind == "error"
    assert events[-1].error["type"] == "ToolError"


def test_every_line_is_json_with_a_kind():
    lines = dumps_jsonl(_run().trace).splitlines()
    assert json.loads(lines[0])["version"] == SCHEMA_VERSION
    assert [json.loads(x)["kind"] for x in lines[1:]] == [
        "assign",
        "retrieve",
        "answer",
        "assign",
        "retrieve",
        "answer",
        "answer",
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("not json\n", "line 1"),
        ('{"schema": "other"}\n', "header"),
        ('{"schema": "pyrag-dsl-trace", "version": 99}\n', "version"),
        ('{"schema": "pyrag-dsl-trace", "version": 1}\n{"kind": "nope", "step": 1}\n', "line 2"),
        ('{"schema": "pyrag-dsl-trace", "version": 1}\n{"kind": "answer", "step": 1}\n', "line 2"),
    ],
)
def test_bad_trace_files(text, message):
    with pytest.raises(ValueError, match=message):
        loads_jsonl(text)


def test_write_jsonl_leaves_no_temp_file_when_the_write_fails(tmp_path, monkeypatch):
    import pathlib

    import pytest

    from pyrag_dsl.interpreter import write_jsonl

    def full(self, *a, **kw):
        pathlib.Path.write_bytes(self, b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_text", full)
    with pytest.raises(OSError):
        write_jsonl(tmp_path / "trace.jsonl", [])
    assert list(tmp_path.iterdir()) == []


def test_read_jsonl_loads_a_pipeline_trace_without_importing_the_pipeline(tmp_path):
    import subprocess
    import sys

    from pyrag_dsl.interpreter import write_jsonl
    from pyrag_dsl.pipeline.events import DecomposeEvent

    path = tmp_path / "trace.jsonl"
    write_jsonl(
        path, [DecomposeEvent(step=1, start=0.0, end=0.0, question="q", sub_queries=["a"], fallback=False, attempts=1)]
    )
    code = (
        "import sys; from pyrag_dsl.interpreter import read_jsonl; h, ev = read_jsonl(sys.argv[1]); "
        "assert 'pyrag_dsl.pipeline' not in sys.modules; print(ev[0].kind, ev[0].sub_queries)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "decompose ['a']"
