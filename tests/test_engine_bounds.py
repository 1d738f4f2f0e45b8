"""Bounded costs: validation errors, their rendering and the trace budget have caps that hold on hostile input."""

import tracemalloc

import pytest

from pyrag_dsl import Limits, ValidationFailed, execute, parse_program, validate
from pyrag_dsl.grammar import ArityError, LimitExceeded, TooManyErrors, UndefinedName
from pyrag_dsl.grammar.validate import MAX_HINTS
from pyrag_dsl.interpreter.trace import event_json

SURPLUS = 'd = retrieve("q")\nfinal_answer = answer("q", d, ' + '"a", ' * 12_000 + ")\n"  # one 60 KB line
UNDEFINED = 'final_answer = answer(f"' + "".join(f"{{name_{i}_xx}}" for i in range(4_500)) + '")\n'
MANY_LINES = "".join(f'v{i} = answer(f"{{missing_{i}}}", nope_{i})\n' for i in range(190)) + 'final_answer = "x"\n'


def _peak_mb(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("source", [SURPLUS, UNDEFINED, MANY_LINES], ids=["surplus", "undefined", "many_lines"])
def test_hostile_sources_give_bounded_errors(source):
    assert len(source.encode()) < Limits().max_source_bytes
    result = validate(source)
    assert not result.ok
    assert len(result.errors) <= Limits().max_errors + 1
    for e in result.errors:
        assert e.source_line is None or len(e.source_line) <= 170
        assert len(e.render()) < 2_000
    message = str(ValidationFailed(result.errors))
    assert len(message) < 100_000
    assert _peak_mb(lambda: validate(source)) < 100


def test_surplus_arguments_are_one_error():
    errors = validate(SURPLUS).errors
    assert [type(e) for e in errors] == [ArityError]
    assert "got 12002" in errors[0].message and errors[0].span.end_col > errors[0].span.col


def test_too_many_errors_counts_the_rest():
    errors = validate(UNDEFINED).errors
    assert len(errors) == Limits().max_errors + 1
    assert all(isinstance(e, UndefinedName) for e in errors[:-1])
    last = errors[-1]
    assert isinstance(last, TooManyErrors) and last.details["omitted"] == 4_500 - Limits().max_errors
    assert "4450 more" in last.message
    hinted = [e for e in errors if e.hint]
    assert len(hinted) <= MAX_HINTS
    assert last.to_dict()["type"] == "TooManyErrors"


def test_error_cap_is_a_limit():
    errors = validate(UNDEFINED, limits=Limits(max_errors=3)).errors
    assert len(errors) == 4 and isinstance(errors[-1], TooManyErrors)


def test_long_line_is_shown_as_a_window_with_the_caret_under_the_error():
    src = 'final_answer = answer("' + "x" * 5000 + '", dosc=1)\n'
    err = validate(src).errors[0]
    assert err.kind == "UnknownKeyword"
    assert len(err.source_line) <= 170 and err.source_line.startswith("...")
    caret = err.caret_line()
    assert err.source_line[caret.index("^") :].startswith("dosc")


def test_trace_budget_counts_assign_events_in_utf8_bytes():
    # no tool call at all: the f-strings double a 4-byte character until the trace budget is spent
    src = (
        'a = "'
        + "\U0001f600" * 1000
        + '"\n'
        + "".join(
            f'a{i} = f"{{{"a" if i == 0 else f"a{i - 1}"}}}{{{"a" if i == 0 else f"a{i - 1}"}}}"\n' for i in range(7)
        )
        + "".join(f'b{i} = f"{{a6}}"\n' for i in range(60))
        + 'final_answer = "x"\n'
    )
    limits = Limits(max_trace_bytes=2_000_000)
    result = execute(parse_program(src, limits=limits), {})
    assert isinstance(result.error, LimitExceeded) and result.error.details["limit"] == "max_trace_bytes"
    written = sum(len(event_json(e).encode()) for e in result.trace)
    assert written <= limits.max_trace_bytes
    # characters would have let about four times as much through
    assert written > limits.max_trace_bytes // 2


def test_charged_size_bounds_the_serialised_size():
    src = 'd = retrieve("q é \U0001f600")\na = answer("q", d)\nb = f"{a} \\u00e9 {a}"\nfinal_answer = answer(f"{b}")\n'
    from conftest import RecordingTools

    result = execute(parse_program(src), RecordingTools().as_dict())
    from pyrag_dsl.interpreter import Run, supervise

    run = Run(parse_program(src), RecordingTools().as_dict())
    supervise(run, run.run_all)
    written = sum(len(event_json(e).encode()) for e in run.events)
    assert result.ok and run.recorder.bytes >= written
    assert run.recorder.bytes < 3 * written  # an upper bound, not a wild one


@pytest.mark.parametrize("flag", [[], ["--json"]], ids=["text", "json"])
def test_check_output_stays_small(tmp_path, flag):
    import subprocess
    import sys

    path = tmp_path / "hostile.py"
    path.write_text(UNDEFINED, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "pyrag_dsl.cli", "check", str(path), *flag], capture_output=True, timeout=120
    )
    assert out.returncode == 1
    assert len(out.stdout) + len(out.stderr) < 1_000_000
    assert b"more error" in out.stdout


def test_repair_feedback_is_bounded():
    from pyrag_dsl.agents.plan import render_errors

    text = render_errors(validate(UNDEFINED).errors)
    assert len(text) < 60_000 and "more error" in text
