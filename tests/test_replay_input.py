"""A trace is input like any file: replay reads passages holding any line breaker, refuses a malformed
header or line with exit 2 and one line naming the file and the key, and never runs with limits looser than
the defaults unless they are given explicitly (so a forged trace cannot grow memory without bound)."""

import json
import resource
import subprocess
import sys

import pytest
from conftest import RecordingTools
from ops_helpers import cli, env

from pyrag_dsl.agents.answer import Sentinels
from pyrag_dsl.documents import Doc, Docs
from pyrag_dsl.grammar import Limits, validate
from pyrag_dsl.interpreter import CallCache, read_jsonl
from pyrag_dsl.pipeline.events import FinalEvent
from pyrag_dsl.pipeline.outputs import write_trace
from pyrag_dsl.pipeline.recorded_config import RecordedConfigError, bounded_limits, config_from_header
from pyrag_dsl.pipeline.replay import replay
from pyrag_dsl.pipeline.runner import Executor, PipelineConfig

pytestmark = pytest.mark.slow(seconds=25)

PROGRAM = 'docs = retrieve("who wrote it")\nfinal_answer = answer("Who wrote it?", docs)\n'
BREAKERS = "\u2028\u2029\x85\x0b\x0c\x1c\x1d\x1e"


def exec_trace(path, program=PROGRAM, tools=None, cfg=None):
    """A trace as `exec --trace` writes it: the run's events, a final event, the settings in the header."""
    cfg = cfg or PipelineConfig()
    checked = validate(program, cfg.language, cfg.limits)
    assert checked.ok, checked.errors
    trace: list = []
    executor = Executor(cfg, tools or RecordingTools().as_dict(), Sentinels(cfg.sentinels), trace)
    run = executor.execute(checked.program, CallCache(), 1)
    executor.adaptive(1)
    final = run.variables.get("final_answer")
    trace.append(
        FinalEvent(
            step=len(trace) + 1,
            start=0.0,
            end=0.0,
            program=program,
            error=None,
            final_answer=None if final is None else str(final),
        )
    )
    write_trace(path, trace, {"program": "p.py", "settings": cfg.settings()})
    return path


def test_passages_and_answers_with_line_breakers_replay(tmp_path):
    def retrieve(query, topk):
        return Docs(
            tuple(
                Doc(id=f"d{i}", title=f"T{BREAKERS}{i}", text=f"first{BREAKERS}second {i}", score=1.0)
                for i in range(topk)
            )
        )

    path = exec_trace(
        tmp_path / "t.jsonl", tools={"retrieve": retrieve, "answer": lambda query, docs: f"Jane{BREAKERS}Doe"}
    )
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) == len(text.split("\n")) - 1  # the breakers are written escaped
    header, events = read_jsonl(path)
    report = replay(header, events)
    assert report.ok and report.final_answer_replayed == f"Jane{BREAKERS}Doe"
    raw = tmp_path / "raw.jsonl"  # the same trace from a writer that leaves them raw
    raw.write_text(
        "\n".join(json.dumps(json.loads(x), ensure_ascii=False) for x in text.split("\n") if x) + "\n", encoding="utf-8"
    )
    assert "\u2028" in raw.read_text(encoding="utf-8")
    r = cli("replay", str(raw))
    assert r.returncode == 0 and "replay OK" in r.stdout, r.stdout + r.stderr


def _rows(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").split("\n") if x]


def _write(path, rows, raw_line=None):
    lines = [json.dumps(r) for r in rows]
    if raw_line is not None:
        lines[raw_line[0]] = raw_line[1]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _settings(**change):
    def edit(rows):
        rows[0]["settings"].update(change)

    return edit


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda rows: rows[0].update(settings=["topk", 5]), "settings must be an object, got ['topk', 5]"),
        (_settings(language="text_concat"), "settings.language must be an object, got 'text_concat'"),
        (_settings(language={"nodes": "text_concat"}), "settings.language.nodes must be a list of strings"),
        (_settings(limits=[1]), "settings.limits must be an object"),
        (_settings(topk=True), "settings.topk must be an integer from 1 to 1000, got True"),
        (_settings(topk="5"), "settings.topk must be an integer from 1 to 1000, got '5'"),
        (_settings(boosted_topk=10**6), "settings.boosted_topk must be an integer from 1 to 1000"),
        (_settings(policy=["x"]), "settings.policy must be one of incremental, reference"),
        (_settings(parallel="yes"), "settings.parallel must be true or false, got 'yes'"),
        (_settings(sentinels=[1, 2]), "settings.sentinels must be a list of strings"),
        (_settings(limits={"max_statements": 1e300}), "limit max_statements must be a positive integer"),
        (_settings(limits={"k" * 1_000_000: 1}), "unknown limit(s) 'kkkk"),
    ],
)
def test_a_bad_header_is_exit_2_naming_file_and_key(tmp_path, edit, words):
    rows = _rows(exec_trace(tmp_path / "good.jsonl"))
    edit(rows)
    bad = tmp_path / "bad.jsonl"
    _write(bad, rows)
    r = cli("replay", str(bad))
    assert r.returncode == 2, r.stdout + r.stderr
    (err,) = r.stderr.strip().splitlines()
    assert err.startswith(f"error: {bad}: ") and words in err and len(err) < 400, err


