"""Static validation: one pass over the whole tree that reports every error with its exact span."""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from .binding import Binding, bind
from .errors import (
    ArgumentOutOfRange,
    ArityError,
    AssignToTool,
    DisallowedCharacter,
    DisallowedConstruct,
    DslError,
    LimitExceeded,
    MissingFinalAnswer,
    Span,
    TooManyErrors,
    TypeMismatch,
    UndefinedName,
    UnknownKeyword,
    UnknownTool,
    UseBeforeAssignment,
    ValidationFailed,
)
from .fstrings import check_fstring_source
from .language import DEFAULT_LANGUAGE, FINAL_ANSWER, ExprInfo, Language
from .limits import Limits
from .nodes import describe
from .program import Program, Statement, freeze
from .source import SourceMap, char_name, forbidden_in_text, parse_source
from .tools import ToolSpec, ValueType

IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
UNKNOWN = ExprInfo(None, 0)
MAX_HINTS = 10  # "did you mean" hints computed per validation (each costs a fuzzy match)
_HINT_MAX_NAME = 64
_HINT_MAX_CANDIDATES = 1_000


@dataclass
class ValidationResult:
    program: Program | None
    errors: list[DslError]

    @property
    def ok(self) -> bool:
        return self.program is not None


class Checker:
    """Walks a module once; collects errors (at most `limits.max_errors`); resolves every name read to the
    statement that defined it; never raises for a bad program."""

    def __init__(self, language: Language, limits: Limits, smap: SourceMap) -> None:
        self.language = language
        self.limits = limits
        self.smap = smap
        self.errors: list[DslError] = []
        self.omitted = 0  # errors found past limits.max_errors
        self.hints_left = MAX_HINTS
        self.types: dict[str, ExprInfo] = {}
        self.defined_at: dict[str, int] = {}  # name -> index of the latest statement assigning it
        self.assigned_later: dict[str, int] = {}  # name -> first line that assigns it
        self.bound: dict[int, dict[str, ast.AST]] = {}  # id(call) -> parameter name -> argument node
        self._reads: list[str] = []
        self._binds: dict[str, int] = {}
        self._calls = 0
        self._depth = 0
        self.tools_used: set[str] = set()

    # -- helpers usable by extension node kinds --------------------------------------------
    def error(self, cls: type[DslError], message: str, node: ast.AST | None, **kw: Any) -> ExprInfo:
        if len(self.errors) >= self.limits.max_errors:
            self.omitted += 1  # counted, not built: no span, no source line
        else:
            self.errors.append(self.smap.error(cls, message, node, **kw))
        return UNKNOWN

    def add(self, err: DslError) -> None:
        """Record an error built elsewhere (same cap as `error`)."""
        if len(self.errors) >= self.limits.max_errors:
            self.omitted += 1
        else:
            self.errors.append(err)

    def did_you_mean(self, name: str, candidates: Iterable[str]) -> str | None:
        """A fuzzy "did you mean" hint, for the first MAX_HINTS errors only (each costs a fuzzy match)."""
        if self.hints_left <= 0 or len(name) > _HINT_MAX_NAME or len(self.errors) >= self.limits.max_errors:
            return None
        self.hints_left -= 1
        pool = [c for c in candidates if len(c) <= _HINT_MAX_NAME][:_HINT_MAX_CANDIDATES]
        match = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
        return f"Did you mean '{match[0]}'?" if match else None

    def disallowed(self, node: ast.AST, what: str | None = None, hint: str | None = None) -> ExprInfo:
        what = what or describe(node)
        return self.error(DisallowedConstruct, f"{what} is not allowed", node, construct=what, hint=hint)

    def check_length(self, n: int, node: ast.AST) -> bool:
        if n > self.limits.max_string_length:
            self.error(
                LimitExceeded,
                f"this text is at least {n} characters long; the limit is {self.limits.max_string_length}",
                node,
                limit="max_string_length",
                value=n,
            )
            return False
        return True

    def check_text(self, value: str, node: ast.AST) -> bool:
        """A text constant (after escapes are decoded) may not hold control or invisible characters."""
        bad = forbidden_in_text(value)
        if bad is None:
            return True
        at, ch = bad
        self.error(
            DisallowedCharacter,
            f"text holds U+{ord(ch):04X} ({char_name(ch)}) at character {at + 1}; "
            "control and invisible characters are not allowed in text",
            node,
            hint="Remove it (escapes such as \\x00 or \\u200b count too).",
        )
        return False

    def expr(self, node: ast.AST, depth: int = 0) -> ExprInfo:
        if depth > self.limits.max_depth:
            return self.error(
                LimitExceeded, f"expression nested deeper than {self.limits.max_depth} levels", node, limit="max_depth"
            )
        handler = _EXPR_HANDLERS.get(type(node))
        if handler is not None:
            return handler(self, node, depth)
        kind = self.language.nodes.get(type(node))
        if kind is not None:
            outer, self._depth = self._depth, depth
            try:
                info = kind.check(node, self)
            finally:
                self._depth = outer
            if info is not None:
                return info
        return self.disallowed(node)

    def sub(self, node: ast.AST) -> ExprInfo:
        """Check a child expression (for extension node kinds)."""
        return self.expr(node, self._depth + 1)

    # -- identifiers -------------------------------------------------------------------------
    def _identifier_ok(self, name: str, node: ast.Name | ast.keyword) -> bool:
        if not IDENTIFIER.match(name):
            if not name.isascii():
                self.error(DisallowedCharacter, f"identifier {name!r} must be plain ASCII", node)
            else:
                self.error(
                    DisallowedConstruct,
                    f"identifier {name!r} must start with an ASCII letter and hold only letters, digits and '_'",
                    node,
                    construct="identifier",
                )
            return False
        if not self.smap.identifier_at(node.lineno, node.col_offset, name):
            self.error(
                DisallowedCharacter,
                f"identifier {name!r} must be written in plain ASCII (here it only "
                "reads as that name after Unicode normalisation)",
                node,
            )
            return False
        return True

    # -- expressions ---------------------------------------------------------------------------
    def _constant(self, node: ast.Constant, depth: int) -> ExprInfo:
        v = node.value
        if isinstance(v, bool) or v is None or v is Ellipsis:
            return self.disallowed(node, f"constant {v!r}")
        if isinstance(v, str):
            if not self.check_text(v, node):
                return UNKNOWN
            return ExprInfo(ValueType.TEXT, len(v)) if self.check_length(len(v), node) else UNKNOWN
        if isinstance(v, int):
            if v > self.limits.max_int:
                return self.error(
                    LimitExceeded,
                    f"integer {v if v < 10**30 else 'literal'} is over the limit {self.limits.max_int}",
                    node,
                    limit="max_int",
                )
            return ExprInfo(ValueType.INT, len(str(v)))
        return self.disallowed(node, f"{type(v).__name__} constant")

    def _name(self, node: ast.Name, depth: int) -> ExprInfo:
        name = node.id
        if not self._identifier_ok(name, node):
            return UNKNOWN
        if name in self.types:
            self._reads.append(name)
            if name in self.defined_at:
                self._binds[name] = self.defined_at[name]
            return self.types[name]
        if name in self.language.tools:
            return self.disallowed(
                node, f"using tool '{name}' as a value", hint=f"Call it: {self.language.tools[name].signature()}"
            )
        if name in self.assigned_later:
            return self.error(
                UseBeforeAssignment,
                f"'{name}' is used before it is assigned (on line {self.assigned_later[name]})",
                node,
                name=name,
                hint="Move that assignment above this line.",
            )
        return self.error(
            UndefinedName, f"name '{name}' is not defined", node, name=name, hint=self.did_you_mean(name, self.types)
        )

    def _fstring_source(self, node: ast.JoinedStr) -> bool:
        """The raw text of the f-string must use only the fields of the language (on every Python)."""
        text = self.smap.segment(node)
        found = check_fstring_source(text)
        if found is None:
            return True
        offset, problem = found
        line = node.lineno + text.count("\n", 0, offset)
        col = offset - (text.rfind("\n", 0, offset) + 1) + 1
        if line == node.lineno:
            col += self.smap.span(node).col - 1
        self.add(
            self.smap.error_at(
                DisallowedConstruct,
                f"f-string field outside the language: {problem}",
                Span(line, col, line, col + 1),
                construct="f-string field",
                hint="Write {name} with a plain variable name.",
            )
        )
        return False

    def _fstring(self, node: ast.JoinedStr, depth: int) -> ExprInfo:
        total, ok = 0, True
        for part in node.values:
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                ok = self.check_text(part.value, node) and ok
                total += len(part.value)
                continue
            if not isinstance(part, ast.FormattedValue):
                self.disallowed(part)
                ok = False
                continue
            if part.conversion != -1:
                self.disallowed(
                    part,
                    f"conversion '!{chr(part.conversion)}' in an f-string",
                    hint="Write {name} with no conversion.",
                )
                ok = False
                continue
            if part.format_spec is not None:
                self.disallowed(part.format_spec, "format spec in an f-string", hint="Write {name} with no ':spec'.")
                ok = False
                continue
            value = part.value
            if not isinstance(value, (ast.Name, ast.Constant)):
                self.disallowed(
                    value,
                    f"{describe(value)} inside an f-string field",
                    hint="Only a variable name or a constant may stand between braces.",
                )
                ok = False
                continue
            info = self.expr(value, depth + 1)
            if info.type is None:
                ok = False
            elif info.type is ValueType.DOCS:
                self.error(
                    TypeMismatch,
                    "docs cannot be put into text; pass them to answer(...) instead",
                    value,
                    expected="text",
                    got="docs",
                )
                ok = False
            else:
                total += info.min_len
        if not ok or not self._fstring_source(node):  # the source check only after the tree's, so one error each
            return UNKNOWN
        return ExprInfo(ValueType.TEXT, total) if self.check_length(total, node) else UNKNOWN

    def _call(self, node: ast.Call, depth: int) -> ExprInfo:
        func = node.func
        if not isinstance(func, ast.Name):
            self.disallowed(
                func, f"calling {describe(func)}", hint="Only tools may be called: " + ", ".join(self.language.tools)
            )
            self._check_args_only(node, depth)
            return UNKNOWN
        spec = self.language.tools.get(func.id) if self._identifier_ok(func.id, func) else None
        if spec is None:
            self._unknown_tool(func)
            self._check_args_only(node, depth)  # every error inside the arguments is reported too
            return UNKNOWN
        self._calls += 1
        self.tools_used.add(spec.name)
        b = bind(spec, node)
        self._binding_errors(spec, node, b)
        self.bound[id(node)] = b.args
        self._check_bound_args(spec, b, depth)
        for arg in [*b.surplus, *(k.value for k in b.unknown + b.repeated), *(u.value for u in b.unpacked)]:
            self.expr(arg, depth + 1)
        return ExprInfo(spec.returns, 0)

    def _unknown_tool(self, func: ast.Name) -> None:
        """The error for a call of a plain name that is no tool (none when the name itself was reported)."""
        if IDENTIFIER.match(func.id) and func.id not in self.language.tools:
            if func.id in self.types or func.id in self.assigned_later:
                self.error(
                    UnknownTool,
                    f"'{func.id}' is a variable, not a tool",
                    func,
                    name=func.id,
                    hint=f"Tools: {', '.join(self.language.tools)}.",
                )
            else:
                self.error(
                    UnknownTool,
                    f"'{func.id}' is not a tool",
                    func,
                    name=func.id,
                    hint=self.did_you_mean(func.id, self.language.tools) or f"Tools: {', '.join(self.language.tools)}.",
                )

    def _binding_errors(self, spec: ToolSpec, node: ast.Call, b: Binding) -> None:
        """The errors of how a tool call's arguments bind to its parameters, then of its keywords' names."""
        for u in b.unpacked:
            self.disallowed(u, "keyword unpacking (**x)" if isinstance(u, ast.keyword) else None)
        if b.surplus:
            self._surplus(spec, b.surplus)
        for kw in b.unknown:
            name = cast(str, kw.arg)  # bind() puts a keyword without a name (**x) in `unpacked`, never here
            if self._identifier_ok(name, kw):
                self.error(
                    UnknownKeyword,
                    f"{spec.name}() has no parameter '{name}'",
                    kw,
                    name=name,
                    hint=self.did_you_mean(name, [p.name for p in spec.params]) or f"Signature: {spec.signature()}",
                )
        for kw in b.repeated:
            self.error(ArityError, f"{spec.name}() got two values for '{kw.arg}'", kw)
        for name in b.missing:
            self.error(
                ArityError,
                f"{spec.name}() is missing its argument '{name}'",
                node,
                hint=f"Signature: {spec.signature()}",
            )
        unknown = {id(kw) for kw in b.unknown}  # a set: a program may hold thousands of keywords
        for kw in node.keywords:
            if kw.arg is not None and id(kw) not in unknown:
                self._identifier_ok(kw.arg, kw)

    def _surplus(self, spec: ToolSpec, surplus: list[ast.AST]) -> None:
        """One error for the positional arguments past the tool's last parameter, spanning all of them."""
        first, last = surplus[0], surplus[-1]
        span = self.smap.span(first)
        end = self.smap.span(last)
        if span and end:
            span = Span(span.line, span.col, end.end_line, end.end_col)
        self.add(
            self.smap.error_at(
                ArityError,
                f"{spec.name}() takes at most {len(spec.params)} argument"
                f"{'s' if len(spec.params) != 1 else ''}, got {len(spec.params) + len(surplus)}",
                span,
                hint=f"Signature: {spec.signature()}",
            )
        )

    def _check_bound_args(self, spec: ToolSpec, b: Binding, depth: int) -> None:
        """Check each bound argument, then that its type is its parameter's and a constant int is in range."""
        params = {p.name: p for p in spec.params}  # bind() binds only parameter names
        for pname, arg in b.args.items():
            param = params[pname]
            info = self.expr(arg, depth + 1)
            if info.type is not None and info.type is not param.type:
                self.error(
                    TypeMismatch,
                    f"{spec.name}() expects {param.type.value} for '{pname}', got {info.type.value}",
                    arg,
                    expected=param.type.value,
                    got=info.type.value,
                    hint=_type_hint(spec, param.type, info.type),
                )
            elif isinstance(arg, ast.Constant) and type(arg.value) is int:
                problem = param.out_of_range(arg.value, self.limits)
                if problem:
                    self.error(ArgumentOutOfRange, f"{spec.name}(): {problem}", arg, tool=spec.name, param=pname)

    def _check_args_only(self, node: ast.Call, depth: int) -> None:
        for arg in node.args:
            self.expr(arg.value if isinstance(arg, ast.Starred) else arg, depth + 1)
        for kw in node.keywords:
            self.expr(kw.value, depth + 1)

    # -- statements ------------------------------------------------------------------------------
    def module(self, tree: ast.Module) -> list[Statement]:
        body = tree.body
        if len(body) > self.limits.max_statements:
            self.add(
                LimitExceeded(
                    f"program has {len(body)} statements; the limit is {self.limits.max_statements}",
                    limit="max_statements",
                )
            )
            return []
        for stmt in body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                self.assigned_later.setdefault(stmt.targets[0].id, stmt.lineno)
        statements: list[Statement] = []
        for stmt in body:
            if (
                isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            ):
                continue  # a bare string is a comment
            if isinstance(stmt, ast.Expr):
                self.disallowed(stmt, "expression statement", hint="Assign the value: name = ...")
                continue
            if not isinstance(stmt, ast.Assign):
                self.disallowed(stmt)
                continue
            made = self._assign(stmt, len(statements))
            if made is not None:
                statements.append(made)
        if not any(
            isinstance(s, ast.Assign) and any(isinstance(t, ast.Name) and t.id == FINAL_ANSWER for t in s.targets)
            for s in body
        ):
            self.add(
                MissingFinalAnswer(
                    f"the program never assigns '{FINAL_ANSWER}'",
                    hint=f'End with: {FINAL_ANSWER} = answer("Given: ... Answer the question: ...")',
                )
            )
        if self._calls > self.limits.max_tool_calls:
            self.add(
                LimitExceeded(
                    f"program makes {self._calls} tool calls; the limit is {self.limits.max_tool_calls}",
                    limit="max_tool_calls",
                    value=self._calls,
                )
            )
        return statements

    def _assign(self, stmt: ast.Assign, index: int) -> Statement | None:
        self._reads, self._binds, calls_before = [], {}, self._calls
        info = self.expr(stmt.value, 0)  # checked whatever the target, so that every error is reported
        reads, binds = tuple(dict.fromkeys(self._reads)), dict(self._binds)
        if len(stmt.targets) != 1:
            self.disallowed(stmt.targets[1], "chained assignment (a = b = ...)")
            return None
        target = stmt.targets[0]
        if not isinstance(target, ast.Name):
            self.disallowed(target, f"assignment to {describe(target)}")
            return None
        name = target.id
        if not self._identifier_ok(name, target):
            return None
        if name in self.language.tools:
            self.error(
                AssignToTool,
                f"'{name}' is a tool and cannot be assigned",
                target,
                name=name,
                hint="Pick another variable name.",
            )
            return None
        if name == FINAL_ANSWER and info.type is ValueType.DOCS:
            self.error(
                TypeMismatch,
                f"'{FINAL_ANSWER}' must be text, got docs",
                stmt.value,
                expected="text",
                got="docs",
                hint="Pass the docs to answer(...).",
            )
            info = UNKNOWN
        self.types[name] = info
        if info.type is None:
            self.defined_at.pop(name, None)
            return None
        self.defined_at[name] = index
        return Statement(
            index=index,
            node=stmt,
            target=name,
            type=info.type,
            span=self.smap.ast_span(stmt),
            source=self.smap.segment(stmt),
            reads=reads,
            binds=binds,
            calls=self._calls - calls_before,
        )


