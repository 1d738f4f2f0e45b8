"""Every `ast` node class, classified: allowed in the language, or rejected with a human name.

The validator accepts only what its handlers know; this table gives the names used in
DisallowedConstruct messages, and a test fails when the running Python has a class missing here.
"""

from __future__ import annotations

import ast

# Node classes that the core language uses.
ALLOWED: frozenset[str] = frozenset(
    {"Module", "Assign", "Expr", "Name", "Load", "Store", "Constant", "JoinedStr", "FormattedValue", "Call", "keyword"}
)

# Abstract bases, contexts and helper classes that never stand alone in a tree we accept.
STRUCTURAL: frozenset[str] = frozenset(
    {
        "AST",
        "mod",
        "stmt",
        "expr",
        "expr_context",
        "boolop",
        "operator",
        "unaryop",
        "cmpop",
        "excepthandler",
        "pattern",
        "type_ignore",
        "slice",
        "type_param",
        "Interactive",
        "Expression",
        "FunctionType",
        "Suite",
        "Param",
        "AugLoad",
        "AugStore",
        "Del",
        "TypeIgnore",
        "arguments",
        "arg",
        "alias",
        "withitem",
        "comprehension",
        "match_case",
    }
)

# Everything else, with the name a user reads in the error message.
DISALLOWED: dict[str, str] = {
    # statements
    "FunctionDef": "function definition (def)",
    "AsyncFunctionDef": "async function definition",
    "ClassDef": "class definition",
    "Return": "return statement",
    "Delete": "del statement",
    "AugAssign": "augmented assignment (+= and friends)",
    "AnnAssign": "annotated assignment",
    "For": "for loop",
    "AsyncFor": "async for loop",
    "While": "while loop",
    "If": "if statement",
    "With": "with statement",
    "AsyncWith": "async with statement",
    "Match": "match statement",
    "Raise": "raise statement",
    "Try": "try statement",
    "TryStar": "try/except* statement",
    "Assert": "assert statement",
    "Import": "import",
    "ImportFrom": "import",
    "Global": "global statement",
    "Nonlocal": "nonlocal statement",
    "Pass": "pass statement",
    "Break": "break statement",
    "Continue": "continue statement",
    "TypeAlias": "type alias statement",
    # expressions
    "BoolOp": "boolean operator (and/or)",
    "NamedExpr": "walrus operator (:=)",
    "BinOp": "binary operator",
    "UnaryOp": "unary operator",
    "Lambda": "lambda",
    "IfExp": "conditional expression (x if c else y)",
    "Dict": "dict literal",
    "Set": "set literal",
    "ListComp": "list comprehension",
    "SetComp": "set comprehension",
    "DictComp": "dict comprehension",
    "GeneratorExp": "generator expression",
    "Await": "await",
    "Yield": "yield",
    "YieldFrom": "yield from",
    "Compare": "comparison",
    "Attribute": "attribute access (x.y)",
    "Subscript": "subscript (x[i])",
    "Starred": "starred argument (*x)",
    "List": "list literal",
    "Tuple": "tuple",
    "Slice": "slice",
    "TemplateStr": "template string (t-string)",
    "Interpolation": "template string interpolation",
    # deprecated aliases still present in `ast`
    "Num": "number literal",
    "Str": "string literal",
    "Bytes": "bytes literal",
    "NameConstant": "constant",
    "Ellipsis": "ellipsis (...)",
    "_ast_Ellipsis": "ellipsis (...)",
    "Index": "subscript index",
    "ExtSlice": "extended slice",
    # operators (only reachable through rejected parents)
    "And": "and",
    "Or": "or",
    "Add": "+",
    "Sub": "-",
    "Mult": "*",
    "MatMult": "@",
    "Div": "/",
    "Mod": "%",
    "Pow": "**",
    "LShift": "<<",
    "RShift": ">>",
    "BitOr": "|",
    "BitXor": "^",
    "BitAnd": "&",
    "FloorDiv": "//",
    "Invert": "~",
    "Not": "not",
    "UAdd": "unary +",
    "USub": "unary -",
    "Eq": "==",
    "NotEq": "!=",
    "Lt": "<",
    "LtE": "<=",
    "Gt": ">",
    "GtE": ">=",
    "Is": "is",
    "IsNot": "is not",
    "In": "in",
    "NotIn": "not in",
    # other
    "ExceptHandler": "except clause",
    "MatchValue": "match pattern",
    "MatchSingleton": "match pattern",
    "MatchSequence": "match pattern",
    "MatchMapping": "match pattern",
    "MatchClass": "match pattern",
    "MatchStar": "match pattern",
    "MatchAs": "match pattern",
    "MatchOr": "match pattern",
    "TypeVar": "type parameter",
    "ParamSpec": "type parameter",
    "TypeVarTuple": "type parameter",
}


def ast_node_classes() -> list[str]:
    """Names of every AST node class the running Python defines."""
    return sorted(
        name for name in dir(ast) if isinstance(getattr(ast, name), type) and issubclass(getattr(ast, name), ast.AST)
    )


def unclassified() -> list[str]:
    known = ALLOWED | STRUCTURAL | DISALLOWED.keys()
    return [n for n in ast_node_classes() if n not in known]


def describe(node: ast.AST) -> str:
    """The user-facing name of a node's construct."""
    name = type(node).__name__
    if isinstance(node, ast.BinOp):
        return f"binary operator '{DISALLOWED.get(type(node.op).__name__, '?')}'"
    if isinstance(node, ast.UnaryOp):
        return f"unary operator '{DISALLOWED.get(type(node.op).__name__, '?')}'"
    return DISALLOWED.get(name, f"unclassified construct {name}")
