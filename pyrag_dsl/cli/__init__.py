"""The `pyrag-dsl` command line."""

from __future__ import annotations

import argparse
import errno
import json
import sys
from pathlib import Path
from typing import Callable

from rich.console import Console
from rich.text import Text

from .. import __version__
from ..agents.llm import LLMError
from ..config import ConfigError, check_topk
from ..config.defaults import TOPK
from ..grammar import DEFAULT_LANGUAGE, Language, Limits, validate
from ..retrievers.base import RetrievalError, Retriever
from . import signals
from .common import (
    EXIT_INVALID,
    EXIT_OK,
    EXIT_PIPE,
    EXIT_RUNTIME,
    EXIT_USAGE,
    UsageError,
    progress_bar,
    read_text,
    render_error,
)
from .debug import add_debug_everywhere
from .doctor import add_doctor_command
from .eval_cmds import add_eval_commands
from .flags import add_llm_flags
from .models_cmds import add_models_commands
from .pipeline_cmds import add_pipeline_commands
from .safe_text import markup, text


def _language(args: argparse.Namespace) -> Language:
    lang = DEFAULT_LANGUAGE
    if getattr(args, "enable", None):
        from ..grammar import extensions

        for name in args.enable:
            kind = {"text_concat": extensions.TEXT_CONCAT}.get(name)
            if kind is None:
                raise UsageError(f"unknown node kind {name!r}; known: text_concat")
            lang = lang.with_node(kind)
    return lang


def cmd_check(args: argparse.Namespace, console: Console) -> int:
    source = read_text(args.program)
    result = validate(source, _language(args), Limits())
    if args.json:
        print(json.dumps([e.to_dict() for e in result.errors], ensure_ascii=False, indent=2))
        return EXIT_OK if result.ok else EXIT_INVALID
    name = "<stdin>" if args.program == "-" else args.program
    prog = result.program
    if prog is not None:
        console.print(
            f"[green]OK[/green] {markup(name)}: {len(prog.statements)} statements, {prog.call_count} tool calls"
        )
        return EXIT_OK
    for err in result.errors:
        render_error(console, err, name)
    n = len(result.errors)
    console.print(f"[red]{n} error{'s' if n != 1 else ''}[/red] in {markup(name)}")
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


def _open_retriever(args: argparse.Namespace, console: Console) -> Retriever:
    from ..retrievers.embedded import open_retriever

    update, bar = progress_bar(console)
    with bar:
        return open_retriever(getattr(args, "url", None), getattr(args, "index", None), progress=update)


def cmd_index_build(args: argparse.Namespace, console: Console) -> int:
    from ..retrievers.corpus import CorpusError

    if not Path(args.corpus).is_file():
        raise UsageError(f"no such corpus file: {args.corpus}")
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise UsageError(f"{out} exists and is not empty (use --force to overwrite)")
    from ..retrievers.build_aside import build_aside

    update, bar = progress_bar(console)
    try:  # built next to `out`, swapped in when complete: a failed or interrupted build keeps the old index
        with bar, build_aside(out) as building:
            if args.kind == "bm25":
                from ..retrievers.bm25 import build_bm25_index

                meta = build_bm25_index(
                    args.corpus, building, threads=args.threads, skip_bad=args.skip_bad, progress=update
                )
            elif args.kind == "tantivy":
                from ..retrievers.tantivy_bm25 import build_tantivy_index

                meta = build_tantivy_index(args.corpus, building, skip_bad=args.skip_bad, progress=update)
            else:
                from ..retrievers.dense import build_dense_index

                meta = build_dense_index(
                    args.corpus,
                    building,
                    model=args.model,
                    batch_size=args.batch_size,
                    skip_bad=args.skip_bad,
                    progress=update,
                )
    except CorpusError as e:
        console.print(Text(f"{e.path}: {len(e.problems)} bad line(s)", style="red"))
        for n, why in e.problems[:50]:
            console.print(f"  line {n}: {why}", highlight=False, markup=False)
        if len(e.problems) > 50:
            console.print(f"  ... and {len(e.problems) - 50} more")
        console.print("Fix them, or pass --skip-bad to index the good lines only.")
        return EXIT_INVALID
    console.print(
        f"[green]built[/green] {meta['kind']} index of {meta['documents']} passages in {meta['seconds']} s: {out}"
    )
    return EXIT_OK


