"""The `pyrag-dsl` command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.text import Text

from . import __version__
from .grammar import DEFAULT_LANGUAGE, DslError, Language, Limits, validate

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A problem with how the command was called (missing file...): exit code 2."""


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    p = Path(path)
    if not p.exists():
        raise UsageError(f"no such file: {path}")
    if p.is_dir():
        raise UsageError(f"{path} is a directory, not a program file")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None


def _language(args: argparse.Namespace) -> Language:
    lang = DEFAULT_LANGUAGE
    if getattr(args, "enable", None):
        from .grammar import extensions

        for name in args.enable:
            kind = {"text_concat": extensions.TEXT_CONCAT}.get(name)
            if kind is None:
                raise UsageError(f"unknown node kind {name!r}; known: text_concat")
            lang = lang.with_node(kind)
    return lang


def render_error(console: Console, err: DslError, path: str) -> None:
    where = f"{path}:{err.span.line}:{err.span.col}: " if err.span else f"{path}: "
    head = Text(where, style="bold")
    head.append(f"{err.kind}", style="bold red")
    head.append(f": {err.message}")
    console.print(head, highlight=False)
    if err.source_line is not None and err.span is not None:
        console.print(Text(f"  {err.span.line:>4} | ", style="dim") + Text(err.source_line), highlight=False)
        caret = err.caret_line()
        if caret:
            console.print(Text("       | ", style="dim") + Text(caret, style="bold red"), highlight=False)
    if err.hint:
        console.print(Text(f"  hint: {err.hint}", style="cyan"), highlight=False)


def cmd_check(args: argparse.Namespace, console: Console) -> int:
    source = _read_text(args.program)
    result = validate(source, _language(args), Limits())
    if args.json:
        print(json.dumps([e.to_dict() for e in result.errors], ensure_ascii=False, indent=2))
        return EXIT_OK if result.ok else EXIT_INVALID
    name = "<stdin>" if args.program == "-" else args.program
    if result.ok:
        prog = result.program
        console.print(f"[green]OK[/green] {name}: {len(prog.statements)} statements, {prog.call_count} tool calls")
        return EXIT_OK
    for err in result.errors:
        render_error(console, err, name)
    n = len(result.errors)
    console.print(f"[red]{n} error{'s' if n != 1 else ''}[/red] in {name}")
    return EXIT_INVALID


def cmd_grammar(args: argparse.Namespace, console: Console) -> int:
    lang = _language(args)
    text = lang.to_lark() if args.format == "lark" else lang.to_gbnf()
    sys.stdout.write(text)
    return EXIT_OK


def cmd_tools(args: argparse.Namespace, console: Console) -> int:
    lang = _language(args)
    console.print(lang.describe_tools(), highlight=False, markup=False)
    if lang.nodes:
        console.print(lang.describe_nodes(), highlight=False, markup=False)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyrag-dsl",
        description="Multi-hop question answering by small programs over retrieve() and answer(), "
        "run by a closed AST interpreter (never exec).",
    )
    parser.add_argument("--version", action="version", version=f"pyrag-dsl {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add_enable(p: argparse.ArgumentParser) -> None:
        p.add_argument("--enable", action="append", metavar="KIND",
                       help="enable an extra node kind of the language (text_concat); repeatable")

    p = sub.add_parser("check", help="validate a program; print every error with its line and a caret",
                       description="Validate a program against the language. Exit 0 when valid, 1 when "
                       "invalid, 2 on usage errors.")
    p.add_argument("program", help="program file (.py), or - for standard input")
    p.add_argument("--json", action="store_true",
                   help="print errors as a JSON list of {type, message, line, col, end_line, end_col, ...}")
    add_enable(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("grammar", help="print the language as a grammar for constrained decoding",
                       description="Print the program grammar: Lark/EBNF (vLLM guided grammar, xgrammar) "
                       "or GBNF (llama.cpp).")
    p.add_argument("--format", choices=("lark", "gbnf"), default="lark", help="grammar format (default: lark)")
    add_enable(p)
    p.set_defaults(func=cmd_grammar)

    p = sub.add_parser("tools", help="list the tools and their signatures")
    add_enable(p)
    p.set_defaults(func=cmd_tools)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    console = Console(stderr=False, soft_wrap=True)
    err_console = Console(stderr=True)
    try:
        return args.func(args, console)
    except UsageError as e:
        err_console.print(Text("error: ", style="red") + Text(str(e)))
        return EXIT_USAGE
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/red]")
        return 130
    except Exception as e:  # a one-line error for people; the traceback with --debug
        if args.debug:
            raise
        err_console.print(Text("error: ", style="red") + Text(f"{type(e).__name__}: {e} (--debug shows the traceback)"))
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
