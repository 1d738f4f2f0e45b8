"""From program text to a Python AST, with the checks that must happen before and around parsing."""

from __future__ import annotations

import ast
import re
import warnings
from functools import cached_property
from typing import Any, Protocol, cast, overload

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


# Control and invisible characters: never in a program (comments included) nor in a text value.
INVISIBLE_CHARS: dict[str, str] = {
    "\u00ad": "SOFT HYPHEN",
    "\u180e": "MONGOLIAN VOWEL SEPARATOR",
    "\u200b": "ZERO WIDTH SPACE",
    "\u200c": "ZERO WIDTH NON-JOINER",
    "\u200d": "ZERO WIDTH JOINER",
    "\u2060": "WORD JOINER",
    "\u2061": "FUNCTION APPLICATION",
    "\u2062": "INVISIBLE TIMES",
    "\u2063": "INVISIBLE SEPARATOR",
    "\u2064": "INVISIBLE PLUS",
    "\ufeff": "ZERO WIDTH NO-BREAK SPACE",
}

_ALWAYS = "".join(FORBIDDEN_CHARS) + "".join(INVISIBLE_CHARS) + "\x7f-\x9f\ud800-\udfff\U000e0000-\U000e007f"
# In program text, tab, form feed and line breaks are fine (Python reads them as white space).
_FORBIDDEN_RE = re.compile("[\x01-\x08\x0b\x0e-\x1f" + _ALWAYS + "]")
# In a text value, tab, line feed and carriage return are fine; form feed is not.
_FORBIDDEN_IN_TEXT_RE = re.compile("[\x01-\x08\x0b\x0c\x0e-\x1f" + _ALWAYS + "]")

SOURCE_LINE_WIDTH = 160  # an error shows at most this much of its source line


def char_name(ch: str) -> str:
    """A readable name for a rejected character."""
    if ch in FORBIDDEN_CHARS:
        return FORBIDDEN_CHARS[ch]
    if ch in INVISIBLE_CHARS:
        return INVISIBLE_CHARS[ch]
    code = ord(ch)
    if 0xD800 <= code <= 0xDFFF:
        return "lone surrogate"
    if 0xE0000 <= code <= 0xE007F:
        return "TAG CHARACTER"
    return "control character"


def forbidden_in_text(value: str) -> tuple[int, str] | None:
    """(index, character) of the first character a text value may not hold, or None."""
    m = _FORBIDDEN_IN_TEXT_RE.search(value)
    return (m.start(), m.group()) if m else None


def split_lines(source: str) -> list[str]:
    """Lines as Python's tokenizer counts them: only \\n ends a line once newlines are normalised."""
    return source.split("\n")


def normalise_newlines(source: str) -> str:
    """\\r\\n and \\r become \\n, as Python's tokenizer reads them (so spans and lines agree with the AST)."""
    return source.replace("\r\n", "\n").replace("\r", "\n") if "\r" in source else source


_IDENT_AT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Located(Protocol):
    """An AST node with a position (statements, expressions, keywords...): its 1-based lines and UTF-8 byte
    columns, as the parser sets them."""

    lineno: int
    col_offset: int
    end_lineno: int | None
    end_col_offset: int | None


class SourceMap:
    """Maps AST nodes to exact 1-based character spans and source lines."""

    def __init__(self, source: str, tree: ast.Module | None = None) -> None:
        self.source = source
        self.tree = tree
        self.lines = split_lines(source) if isinstance(source, str) else []

    @cached_property
    def _atok(self) -> asttokens.ASTText | None:
        # ASTText reads positions from the AST itself and tokenizes only where the AST has none, so
        # its cost does not grow with the tree (ASTTokens marks every token of a 60 KB line: ~1 s).
        if self.tree is None:
            return None
        try:
            return asttokens.ASTText(self.source, tree=self.tree)
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

    @overload
    def span(self, node: Located) -> Span: ...

    @overload
    def span(self, node: ast.AST) -> Span | None: ...

    def span(self, node: ast.AST | Located) -> Span | None:
        """The node's span; None for a node without a position (a node with `lineno` has all four)."""
        if not hasattr(node, "lineno"):
            return None
        node = cast(Located, node)
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

    def ast_span(self, node: Located) -> Span:
        """The span from the AST's own (UTF-8 byte) offsets, converted to characters; no tokenizing."""
        l1, l2 = node.lineno, node.end_lineno or node.lineno
        c1 = self._char_col(l1, node.col_offset)
        c2 = self._char_col(l2, node.end_col_offset if node.end_col_offset is not None else node.col_offset)
        return Span(l1, c1 + 1, l2, c2 + 1)

    def segment(self, node: Located) -> str:
        """The exact source text of a (possibly multi-line) node."""
        l1, l2 = node.lineno, node.end_lineno or node.lineno
        first_line, last_line = self.line(l1), self.line(l2)
        if first_line is None or last_line is None:
            return ""
        if l1 == l2:
            return self.raw_text(node)
        first = first_line.encode("utf-8")[node.col_offset :].decode("utf-8", errors="replace")
        last = last_line.encode("utf-8")[: node.end_col_offset].decode("utf-8", errors="replace")
        return "\n".join([first, *self.lines[l1 : l2 - 1], last])

    def identifier_at(self, lineno: int, byte_col: int, name: str) -> bool:
        """True when the source holds exactly the ASCII identifier `name` at this position (so a name that
        only reads as `name` after Unicode normalisation, such as 'ｆinal_answer', is caught)."""
        text = self.line(lineno)
        if text is None:
            return False
        rest = text.encode("utf-8")[byte_col : byte_col + len(name) + 4].decode("utf-8", errors="replace")
        m = _IDENT_AT.match(rest)
        if m is None or m.group() != name:
            return False
        after = rest[m.end() : m.end() + 1]
        return not after or not ("a" + after).isidentifier()

    def window(self, lineno: int, col: int) -> tuple[str | None, int]:
        """The source line, cut to SOURCE_LINE_WIDTH around 1-based column `col`; and the columns cut."""
        text = self.line(lineno)
        if text is None or len(text) <= SOURCE_LINE_WIDTH:
            return text, 0
        start = max(0, min(col - 1 - 40, len(text) - SOURCE_LINE_WIDTH))
        end = start + SOURCE_LINE_WIDTH
        head = "..." if start > 0 else ""
        tail = "..." if end < len(text) else ""
        return head + text[start:end] + tail, start - len(head)

    def raw_text(self, node: Located) -> str:
        """The exact source text of a node, from the AST's own offsets (used to spot normalised identifiers)."""
        l1, l2 = node.lineno, node.end_lineno or node.lineno
        text = self.line(l1)
        if l1 != l2 or text is None:
            return ""
        raw = text.encode("utf-8")
        return raw[node.col_offset : node.end_col_offset].decode("utf-8", errors="replace")

    def error(self, cls: type[DslError], message: str, node: ast.AST | None = None, **kw: Any) -> DslError:
        span = self.span(node) if node is not None else None
        return self.error_at(cls, message, span, **kw)

    def error_at(self, cls: type[DslError], message: str, span: Span | None, **kw: Any) -> DslError:
        """An error at `span` with a bounded window of its source line."""
        line, shift = self.window(span.line, span.col) if span else (None, 0)
        err = cls(message, span, source_line=line, **kw)
        err.source_shift = shift
        return err


