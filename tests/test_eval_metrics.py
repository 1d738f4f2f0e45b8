"""Hand-checked cases for the FlashRAG-compatible metrics."""

import math

import pytest

from pyrag_dsl.eval.metrics import (
    accuracy,
    exact_match,
    f1_score,
    normalize_answer,
    precision_recall_f1,
    retrieval_recall,
    score,
    sub_exact_match,
)

pytestmark = pytest.mark.network_free


@pytest.mark.parametrize(
    "raw, norm",
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  A   cat,  an apple; the end. ", "cat apple end"),
        ("U.S.A.", "usa"),
        ("Theatre", "theatre"),  # 'the' only as a whole word
        ("an", ""),
        ("3,677 seated", "3677 seated"),
        ("Hello\tWORLD\n", "hello world"),
        ("don't", "dont"),
    ],
)
def test_normalize_answer(raw, norm):
    assert normalize_answer(raw) == norm


def test_exact_match_max_over_golds_and_string_gold():
    assert exact_match("the Chief of Protocol.", ["Chief of Protocol"]) == 1.0
    assert exact_match("Chief of Protocol", "chief of protocol") == 1.0
    assert exact_match("Protocol", ["Chief of Protocol"]) == 0.0
    assert exact_match("NYC", ["New York City", "NYC"]) == 1.0
    assert exact_match("", ["x"]) == 0.0


def test_f1_hand_checked():
    # pred tokens: [chief, protocol]; gold tokens: [chief, of, protocol] -> P=1, R=2/3, F1=0.8
    assert math.isclose(f1_score("Chief Protocol", ["Chief of Protocol"]), 0.8)
    # max over golds: second gold matches exactly
    assert f1_score("Paris", ["Lyon", "Paris"]) == 1.0
    # repeated tokens count with multiplicity: pred [a? no] -> "new new york" vs "new york": common=2, P=2/3, R=1
    assert math.isclose(f1_score("new new york", "new york"), 2 * (2 / 3) * 1 / (2 / 3 + 1))
    prf = precision_recall_f1("Chief Protocol", ["Chief of Protocol"])
    assert math.isclose(prf["precision"], 1.0) and math.isclose(prf["recall"], 2 / 3)


def test_f1_yes_no_noanswer_mismatch_is_zero():
    assert f1_score("yes", ["no"]) == 0.0
    assert f1_score("yes", ["yes it is"]) == 0.0  # FlashRAG: prediction is special and differs
    assert f1_score("no it was not", ["no"]) == 0.0  # gold is special and differs
    assert f1_score("Yes.", ["yes"]) == 1.0
    assert f1_score("noanswer", ["noanswer"]) == 1.0
    assert f1_score("", ["anything"]) == 0.0


def test_accuracy_is_sub_exact_match():
    assert accuracy("It was the Chief of Protocol of the US", ["Chief of Protocol"]) == 1.0
    assert accuracy("Chief", ["Chief of Protocol"]) == 0.0
    assert sub_exact_match is accuracy
    # containment is on normalised strings, at character level (as FlashRAG)
    assert accuracy("Theatre", ["eat"]) == 1.0


def test_retrieval_recall_all_titles_needed():
    assert (
        retrieval_recall(
            ["Shirley Temple", "Kiss and Tell (1945 film)"], ["kiss and tell (1945 film)", "Shirley  Temple", "Other"]
        )
        == 1.0
    )
    assert retrieval_recall(["Shirley Temple", "Kiss and Tell (1945 film)"], ["Shirley Temple"]) == 0.0
    assert retrieval_recall([], ["x"]) is None


def test_score_dict_and_none_prediction():
    assert score("Paris", ["paris"]) == {"em": 1.0, "f1": 1.0, "acc": 1.0}
    assert score(None, ["paris"]) == {"em": 0.0, "f1": 0.0, "acc": 0.0}
    with pytest.raises(TypeError):
        exact_match("x", None)
