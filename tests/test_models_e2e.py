"""With the real embedded default model (Qwen2.5-Coder-0.5B from its carrier packages, a real llama.cpp
server, the embedded corpus): runs on unrelated questions show none of the few-shot examples' questions or
entities, in sub-queries, programs or answers. (The README question, answered correctly through the CLI with
the same model, is tests/test_e2e_embedded.py.)"""

import pytest

from pyrag_dsl.agents import models, small_model
from pyrag_dsl.pipeline.session import Session, Settings

pytestmark = [pytest.mark.model, pytest.mark.slow(seconds=110)]

UNRELATED = [
    "Who is older, Annie Morton or Terry Richardson?",  # comparison (HotpotQA dev)
    "What government position was held by the woman who portrayed Corliss Archer in the film Kiss and Tell?",  # bridge
    "Are Lake Baikal and Lake Tanganyika both rift lakes?",  # yes/no
]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    assert models.installed(models.MODELS[models.DEFAULT_MODEL]), (
        f"the default model is not installed: {models.MODELS[models.DEFAULT_MODEL].install}"
    )
    settings = Settings.resolve(flags={"output_dir": str(tmp_path_factory.mktemp("out"))}, environ={})
    assert settings.embedded_llm and settings.gguf is None
    with Session(settings) as s:
        yield s


def test_no_example_leaks_into_unrelated_questions(session):
    forbidden = [e.lower() for e in small_model.example_entities()] + [
        q.lower() for q in small_model.example_questions()
    ]
    answers = {}
    for question in UNRELATED:
        result = session.pipeline.run(question)
        answers[question] = result.final_answer
        assert result.error is None, result.error
        shown = "\n".join(
            [
                *result.sub_queries,
                *result.programs,
                str(result.final_answer),
                *(str(v) for v in result.variables.values()),
            ]
        ).lower()
        leaks = [f for f in forbidden if f in shown]
        assert not leaks, (question, leaks, result.sub_queries, result.programs)
        assert 'final_answer = answer(f"Facts: ' in result.generated_code  # the synthesis line built from steps
    assert answers[UNRELATED[2]] in ("yes", "no")  # a yes/no question gets yes or no
