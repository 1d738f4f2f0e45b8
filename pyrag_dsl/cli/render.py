"""Rich renderings of programs, steps and results for the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from ..interpreter.trace import AssignEvent, CallEvent, ErrorEvent, TraceEvent
from ..pipeline.events import AdaptiveRetryEvent, RepairEvent
from ..pipeline.steps import call_signature
from .safe_text import markup, plain, text

if TYPE_CHECKING:
    from ..pipeline.result import PipelineResult


def _short(value: object, n: int = 90) -> Text:
    s = plain(str(value).replace("\n", " "))
    return text(s if len(s) <= n else s[: n - 3] + "...")


def step_table(trace: list[TraceEvent], title: str = "Execution") -> Table:
    """One row per event, numbered by the trace's step numbers (those of `replay --step N` and replay diffs)."""
    table = Table("step", "line", "call / event", "result", "ms", title=title, title_justify="left")
    for e in trace:
        n = e.step
        if isinstance(e, CallEvent):
            if isinstance(e.output, list):
                result = f"{len(e.output)} docs: " + "; ".join(d["title"] for d in e.output[:3])
            else:
                result = str(e.output)
            ms = "cached" if e.cached else f"{(e.end - e.start) * 1000:.0f}"
            table.add_row(str(n), str(e.line), _short(call_signature(e), 70), _short(result), ms)
        elif isinstance(e, AssignEvent):
            table.add_row(str(n), str(e.line), text(f"{e.target} = ..."), _short(e.output), "")
        elif isinstance(e, ErrorEvent):
            table.add_row(str(n), "", text(e.error.get("type"), "red"), _short(e.error.get("message"), 120), "")
        elif isinstance(e, AdaptiveRetryEvent):
            table.add_row(
                str(n),
                "",
                f"[yellow]adaptive retry[/yellow] topk={e.topk}",
                _short(f"{e.target} was {e.answer!r}; re-running statements {e.rerun}", 200),
                "",
            )
        elif isinstance(e, RepairEvent):
            table.add_row(str(n), "", f"[yellow]repair {e.round}[/yellow]", f"{len(e.errors)} error(s) sent back", "")
    return table


def show_program(console: Console, source: str, title: str = "Program") -> None:
    console.print(
        Panel(
            Syntax(plain(source.rstrip("\n")), "python", line_numbers=True, word_wrap=True),
            title=title,
            title_align="left",
        )
    )


def show_result(console: Console, result: PipelineResult) -> None:
    console.print(f"[bold]Question:[/bold] {markup(result.original_query)}", highlight=False)
    if result.sub_queries:
        console.print("[bold]Sub-queries:[/bold]")
        for i, q in enumerate(result.sub_queries, 1):
            console.print(f"  {i}. {plain(q)}", highlight=False, markup=False)
    if result.generated_code:
        show_program(
            console,
            result.generated_code,
            f"Program (repair rounds: {result.repair_rounds})" if result.repair_rounds else "Program",
        )
    console.print(step_table(result.trace))
    if result.error:
        console.print(
            f"[red]Error:[/red] {markup(result.error.get('type'))}: {markup(result.error.get('message'))}",
            highlight=False,
        )
    answer = result.final_answer if result.final_answer is not None else "(none)"
    extra = " (after an adaptive retry)" if result.retried_with_topk10 else ""
    console.print(
        Panel(
            text(answer),
            title=f"Final answer{extra}",
            title_align="left",
            border_style="green" if result.error is None else "red",
        )
    )
    calls = result.llm_calls
    console.print(
        f"[dim]LLM calls: {calls.get('decompose', 0)} decompose, {calls.get('plan', 0)} plan, "
        f"{calls.get('answer', 0)} answer; retrievals: {result.retrieval_calls}; "
        f"{result.timings.get('total_s', 0):.1f} s[/dim]"
    )
