"""A tiny grammar IR with two renderers: Lark (EBNF, for vLLM/xgrammar) and GBNF (llama.cpp)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True)
class Lit:
    text: str


@dataclass(frozen=True)
class Chars:
    """One character: from `chars` and `ranges`, or with `negate` any character but those."""

    chars: str = ""
    ranges: tuple[tuple[str, str], ...] = ()
    negate: bool = False


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class Seq:
    items: tuple["Node", ...]


@dataclass(frozen=True)
class Alt:
    items: tuple["Node", ...]


@dataclass(frozen=True)
class Rep:
    item: "Node"
    min: int = 0
    max: int | None = None


Node = Union[Lit, Chars, Ref, Seq, Alt, Rep]


def seq(*items: Node) -> Seq:
    return Seq(tuple(items))


def alt(*items: Node) -> Alt:
    return Alt(tuple(items))


def opt(item: Node) -> Rep:
    return Rep(item, 0, 1)


def star(item: Node) -> Rep:
    return Rep(item, 0, None)


def plus(item: Node) -> Rep:
    return Rep(item, 1, None)


def between(item: Node, low: int, high: int) -> Rep:
    return Rep(item, low, high)


def _class_char(ch: str) -> str:
    if ch.isascii() and (ch.isalnum() or ch in " _"):
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _class_body(c: Chars) -> str:
    body = "".join(_class_char(ch) for ch in c.chars)
    body += "".join(f"{_class_char(lo)}-{_class_char(hi)}" for lo, hi in c.ranges)
    return ("^" if c.negate else "") + body


def _quote(text: str) -> str:
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _render(node: Node, flavor: str, top: bool = True) -> str:
    if isinstance(node, Lit):
        return _quote(node.text)
    if isinstance(node, Chars):
        body = _class_body(node)
        return f"/[{body}]/" if flavor == "lark" else f"[{body}]"
    if isinstance(node, Ref):
        return _rule_name(node.name, flavor)
    if isinstance(node, Seq):
        inner = " ".join(_render(i, flavor, False) for i in node.items)
        return inner if top else f"({inner})"
    if isinstance(node, Alt):
        inner = " | ".join(_render(i, flavor, True) for i in node.items)
        return inner if top else f"({inner})"
    if isinstance(node, Rep):
        inner = _render(node.item, flavor, False)
        if (node.min, node.max) == (0, 1):
            return f"{inner}?"
        if (node.min, node.max) == (0, None):
            return f"{inner}*"
        if (node.min, node.max) == (1, None):
            return f"{inner}+"
        if node.max is not None and 0 <= node.min <= node.max:
            return f"{inner}{{{node.min},{node.max}}}" if flavor == "gbnf" else f"{inner}~{node.min}..{node.max}"
        raise ValueError(f"unsupported repetition {node.min}..{node.max}")
    raise TypeError(f"not a grammar node: {node!r}")


def render(rules: dict[str, Node], flavor: str, start: str) -> str:
    """Render rules; `flavor` is 'lark' or 'gbnf'. The start rule is named `start` (Lark) or `root` (GBNF)."""
    if flavor not in ("lark", "gbnf"):
        raise ValueError(f"unknown grammar flavor {flavor!r}")
    top = "start" if flavor == "lark" else "root"
    sep = ":" if flavor == "lark" else "::="
    lines = [f"{top} {sep} {_rule_name(start, flavor)}"]
    for name, node in rules.items():
        lines.append(f"{_rule_name(name, flavor)} {sep} {_render(node, flavor)}")
    return "\n".join(lines) + "\n"


def _rule_name(name: str, flavor: str) -> str:
    return name if flavor == "lark" else name.replace("_", "-")