def cmd_serve_retriever(args: argparse.Namespace, console: Console) -> int:
    import math

    import uvicorn

    from ..retrievers.server import ServerLimits, create_app, serve_config

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535, got {args.port}")
    for flag, value in (
        ("--max-queries", args.max_queries),
        ("--max-documents", args.max_documents),
        ("--max-pending-searches", args.max_pending_searches),
        ("--max-connections", args.max_connections),
    ):
        if value < 1:
            raise UsageError(f"{flag} must be at least 1, got {value}")
    if not (math.isfinite(args.request_timeout) and 0 < args.request_timeout <= 86_400):
        raise UsageError(f"--request-timeout must be seconds from 0 to 86400, got {args.request_timeout}")
    max_topk = check_topk(args.max_topk, "--max-topk")
    default_topk = check_topk(args.default_topk, "--default-topk")
    if default_topk > max_topk:
        raise UsageError(f"--default-topk ({default_topk}) is over --max-topk ({max_topk})")
    limits = ServerLimits(
        default_topk=default_topk,
        max_topk=max_topk,
        max_queries=args.max_queries,
        max_documents=args.max_documents,
        max_pending_searches=args.max_pending_searches,
        max_connections=args.max_connections,
        request_timeout_s=args.request_timeout,
    )
    retriever = _open_retriever(args, console)
    name = args.index or "embedded hotpotqa-dev300"
    app = create_app(retriever, limits, name=name)
    console.print(f"serving {name} on http://{args.host}:{args.port}/retrieve (Ctrl-C stops)")
    uvicorn.Server(serve_config(app, limits, host=args.host, port=args.port, log_level=args.log_level)).run()
    return EXIT_OK


