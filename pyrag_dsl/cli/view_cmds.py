"""`pyrag-dsl view`: one self-contained HTML page of a trace, a question, a run or an eval run."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from .common import EXIT_OK, UsageError
from .safe_text import markup


def cmd_view(args: argparse.Namespace, console: Console) -> int:
    from ..observe.view import ViewError, write_view

    path = Path(args.path)
    if not path.exists():
        raise UsageError(f"no such file or directory: {args.path}")
    if args.out is not None and Path(args.out).is_dir():
        raise UsageError(f"--out {args.out} is a directory; give the HTML file to write")
    try:
        out, payload = write_view(path, args.out)
    except ViewError as e:
        raise UsageError(str(e)) from None
    what = (
        f"{len(payload.get('rows') or [])} questions"
        if payload.get("kind") in ("eval", "run")
        else f"{len(payload.get('events') or [])} events"
    )
    size = out.stat().st_size
    console.print(f"wrote {markup(out)} ({what}, {size / 1024:.0f} KiB; no network needed)", highlight=False)
    uri = out.resolve().as_uri()
    console.print(f"open: {markup(uri)}", highlight=False)
    if args.open:
        import webbrowser

        if not webbrowser.open(uri):
            console.print("[yellow]could not start a browser; open the file above[/yellow]")
    return EXIT_OK


def cmd_serve_ui(args: argparse.Namespace, console: Console) -> int:
    from ..observe.serve import make_server

    if not Path(args.dir).is_dir():
        raise UsageError(f"not a directory: {args.dir}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535, got {args.port}")
    server = make_server(args.dir, args.host, args.port)
    console.print(
        f"serving the runs under {markup(Path(args.dir).resolve())} read-only on "
        f"http://{markup(args.host)}:{server.server_address[1]}/ (Ctrl-C stops)",
        highlight=False,
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return EXIT_OK


def add_view_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "view",
        help="write one self-contained HTML page of a trace, a question, a run or an eval",
        description="Write one HTML file (no network, works from file://) showing a question "
        "(sub-queries, every program version with repairs as diffs, steps with values, retrieved "
        "documents, LLM calls, adaptive retries, a timeline) or an eval run (a sortable, filterable "
        "table of questions, each opening its question's view).",
    )
    p.add_argument(
        "path",
        help="a trace.jsonl, a question directory (outputs/<ts>/<n>), a run directory "
        "(outputs/<ts>) or an eval output directory (records.jsonl, summary.json)",
    )
    p.add_argument(
        "--out",
        help="the HTML file to write (default: view.html in the directory given, or the trace's "
        "name with .html beside it)",
    )
    p.add_argument("--open", action="store_true", help="open the page in the default web browser")
    p.set_defaults(func=cmd_view)

    p = sub.add_parser(
        "serve-ui",
        help="serve the view pages of the runs under a directory (loopback, read-only)",
        description="Serve `pyrag-dsl view` pages of every run, eval and question under DIR, "
        "rendered on request. Read-only; paths outside DIR are refused; only requests addressed "
        "to this host and port are answered.",
    )
    p.add_argument("dir", help="the directory to serve, e.g. outputs/ or runs/")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8010, help="port (default: 8010; 0 picks a free one)")
    p.set_defaults(func=cmd_serve_ui)