def _type_hint(spec: ToolSpec, expected: ValueType, got: ValueType) -> str | None:
    if expected is ValueType.DOCS:
        return "docs must be a value that came from retrieve(...)."
    if got is ValueType.DOCS:
        return "docs can only be passed to a docs parameter, such as answer(query, docs)."
    return f"Signature: {spec.signature()}"


_EXPR_HANDLERS: dict[type[ast.AST], Callable[[Checker, Any, int], ExprInfo]] = {
    ast.Constant: Checker._constant,
    ast.Name: Checker._name,
    ast.JoinedStr: Checker._fstring,
    ast.Call: Checker._call,
}


def validate(source: str, language: Language = DEFAULT_LANGUAGE, limits: Limits | None = None) -> ValidationResult:
    """Validate program text; never raises for a bad program: the errors are in the result (at most
    `limits.max_errors` of them, then one TooManyErrors that counts the rest)."""
    limits = limits or Limits()
    tree, smap, errors = parse_source(source, limits)
    if tree is None:
        return ValidationResult(None, errors)
    checker = Checker(language, limits, smap)
    try:
        statements = checker.module(tree)
    except RecursionError:
        checker.add(LimitExceeded("program is nested too deeply", limit="max_depth"))
        statements = []
    errors = sorted(checker.errors, key=lambda e: (e.span.line, e.span.col) if e.span else (10**9, 0))
    if checker.omitted:
        errors.append(
            TooManyErrors(
                f"... and {checker.omitted} more error{'s' if checker.omitted != 1 else ''} "
                f"(only the first {limits.max_errors} are shown)",
                omitted=checker.omitted,
            )
        )
    if errors:
        return ValidationResult(None, errors)
    return ValidationResult(
        Program(
            smap.source,
            tree,
            tuple(statements),
            language,
            limits,
            smap,
            frozenset(checker.tools_used),
            freeze(checker.bound),
        ),
        [],
    )


def parse_program(source: str, language: Language = DEFAULT_LANGUAGE, limits: Limits | None = None) -> Program:
    """Validate and return the Program, or raise ValidationFailed with every error."""
    result = validate(source, language, limits)
    if result.program is None:
        raise ValidationFailed(result.errors)
    return result.program