def cmd_search(args: argparse.Namespace, console: Console) -> int:
    from rich.table import Table

    check_topk(args.topk, "--topk")
    retriever = _open_retriever(args, console)
    hits = retriever.search([args.query], args.topk)[0]
    table = Table("#", "score", "id", "title", "text")
    for i, d in enumerate(hits, 1):
        table.add_row(
            str(i),
            f"{d.score:.3f}" if d.score is not None else "",
            text(d.id),
            text(d.title),
            text(d.text[:100] + ("..." if len(d.text) > 100 else "")),
        )
    console.print(table)
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
        p.add_argument(
            "--enable",
            action="append",
            metavar="KIND",
            help="enable an extra node kind of the language (text_concat); repeatable",
        )

    p = sub.add_parser(
        "check",
        help="validate a program; print every error with its line and a caret",
        description="Validate a program against the language. Exit 0 when valid, 1 when invalid, 2 on usage errors.",
    )
    p.add_argument("program", help="program file (.py), or - for standard input")
    p.add_argument(
        "--json",
        action="store_true",
        help="print errors as a JSON list of {type, message, line, col, end_line, end_col, ...}",
    )
    add_enable(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "grammar",
        help="print the language as a grammar for constrained decoding",
        description="Print the program grammar: Lark/EBNF (vLLM guided grammar, xgrammar) or GBNF (llama.cpp).",
    )
    p.add_argument("--format", choices=("lark", "gbnf"), default="lark", help="grammar format (default: lark)")
    add_enable(p)
    p.set_defaults(func=cmd_grammar)

    p = sub.add_parser("tools", help="list the tools and their signatures")
    add_enable(p)
    p.set_defaults(func=cmd_tools)

    p = sub.add_parser("index", help="build retrieval indexes", description="Build retrieval indexes.")
    isub = p.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    b = isub.add_parser(
        "build",
        help="index a Search-R1/FlashRAG JSONL corpus ({id, contents} per line)",
        description='Index a JSONL corpus ({"id", "contents": "\\"Title\\"\\ntext"} or '
        '{"id", "title", "text"} per line). Bad lines are reported with their line number.',
    )
    b.add_argument("corpus", help="corpus JSONL file")
    b.add_argument(
        "--kind",
        choices=("bm25", "tantivy", "dense"),
        default="bm25",
        help="bm25: Lucene via pyserini (default); tantivy: BM25 in Rust, no JVM; dense: faiss over a "
        "sentence-transformers model",
    )
    b.add_argument("--out", required=True, help="index directory to create")
    b.add_argument("--threads", type=int, default=2, help="Lucene indexing threads (bm25)")
    b.add_argument(
        "--model",
        default=None,
        help="dense model: a local sentence-transformers directory (default: bundled all-MiniLM-L6-v2; "
        "E5 models get query:/passage: prefixes)",
    )
    b.add_argument("--batch-size", type=int, default=32, help="encoding batch size (dense)")
    b.add_argument("--skip-bad", action="store_true", help="index the good lines and drop bad ones")
    b.add_argument("--force", action="store_true", help="overwrite a non-empty output directory")
    b.set_defaults(func=cmd_index_build)

    p = sub.add_parser(
        "serve-retriever",
        help="serve an index over the Search-R1 /retrieve protocol",
        description="Serve an index over HTTP: POST /retrieve {queries, topk, return_scores}, "
        "GET /health. Without --index, serves the embedded corpus (indexed on first use).",
    )
    p.add_argument("--index", help="index directory built by 'pyrag-dsl index build' (default: embedded corpus)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8008, help="port (default: 8008)")
    p.add_argument("--default-topk", type=int, default=TOPK, help=f"topk when a request gives none (default: {TOPK})")
    p.add_argument("--max-topk", type=int, default=1000, help="largest topk a request may ask (default: 1000)")
    p.add_argument("--max-queries", type=int, default=512, help="most queries in one request (default: 512)")
    p.add_argument(
        "--max-documents",
        type=int,
        default=20_000,
        help="most documents in one response, queries x topk; larger requests get 422 (default: 20000)",
    )
    p.add_argument(
        "--max-pending-searches",
        type=int,
        default=64,
        help="requests searching or waiting for the search thread; more get 503 (default: 64)",
    )
    p.add_argument(
        "--max-connections",
        type=int,
        default=512,
        help="open connections; requests past it get 503 (uvicorn limit_concurrency; default: 512)",
    )
    p.add_argument(
        "--request-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="time a connection has to send a whole request, and to read its response, before it "
        "is closed (default: 30)",
    )
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.set_defaults(func=cmd_serve_retriever)

    p = sub.add_parser("search", help="search an index or a retrieval server from the command line")
    p.add_argument("query")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--index", help="index directory (default: embedded corpus)")
    src.add_argument("--url", help="retrieval server URL, e.g. http://127.0.0.1:8008")
    p.add_argument("--topk", type=int, default=TOPK)
    p.set_defaults(func=cmd_search)
    add_pipeline_commands(sub)
    add_models_commands(sub)
    add_doctor_command(sub, add_llm_flags)
    add_eval_commands(sub)
    from .trace_cmds import add_trace_commands  # issue 22: recorded traces as OpenTelemetry spans

    add_trace_commands(sub)
    from .view_cmds import add_view_commands  # issue 22

    add_view_commands(sub)
    from .rl_cmds import add_rl_commands  # issue 9; rl_cmds imports pyrag_dsl.rl inside its commands

    add_rl_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    add_debug_everywhere(parser)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    console = Console(stderr=False, soft_wrap=True)
    err_console = Console(stderr=True, soft_wrap=True)
    signals.install(console)
    command: Callable[[argparse.Namespace, Console], int] = args.func  # every command's set_defaults(func=...)
    try:
        return command(args, console)
    except UsageError as e:
        err_console.print(Text("error: ", style="red") + text(str(e)))
        return EXIT_USAGE
    except KeyboardInterrupt:
        err_console.print(f"[red]{signals.interrupt_word()}[/red]")
        return signals.interrupt_exit_code()
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly
        signals.silence_stdout()
        return EXIT_PIPE
    except ConfigError as e:  # a bad setting: one line that names the key (pyrag_dsl.config)
        if args.debug:
            raise
        err_console.print(Text("error: ", style="red") + text(str(e)))
        return EXIT_USAGE
    except (RetrievalError, LLMError) as e:
        if args.debug:
            raise
        err_console.print(Text("error: ", style="red") + text(f"{type(e).__name__}: {e}"))
        return EXIT_RUNTIME
    except OSError as e:  # a path that cannot be used (an output directory that is a file...): name it
        if args.debug:
            raise
        if e.filename is None:
            err_console.print(
                Text("error: ", style="red") + text(f"{type(e).__name__}: {e} (--debug shows the traceback)")
            )
            return EXIT_RUNTIME
        where = f"{e.filename}" + (f" -> {e.filename2}" if e.filename2 else "")
        why = e.strerror or str(e)
        if e.errno in (errno.EEXIST, errno.ENOTDIR):
            why += " (a file is where a directory is needed)"
        err_console.print(Text("error: ", style="red") + text(f"cannot use {where}: {why}"))
        return EXIT_USAGE if e.errno in _PATH_ERRNOS else EXIT_RUNTIME
    except Exception as e:  # a one-line error for people; the traceback with --debug
        if args.debug:
            raise
        err_console.print(Text("error: ", style="red") + text(f"{type(e).__name__}: {e} (--debug shows the traceback)"))
        return EXIT_RUNTIME


# errors that say the path given is wrong (exit 2), not that the machine failed (a full disk: exit 3)
_PATH_ERRNOS = {
    errno.ENOTDIR,
    errno.EISDIR,
    errno.EEXIST,
    errno.ENOENT,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENAMETOOLONG,
}
