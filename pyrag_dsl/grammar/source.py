"""From program text to a Python AST, with the checks that must happen before and around parsing."""

from __future__ import annotations

import ast
import re
import warnings
from functools import cached_property

import asttokens

from .errors import DisallowedCharacter, DslError, DslSyntaxError, LimitExceeded, Span
from .limits import Limits

# Unicode bidirectional controls (Trojan Source) and NUL.
FORBIDDEN_CHARS: dict[str, str] = {
    "\x00": "NUL",
    "\u061c": "ARABIC LETTER MARK",
    "\u200e": "LEFT-TO-RIGHT MARK",
    "\u200f": "RIGHT-TO-LEFT MARK",
    "\u202a": "LEFT-TO-RIGHT EMBEDDING",
    "\u202b": "RIGHT-TO-LEFT EMBEDDING",
    "\u202c": "POP DIRECTIONAL FORMATTING",
    "\u202d": "LEFT-TO-RIGHT OVERRIDE",
    "\u202e": "RIGHT-TO-LEFT OVERRIDE",
    "\u2066": "LEFT-TO-RIGHT ISOLATE",
    "\u2067": "RIGHT-TO-LEFT ISOLATE",
    "\u2068": "FIRST STRONG ISOLATE",
    "\u2069": "POP DIRECTIONAL ISOLATE",
}


_FORBIDDEN_RE = re.compile("[" + "".join(FORBIDDEN_CHARS) + "\ud800-\udfff]")


class SourceMap:
    """Maps AST nodes to exact 1-based character spans and source lines."""

    def __init__(self, source: str, tree: ast.Module | None = None) -> None:
        self.source = source
        self.tree = tree
        self.lines = source.splitlines()

    @cached_property
    def _atok(self) -> asttokens.ASTTokens | None:
        if self.tree is None:
            return None
        try:
            return asttokens.ASTTokens(self.source, tree=self.tree)
        except Exception:  # asttokens cannot map this tree; fall back to the AST's own offsets
            return None

    def line(self, lineno: int) -> str | None:
        if 1 <= lineno <= len(self.lines):
            return self.lines[lineno - 1]
        return None

    def _char_col(self, lineno: int, byte_col: int) -> int:
        text = self.line(lineno)
        if text is None:
            return byte_col
        return len(text.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))

    def span(self, node: ast.AST) -> Span | None:
        if not hasattr(node, "lineno"):
            return None
        atok = self._atok
        if atok is not None:
            try:
                (l1, c1), (l2, c2) = atok.get_text_positions(node, padded=False)
                if (l1, c1) != (l2, c2):
                    return Span(l1, c1 + 1, l2, c2 + 1)
            except Exception:
                pass
        # Nodes inside f-strings before Python 3.12: asttokens has no tokens, the AST has byte offsets.
        return self.ast_span(node)

    def ast_span(self, node: ast.AST) -> Span:
        """The span from the AST's own (UTF-8 byte) offsets, converted to characters; no tokenizing."""
        l1, l2 = node.lineno, node.end_lineno or node.lineno
        c1 = self._char_col(l1, node.col_offset)
        c2 = self._char_col(l2, node.end_col_offset if node.end_col_offset is not None else node.col_offset)
        return Span(l1, c1 + 1, l2, c2 + 1)

    def segment(self, node: ast.AST) -> str:
        """The exact source text of a (possibly multi-line) node."""
        l1, l2 = node.lineno, node.end_lineno or node.lineno
        if self.line(l1) is None or self.line(l2) is None:
            return ""
        if l1 == l2:
            return self.raw_text(node)
        first = self.line(l1).encode("utf-8")[node.col_offset:].decode("utf-8", errors="replace")
        last = self.line(l2).encode("utf-8")[: node.end_col_offset].decode("utf-8", errors="replace")
        return "\n".join([first, *self.lines[l1 : l2 - 1], last])

    def raw_text(self, node: ast.AST) -> str:
        """The exact source text of a node, from the AST's own offsets (used to spot normalised identifiers)."""
        l1, l2 = node.lineno, node.end_lineno or node.lineno
        if l1 != l2 or self.line(l1) is None:
            return ""
        raw = self.line(l1).encode("utf-8")
        return raw[node.col_offset : node.end_col_offset].decode("utf-8", errors="replace")

    def error(self, cls: type[DslError], message: str, node: ast.AST | None = None, **kw) -> DslError:
        span = self.span(node) if node is not None else None
        return cls(message, span, source_line=self.line(span.line) if span else None, **kw)


def _position(source: str, index: int) -> tuple[int, int]:
    line = source.count("\n", 0, index) + 1
    col = index - (source.rfind("\n", 0, index) + 1) + 1
    return line, col


def parse_source(source: str, limits: Limits) -> tuple[ast.Module | None, SourceMap, list[DslError]]:
    """Check size and characters, then parse. Returns the tree (or None) and every error found."""
    smap = SourceMap(source)
    if not isinstance(source, str):
        return None, smap, [DslSyntaxError(f"program must be text, got {type(source).__name__}")]
    size = len(source.encode("utf-8", errors="surrogatepass"))
    if size > limits.max_source_bytes:
        return None, smap, [
            LimitExceeded(
                f"program is {size} bytes; the limit is {limits.max_source_bytes}",
                limit="max_source_bytes",
                value=size,
            )
        ]
    errors: list[DslError] = []
    for match in _FORBIDDEN_RE.finditer(source):
        ch = match.group()
        line, col = _position(source, match.start())
        what = FORBIDDEN_CHARS.get(ch, "lone surrogate")
        errors.append(DisallowedCharacter(f"character U+{ord(ch):04X} ({what}) is not allowed in a program",
                                          Span(line, col, line, col + 1), source_line=smap.line(line)))
        if len(errors) >= 20:
            break
    if errors:
        return None, smap, errors
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences etc. are not our concern here
            tree = ast.parse(source, mode="exec")
    except SyntaxError as e:
        line = e.lineno or 1
        col = e.offset or 1
        end_line = e.end_lineno or line
        end_col = e.end_offset if e.end_offset and (end_line > line or e.end_offset > col) else col + 1
        msg = e.msg
        if "too many nested" in msg or "too complex" in msg:
            return None, smap, [LimitExceeded(f"program is nested too deeply ({msg})", Span(line, col, end_line, end_col),
                                              source_line=smap.line(line), limit="max_depth")]
        return None, smap, [DslSyntaxError(msg, Span(line, col, end_line, end_col), source_line=smap.line(line))]
    except (MemoryError, RecursionError) as e:
        return None, smap, [LimitExceeded(f"program is too deeply nested or too large to parse ({type(e).__name__})",
                                          limit="max_depth")]
    except ValueError as e:  # e.g. source code string cannot contain null bytes
        return None, smap, [DslSyntaxError(str(e))]
    smap.tree = tree
    return tree, smap, []
