"""Small-model mode, one layer at a time: example-leak and repeat filtering, yes/no and comparison
detection, deterministic date/number comparison, the steps grammar and the synthesis line."""

import pytest

from pyrag_dsl import validate
from pyrag_dsl.agents import small_model as sm
from pyrag_dsl.grammar.skeleton import steps_gbnf, steps_lark, steps_rules

pytestmark = pytest.mark.network_free


def test_examples_cover_the_question_kinds_and_name_only_invented_entities():
    ex = sm.examples()["examples"]
    assert {"bridge", "comparison", "yes/no"} <= {e["kind"] for e in ex}
    for e in ex:
        assert sm.leaked_entities(e["question"], ""), e["question"]  # every example names an invented entity
        program = e["program"] + "\n" + sm.synthesis_line(e["question"], e["program"]) + "\n"
        assert validate(program).ok, validate(program).errors
    assert "{ans1}" in ex[0]["program"]  # the bridge example feeds an answer into the next retrieval


def test_filter_drops_leaks_and_repeats():
    q = "Who directed the film that won the 1998 Palme d'Or?"
    kept, dropped = sm.filter_sub_queries(
        [
            "Which film won the 1998 Palme d'Or?",
            "Who directed the film Glass Harbor?",
            "Who directed the film that won the 1998 Palme d'Or?",
        ],
        q,
    )
    assert kept == ["Which film won the 1998 Palme d'Or?"]
    assert len(dropped) == 2
    # a repeat alone is kept (nothing better), a leak never
    assert sm.filter_sub_queries([q], q) == ([q], [])
    assert sm.filter_sub_queries(["Who is A?", "who is a", "Who is B?"], q)[0] == ["Who is A?", "Who is B?"]
    assert sm.filter_sub_queries(["When was Velvet Orchard formed?"], q) == ([], ["When was Velvet Orchard formed?"])
    # an example entity that the question itself names is no leak
    assert sm.leaked_entities("Where is Lake Ormin?", "Is Lake Ormin deep?") == []


@pytest.mark.parametrize(
    "q, yes",
    [
        ("Are Lake A and Lake B in the same country?", True),
        ("Is Jed Hoyer older than John Henry?", True),
        ("Did Tom and Ann both play guitar?", True),
        ("Is Jed Hoyer or John Henry older?", False),
        ("Who is older, Jed Hoyer or John William Henry II?", False),
        ("When was Jed Hoyer born?", False),
    ],
)
def test_yes_no_questions(q, yes):
    assert sm.is_yes_no(q) is yes


def test_yes_no_normalised():
    assert sm.normalise_yes_no("Yes, both are lakes.") == "yes"
    assert sm.normalise_yes_no("no") == "no"
    assert sm.normalise_yes_no("Norway") is None


@pytest.mark.parametrize(
    "q, options, kind, pick",
    [
        ("Who is older, Jed Hoyer or John William Henry II?", ("Jed Hoyer", "John William Henry II"), "date", "min"),
        (
            "Which band was formed first, Velvet Orchard or The Quill Sisters?",
            ("Velvet Orchard", "Quill Sisters"),
            "date",
            "min",
        ),
        ("Which film was released later, Alpha or Beta?", ("Alpha", "Beta"), "date", "max"),
        ("Which city has a larger population, Oslo or Bergen?", ("Oslo", "Bergen"), "number", "max"),
        ("Who was born first, Ann Lee or Bo Chan?", ("Ann Lee", "Bo Chan"), "date", "min"),
    ],
)
def test_comparison_detected(q, options, kind, pick):
    c = sm.comparison(q)
    assert c is not None and c.options == options and c.kind == kind and c.pick == pick


@pytest.mark.parametrize(
    "q", ["Who directed the film Glass Harbor?", "Are A and B both lakes?", "Which is a fish, salmon or oak?"]
)
def test_not_a_comparison(q):
    assert sm.comparison(q) is None


def test_dates_and_numbers_parse():
    assert sm.parse_date("born May 25, 1949") == (1949, 5, 25)
    assert sm.parse_date("25 May 1949") == (1949, 5, 25)
    assert sm.parse_date("in 1973") == (1973, 0, 0)
    assert sm.parse_date("unknown") is None
    assert sm.parse_number("about 1,234,000 people") == 1_234_000
    assert sm.parse_number("2.5 million") == 2_500_000
    assert sm.parse_number("none") is None


