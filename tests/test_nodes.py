import ast

import pytest

from pyrag_dsl.grammar import nodes, validate

pytestmark = pytest.mark.network_free


def test_every_ast_node_class_of_this_python_is_classified():
    assert nodes.unclassified() == [], "classify these in pyrag_dsl/grammar/nodes.py"


def test_classification_sets_do_not_overlap():
    assert not nodes.ALLOWED & nodes.DISALLOWED.keys()
    assert not nodes.ALLOWED & nodes.STRUCTURAL
    assert not nodes.STRUCTURAL & nodes.DISALLOWED.keys()


def test_an_unclassified_node_is_rejected_by_name(monkeypatch):
    # a future node class the table does not know still gets a DisallowedConstruct
    class FutureNode(ast.expr):
        _fields = ()

    assert nodes.describe(FutureNode()) == "unclassified construct FutureNode"
    monkeypatch.setattr(nodes, "ast_node_classes", lambda: ["Module", "FutureNode"])
    assert nodes.unclassified() == ["FutureNode"]


def test_every_disallowed_statement_kind_names_the_construct():
    err = validate("for x in y:\n    pass\nfinal_answer = 'x'\n").errors[0]
    assert err.message == "for loop is not allowed"
    assert err.details["construct"] == "for loop"