@pytest.mark.parametrize(
    "line_no, text, words",
    [
        (0, None, "line 1: Infinity is not a number JSON allows"),  # settings.topk Infinity
        (
            0,
            '{"schema": "pyrag-dsl-trace", "version": 1, "settings": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "line 1: nested deeper than 100 levels",
        ),
        (2, '{"kind": "retrieve", "output": ' + "[" * 100_000 + "]" * 100_000 + "}", "line 3: nested deeper than 100"),
        (2, '{"kind": "retrieve", "step": NaN}', "line 3: NaN is not a number JSON allows"),
        (2, '{"kind": "answer", "step": "x"}', "line 3: step: Input should be a valid integer"),
    ],
)
def test_a_bad_line_is_exit_2_naming_the_line(tmp_path, line_no, text, words):
    good = exec_trace(tmp_path / "good.jsonl")
    rows = _rows(good)
    if text is None:
        text = json.dumps(rows[0]).replace('"topk": 5', '"topk": Infinity')
    bad = tmp_path / "bad.jsonl"
    _write(bad, rows, (line_no, text))
    r = cli("replay", str(bad))
    assert r.returncode == 2, r.stdout + r.stderr
    (err,) = r.stderr.strip().splitlines()
    assert err.startswith(f"error: {bad}: {words}") and len(err) < 400, err


def test_recorded_limits_are_tightened_to_the_defaults():
    loose = Limits(max_string_length=10**15, max_trace_bytes=10**15, run_timeout_s=None, tool_timeout_s=1e6)
    assert bounded_limits(loose) == Limits()
    tight = Limits(max_tool_calls=3, run_timeout_s=5.0)
    assert bounded_limits(tight) == tight
    header = {"settings": {"limits": {"max_string_length": 10**15, "max_tool_calls": 3}}}
    assert config_from_header(header).limits == Limits(max_tool_calls=3)
    explicit = Limits(max_string_length=10**9)
    assert config_from_header(header, limits=explicit).limits == explicit  # the caller's own choice
    with pytest.raises(RecordedConfigError, match="settings must be an object"):
        config_from_header({"settings": "x"})


def _grow_program(statements=10):
    """Each statement ten times the one before; the first is a tool output, so only the run can bound it."""
    names = [f"v{i}" for i in range(statements)]
    lines = ['v0 = answer("q")'] + [f'{b} = f"' + ("{" + a + "}") * 10 + '"' for a, b in zip(names, names[1:])]
    return "\n".join(lines + [f"final_answer = {names[-1]}"]) + "\n"


def test_a_forged_trace_cannot_lift_the_limits(tmp_path):
    """Recorded with max_string_length and max_trace_bytes of 10**15: the replay stops at the default limit
    instead of growing ten times per statement (before, it died of SIGSEGV under a 2 GiB address-space cap)."""
    program = _grow_program()
    small = exec_trace(
        tmp_path / "small.jsonl",
        program='v0 = answer("q")\nfinal_answer = v0\n',
        tools={"answer": lambda query, docs=None: "x" * 300, "retrieve": None},
    )
    rows = _rows(small)
    rows[0]["settings"]["limits"].update(max_string_length=10**15, max_trace_bytes=10**15)
    for row in rows:
        if "program" in row:
            row["program"] = program
    forged = tmp_path / "forged.jsonl"
    _write(forged, rows)
    assert forged.stat().st_size < 5_000
    cap = 1 << 30

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    r = subprocess.run(
        [sys.executable, "-m", "pyrag_dsl.cli", "replay", str(forged)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env(),
        preexec_fn=limit,
    )
    assert r.returncode == 1, r.stdout + r.stderr  # ran, and does not reproduce the (forged) recording
    assert "replay does not reproduce" in r.stdout
    report = replay(*read_jsonl(forged))
    assert report.error["type"] == "LimitExceeded" and "200000" in report.error["message"].replace(",", "")