def _position(source: str, index: int) -> tuple[int, int]:
    line = source.count("\n", 0, index) + 1
    col = index - (source.rfind("\n", 0, index) + 1) + 1
    return line, col


def parse_source(source: str, limits: Limits) -> tuple[ast.Module | None, SourceMap, list[DslError]]:
    """Check size and characters, then parse. Returns the tree (or None) and every error found."""
    if not isinstance(source, str):
        return None, SourceMap(""), [DslSyntaxError(f"program must be text, got {type(source).__name__}")]
    source, smap, too_large = _check_size(source, limits)
    if too_large is not None:
        return None, smap, [too_large]
    errors = _forbidden_characters(source, smap)
    if errors:
        return None, smap, errors
    parsed = _parse(source, smap)
    if isinstance(parsed, DslError):
        return None, smap, [parsed]
    smap.tree = parsed
    return parsed, smap, []


def _check_size(source: str, limits: Limits) -> tuple[str, SourceMap, DslError | None]:
    """The source with its newlines normalised, its SourceMap, and the error when it is over the size limit."""
    at_least = len(source) > 2 * limits.max_source_bytes  # over the limit even with every CRLF made one byte
    if at_least:
        smap = SourceMap("")  # nothing of a huge text is split into lines or copied
        size = len(source)  # characters: a lower bound of its bytes
    else:
        source = normalise_newlines(source)
        smap = SourceMap(source)
        size = len(source.encode("utf-8", errors="surrogatepass"))
    if size > limits.max_source_bytes:
        return (
            source,
            smap,
            LimitExceeded(
                f"program is {'at least ' if at_least else ''}{size} bytes; the limit is {limits.max_source_bytes}",
                limit="max_source_bytes",
                value=size,
            ),
        )
    return source, smap, None


def _forbidden_characters(source: str, smap: SourceMap) -> list[DslError]:
    """An error for each character a program may not hold (the first 20)."""
    errors: list[DslError] = []
    for match in _FORBIDDEN_RE.finditer(source):
        ch = match.group()
        line, col = _position(source, match.start())
        errors.append(
            smap.error_at(
                DisallowedCharacter,
                f"character U+{ord(ch):04X} ({char_name(ch)}) is not allowed in a program",
                Span(line, col, line, col + 1),
            )
        )
        if len(errors) >= 20:
            break
    return errors


def _parse(source: str, smap: SourceMap) -> ast.Module | DslError:
    """Python's parse of the checked source, or the error it gives."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences etc. are not our concern here
            return ast.parse(source, mode="exec")
    except SyntaxError as e:
        line = e.lineno or 1
        col = e.offset or 1
        end_line = e.end_lineno or line
        end_col = e.end_offset if e.end_offset and (end_line > line or e.end_offset > col) else col + 1
        msg = e.msg
        span = Span(line, col, end_line, end_col)
        if "too many nested" in msg or "too complex" in msg:
            return smap.error_at(LimitExceeded, f"program is nested too deeply ({msg})", span, limit="max_depth")
        return smap.error_at(DslSyntaxError, msg, span)
    except (MemoryError, RecursionError) as e:
        return LimitExceeded(
            f"program is too deeply nested or too large to parse ({type(e).__name__})", limit="max_depth"
        )
    except ValueError as e:  # e.g. source code string cannot contain null bytes
        return DslSyntaxError(str(e))