def test_compare_facts_picks_by_value_not_by_order():
    q = "Who is older, Jed Hoyer or John William Henry II?"
    facts = [("When was Jed Hoyer born?", "December 7, 1973"), ("When was John William Henry II born?", "1949")]
    assert sm.compare_facts(q, facts) == "John William Henry II"
    assert sm.compare_facts(q.replace("older", "younger"), facts) == "Jed Hoyer"
    assert sm.compare_facts(q, [facts[0], ("When was John William Henry II born?", "unknown")]) is None
    assert sm.compare_facts(q, facts[:1]) is None  # an option tied to no fact: the model decides
    same_year = [("When was Jed Hoyer born?", "1949"), ("When was John William Henry II born?", "May 1949")]
    assert sm.compare_facts(q, same_year) is None


def test_steps_grammar_has_exactly_n_steps_and_no_final_line():
    g = steps_gbnf(2)
    assert "step2 ::=" in g and "step3" not in g and "final_answer" not in g
    assert "ans1" in steps_rules(2)["q2"].__repr__() and "final" not in steps_lark(2)
    with pytest.raises(ValueError):
        steps_rules(0)


def test_steps_grammar_admits_bridges_and_comparisons():
    lark = pytest.importorskip("lark")
    parser = lark.Lark(steps_lark(2), start="program")
    for ex in sm.examples()["examples"][:3]:
        parser.parse(ex["program"] + "\n")
    with pytest.raises(lark.exceptions.LarkError):
        parser.parse(
            'docs1 = retrieve(f"x {ans2}")\nans1 = answer("x", docs1)\n'
            'docs2 = retrieve("y")\nans2 = answer("y", docs2)\n'
        )  # no answer before it exists


def test_synthesis_line_carries_every_answer_and_no_planner_text():
    program = (
        'docs1 = retrieve("Who directed Alpha?")\nans1 = answer("Who directed Alpha?", docs1)\n'
        'docs2 = retrieve(f"When was {ans1} born?")\nans2 = answer(f"When was {ans1} born?", docs2)\n'
    )
    line = sm.synthesis_line('When was the director of "Alpha" born?', program)
    assert line == (
        'final_answer = answer(f"Facts: Who directed Alpha? -> {ans1} | When was {ans1} born? -> {ans2}'
        " | Question: When was the director of 'Alpha' born?\", "
        "retrieve(f\"When was the director of 'Alpha' born? {ans1} {ans2}\", 3))"
    )
    assert validate(program + line + "\n").ok
    facts, question = sm.parse_synthesis(
        "Facts: Who directed Alpha? -> Ann Lee | When was Ann Lee born? -> 1950"
        " | Question: When was the director of 'Alpha' born?"
    )
    assert facts == [("Who directed Alpha?", "Ann Lee"), ("When was Ann Lee born?", "1950")]
    assert question == "When was the director of 'Alpha' born?"


