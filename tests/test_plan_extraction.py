"""How a program is cut out of an LLM reply, finished (extract_program) or still streaming (settled_program),
and the other agents' reply parsers on hostile replies."""

import pytest
from corpus import JED_HOYER

from pyrag_dsl.agents.decompose import parse_sub_queries
from pyrag_dsl.agents.llm import strip_thinking
from pyrag_dsl.agents.plan import extract_program, settled_program
from pyrag_dsl.grammar import DEFAULT_LANGUAGE, validate

pytestmark = pytest.mark.network_free

FENCED = "```python\n" + JED_HOYER + "```\n"
DRAFTS = 'd1 = retrieve("Who owns the Red Sox?")\na1 = answer("Who owns the Red Sox?", d1)\nd2 = retrieve("x")\n'


# -- thinking ----------------------------------------------------------------------------------------------
def test_only_a_leading_think_block_is_stripped():
    assert strip_thinking("<think>\nplan it\n</think>\n\nx = 1") == "x = 1"
    assert strip_thinking("  <THINK>a</THINK>b") == "b"
    assert strip_thinking("<think>still thinking") == ""  # a block still open: all of it is thinking
    later = 'final_answer = answer("What does the <think> tag do?")'
    assert strip_thinking(later) == later  # a question may mention <think>
    assert strip_thinking("<think>a</think>\n" + later) == later


# -- the finished reply --------------------------------------------------------------------------------------
def test_trailing_prose_after_an_unfenced_program_is_dropped():
    reply = JED_HOYER + "\nHope this helps!\nIt retrieves twice, then answers.\n"
    program = extract_program(reply)
    assert program == JED_HOYER
    assert validate(program, DEFAULT_LANGUAGE).ok


@pytest.mark.parametrize("tail", ["print(final_answer)\n", "Done\n"])
def test_trailing_lines_that_are_python_stay_for_the_validator(tail):
    program = extract_program(JED_HOYER + tail)
    assert program.endswith(tail)
    assert not validate(program, DEFAULT_LANGUAGE).ok


def test_a_broken_last_statement_is_not_taken_for_prose():
    truncated = 'docs1 = retrieve("When was Jed Hoyer born?")\nfinal_answer = answer("Given: \nHope this helps!\n'
    assert extract_program(truncated) == truncated.strip() + "\n"  # the syntax error stays where it is
    open_call = 'docs1 = retrieve("a")\nfinal_answer = answer(\n    "q", docs1\nThanks!\n'
    assert extract_program(open_call) == open_call.strip() + "\n"
    continued = 'q = "Who is " \\\nHope this helps!\n'
    assert extract_program(continued) == continued.strip() + "\n"


def test_prose_before_the_program_and_smart_quotes_as_before():
    assert extract_program("Here it is:\n" + JED_HOYER) == JED_HOYER
    assert extract_program("Sure:\n" + FENCED + "It answers.") == JED_HOYER
    assert extract_program("x = \u201ca\u201d\n") == 'x = "a"\n'


# -- the reply still streaming ---------------------------------------------------------------------------
def test_nothing_is_settled_while_thinking_or_before_the_fence():
    assert settled_program("<think>\n" + DRAFTS) == ""
    assert settled_program("<think>\n" + DRAFTS, constrained=True) == ""
    assert settled_program("Draft:\n" + DRAFTS) == ""  # a fence may still come: it would be the program
    assert settled_program(DRAFTS) == ""
    assert settled_program(DRAFTS, constrained=True) == DRAFTS  # decoded to the grammar: no fence, no prose
    fenced = "<think>\n" + DRAFTS + "</think>\nDraft:\n" + DRAFTS + "```python\n" + 'docs1 = retrieve("a")\n'
    assert settled_program(fenced) == 'docs1 = retrieve("a")\n'


def test_only_complete_lines_are_settled():
    assert settled_program('```python\ndocs1 = retrieve("a")\nx = ans') == 'docs1 = retrieve("a")\n'


HOSTILE_REPLIES = {
    "think drafts": "<think>\nDraft:\n" + DRAFTS + "</think>\n" + FENCED,
    "prose and drafts before the fence": "Let me sketch it:\n" + DRAFTS + "Now the program:\n" + FENCED + "Bye.",
    "trailing prose": "```python\n" + JED_HOYER + "Hope this helps!\n```\n",
    "continued line": '```python\nq = "When was Jed Hoyer " \\\n    "born?"\ndocs1 = retrieve(q)\n'
    "final_answer = answer(q, docs1)\n```\n",
    "unterminated string": '```python\ndocs1 = retrieve("a")\na1 = answer("b", docs1)\nfinal_answer = answer("c\n',
    "constrained": JED_HOYER,
}


@pytest.mark.parametrize("name", list(HOSTILE_REPLIES))
def test_every_settled_statement_but_the_last_is_a_statement_of_the_finished_program(name):
    """Cut the reply at every line: the statements of the settled program, but its last, are the first
    statements of the finished reply's program, with the same text (what streaming may dispatch)."""
    reply = HOSTILE_REPLIES[name]
    constrained = name == "constrained"
    final = validate(extract_program(strip_thinking(reply)), DEFAULT_LANGUAGE)
    final_sources = [s.source for s in final.program.statements] if final.ok else None
    cut = 0
    while (cut := reply.find("\n", cut) + 1) > 0:
        settled = settled_program(reply[:cut], constrained)
        checked = validate(settled + 'final_answer = "..."\n', DEFAULT_LANGUAGE) if settled.strip() else None
        if checked is None or not checked.ok:
            continue
        sources = [s.source for s in checked.program.statements][:-2]  # less the stand-in and the last one
        if final_sources is not None:
            assert sources == final_sources[: len(sources)], reply[:cut]
        else:  # an invalid reply: still, its settled statements are those of its own program text
            assert all(s in extract_program(strip_thinking(reply)) for s in sources)


# -- the other agents' parsers -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "reply",
    ["[" * 3000 + "]", "```json\n" + "[" * 3000 + "]" * 3000 + "\n```", "[" + '{"a": ' * 3000 + "1" + "}" * 3000 + "]"],
)
def test_sub_queries_nested_too_deep_are_a_bad_reply(reply):
    assert parse_sub_queries(reply) is None
