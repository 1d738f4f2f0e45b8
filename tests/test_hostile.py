"""The adversarial suite: every hostile program gets its typed error, and no tool is ever called."""

import pytest
from conftest import RecordingTools
from corpus import HOSTILE

from pyrag_dsl import execute, validate
from pyrag_dsl.grammar import DslError

pytestmark = pytest.mark.network_free


def test_suite_is_broad():
    assert len(HOSTILE) >= 50
    assert {h.category for h in HOSTILE} == {"dunder", "format", "unicode", "frames", "smuggle", "aliasing", "bomb"}
    assert len({h.name for h in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize("case", HOSTILE, ids=[h.name for h in HOSTILE])
def test_hostile_program_is_rejected_before_any_tool_call(case):
    tools = RecordingTools()
    result = validate(case.source)
    if result.ok:  # would be a hole in the engine: run it to show what it does, then fail
        execute(result.program, tools.as_dict())
    assert not result.ok, f"{case.name} validated"
    assert all(isinstance(e, DslError) for e in result.errors)
    found = {e.kind for e in result.errors}
    assert found & set(case.expect), f"{case.name}: expected one of {case.expect}, got {sorted(found)}"
    assert tools.calls == []