class _FakeLLM:
    """Returns a fixed reply; records the messages (a unit test of the Plan agent's skeleton mode)."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.sent = []

    def grammar_body(self, lark: str, gbnf: str) -> dict:
        return {"grammar": gbnf}

    def chat(self, messages, **kw) -> str:
        self.sent.append((messages, kw))
        return self.reply


def test_plan_skeleton_appends_synthesis_and_replaces_copied_examples():
    from pyrag_dsl.agents.plan import PlanAgent

    q = "Who is older, Ann Lee or Bo Chan?"
    subs = ["When was Ann Lee born?", "When was Bo Chan born?"]
    good = (
        'docs1 = retrieve("When was Ann Lee born?")\nans1 = answer("When was Ann Lee born?", docs1)\n'
        'docs2 = retrieve("When was Bo Chan born?")\nans2 = answer("When was Bo Chan born?", docs2)\n'
    )
    llm = _FakeLLM(good)
    agent = PlanAgent(llm, grammar="skeleton")
    program = agent.write(q, subs)
    assert (
        program == good + 'final_answer = answer(f"Facts: When was Ann Lee born? -> {ans1} | When was Bo Chan '
        'born? -> {ans2} | Question: Who is older, Ann Lee or Bo Chan?", '
        'retrieve(f"Who is older, Ann Lee or Bo Chan? {ans1} {ans2}", 3))\n'
    )
    assert validate(program).ok and agent.copied_example == 0
    messages, kw = llm.sent[0]
    assert "step2 ::=" in kw["extra_body"]["grammar"] and "step3" not in kw["extra_body"]["grammar"]
    assert [m["role"] for m in messages[:3]] == ["system", "user", "assistant"] and messages[-1]["content"].count(q)
    copied = _FakeLLM(good.replace("Bo Chan", "Velvet Orchard"))
    agent = PlanAgent(copied, grammar="skeleton")
    program = agent.write(q, subs)
    assert "Velvet Orchard" not in program and agent.copied_example == 1
    assert program.startswith(sm.plain_steps(subs)) and validate(program).ok


def test_decompose_small_drops_leaks_and_falls_back():
    from pyrag_dsl.agents.decompose import DecomposeAgent

    q = "Which river flows through the capital of Peru?"
    agent = DecomposeAgent(
        _FakeLLM('["What is the capital of Peru?", "Who directed the film Glass Harbor?"]'), small=True
    )
    d = agent.run(q)
    assert d.sub_queries == ["What is the capital of Peru?"] and d.dropped == ["Who directed the film Glass Harbor?"]
    d = DecomposeAgent(_FakeLLM('["When was Lake Ormin formed?"]'), small=True).run(q)
    assert d.fallback and d.sub_queries == [q]


def test_answer_small_computes_comparisons_and_normalises_yes_no():
    from pyrag_dsl.agents.answer import AnswerAgent

    llm = _FakeLLM("<answer>Bo Chan</answer>")
    agent = AnswerAgent(llm, small=True)
    query = (
        "Facts: When was Ann Lee born? -> 3 May 1980 | When was Bo Chan born? -> 1950"
        " | Question: Who is older, Ann Lee or Bo Chan?"
    )
    assert agent(query) == "Bo Chan" and agent.computed == 1 and llm.sent == []  # no model call
    yes = AnswerAgent(_FakeLLM("<answer>Yes</answer>"), small=True)
    q2 = "Facts: Where is A? -> Peru | Where is B? -> Peru | Question: Are A and B in the same country?"
    assert yes(q2, docs=[]) == "yes"
    assert "<answer>yes</answer>" in yes.llm.sent[0][1]["extra_body"]["grammar"]
    unknown = AnswerAgent(_FakeLLM("<answer>unknown</answer>"), small=True)
    assert unknown("Who?", docs=[]) == "unknown"
    assert "unknown" in unknown.llm.sent[0][0][0]["content"]


class _Replies(_FakeLLM):
    def __init__(self, *replies: str) -> None:
        super().__init__("")
        self.replies = list(replies)

    def chat(self, messages, **kw) -> str:
        self.sent.append((messages, kw))
        return self.replies.pop(0)


def test_decompose_small_asks_again_when_the_only_sub_query_repeats_the_question():
    from pyrag_dsl.agents.decompose import DecomposeAgent

    q = "Who is older, Ann Lee or Bo Chan?"
    llm = _Replies(f'["{q}"]', '["When was Ann Lee born?", "When was Bo Chan born?"]')
    d = DecomposeAgent(llm, small=True).run(q)
    assert d.sub_queries == ["When was Ann Lee born?", "When was Bo Chan born?"] and d.attempts == 2
    assert "two or more sub-questions" in llm.sent[1][0][-1]["content"]
    assert DecomposeAgent(_Replies(f'["{q}"]', f'["{q}"]'), small=True).run(q).sub_queries == [q]


def test_plan_skeleton_single_step_needs_no_model_call():
    from pyrag_dsl.agents.plan import PlanAgent

    llm = _FakeLLM("never used")
    program = PlanAgent(llm, grammar="skeleton").write("What does Ann Lee play?", ["What does Ann Lee play?"])
    assert llm.sent == [] and validate(program).ok and program.count("retrieve(") == 2  # the step, the synthesis


def test_answer_small_synthesis_reads_facts_and_passages():
    from pyrag_dsl import Doc
    from pyrag_dsl.agents.answer import AnswerAgent

    llm = _FakeLLM("<answer>Chief of Protocol</answer>")
    q = (
        "Facts: Who played Corliss? -> Shirley Temple | Question: What government position was held by the woman "
        "who played Corliss?"
    )
    assert (
        AnswerAgent(llm, small=True)(q, [Doc("1", "Shirley Temple", "She was Chief of Protocol.")])
        == "Chief of Protocol"
    )
    prompt = llm.sent[0][0][0]["content"]
    assert "Document 1 (Title: Shirley Temple)" in prompt and "- Who played Corliss? Shirley Temple" in prompt
    assert prompt.rstrip().endswith("Reply with <answer>...</answer> only.") and "{documents}" not in prompt
