"""`--debug` accepted before or after the subcommand (`pyrag-dsl run q.txt --debug`)."""

from __future__ import annotations

import argparse


def add_debug_everywhere(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand (nested ones too) a `--debug` that sets the same flag as the top-level one.
    SUPPRESS as default: a subcommand without the flag keeps the top-level value."""
    for action in parser._actions:  # argparse has no public walk over subparsers
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                if not any("--debug" in a.option_strings for a in sub._actions):
                    sub.add_argument(
                        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors"
                    )
                add_debug_everywhere(sub)


__all__ = ["add_debug_everywhere"]
