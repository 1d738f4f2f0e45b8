"""`pyrag-dsl eval` (score a method on a QA data set) and `pyrag-dsl eval report DIR...` (compare runs)."""

from __future__ import annotations

import argparse
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from .common import EXIT_OK, EXIT_RUNTIME, UsageError, open_session, server_died, settings_from_args, wide
from .safe_text import markup

if TYPE_CHECKING:
    from rich.progress import Progress as ProgressBar

    from ..config.settings import Settings
    from ..eval.data import QARow, QASet
    from ..eval.methods import Method
    from ..eval.runner import Progress
    from ..pipeline.batch import EndpointLimits
    from ..pipeline.session import Session


def _load_data(args: argparse.Namespace) -> QASet:
    from ..eval.data import DataError, load_questions

    try:
        return load_questions(args.data, split=args.split, limit=args.limit, sample=args.sample, seed=args.seed)
    except DataError as e:
        raise UsageError(str(e)) from None


def _out_dir(args: argparse.Namespace, qaset: QASet) -> Path:
    if args.out:
        return Path(args.out)
    import time

    name = Path(qaset.source).stem.replace(".qa", "") if not qaset.source.startswith("hub:") else "hub"
    return Path("eval-runs") / f"{name}-{args.method}-{time.strftime('%Y%m%d-%H%M%S')}"


def _progress(console: Console) -> ProgressBar:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("EM {task.fields[em]}  errors {task.fields[errors]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


@dataclass
class _Job:
    """One `eval` command: its flags, where it prints, the data, where records go, the run's configuration,
    the settings, the records already there and the questions still to ask."""

    args: argparse.Namespace
    console: Console
    qaset: QASet
    out_dir: Path
    config: dict[str, Any]
    settings: Settings
    done_records: list[dict[str, Any]]
    todo: list[QARow]


def cmd_eval(args: argparse.Namespace, console: Console) -> int:
    from ..eval.runner import pending, run_config

    _check_flags(args)
    qaset = _load_data(args)
    out_dir = _out_dir(args, qaset)
    settings = settings_from_args(args)
    if settings.embedded_llm:
        console.print(
            "[dim]No LLM configured: the embedded llama.cpp server with a tiny model; its scores show "
            "the machinery, not the method (see README for a 7B model behind vLLM).[/dim]"
        )
    config = run_config(
        args.method,
        settings,
        qaset,
        {
            "concurrency": args.concurrency,
            "llm_inflight": args.llm_inflight or args.concurrency,
            "retrieval_inflight": args.retrieval_inflight,
        },
    )
    if args.retry_errors and not args.resume:
        raise UsageError("--retry-errors goes with --resume (it asks again the recorded questions that failed)")
    done_records = _recorded(args, console, out_dir, config)
    job = _Job(args, console, qaset, out_dir, config, settings, done_records, pending(qaset, done_records))
    if args.resume and not job.todo:
        return _summary_only(job)
    if args.ray is not None:
        return _eval_on_ray(job)
    return _eval_here(job)


def _check_flags(args: argparse.Namespace) -> None:
    if not args.data:
        raise UsageError("eval needs --data FILE|NAME (e.g. --data hotpotqa-dev300), or: eval report DIR...")
    for flag in ("concurrency", "llm_inflight", "retrieval_inflight", "limit", "sample", "shards"):
        value = getattr(args, flag, None)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be >= 1")
    if getattr(args, "shards", None) is not None and args.ray is None:
        raise UsageError("--shards splits the questions over Ray tasks: it needs --ray")


def _recorded(
    args: argparse.Namespace, console: Console, out_dir: Path, config: dict[str, Any]
) -> list[dict[str, Any]]:
    """The records already in the output directory (--resume; --retry-errors drops those with an error),
    checked before any server starts: a bad --out or a changed configuration fails at once."""
    from ..eval.records import EvalError
    from ..eval.runner import prepare_out_dir

    try:
        done_records = prepare_out_dir(out_dir, config, args.resume)
    except EvalError as e:
        raise UsageError(str(e)) from None
    if args.retry_errors:
        from ..eval.records import drop_error_records, read_records

        dropped = drop_error_records(out_dir)
        console.print(
            f"--retry-errors: {dropped} question{'s' if dropped != 1 else ''} with an error will be asked again",
            highlight=False,
        )
        done_records = read_records(out_dir)
    return done_records


def _eval_here(job: _Job) -> int:
    """`eval` in this process: the pending questions with --concurrency in flight, then the summary; exit 3
    when the embedded server died, 130/143 when interrupted (what finished is recorded either way)."""
    from ..pipeline.batch import EndpointLimits

    args, done = job.args, job.done_records
    limits = EndpointLimits(args.llm_inflight or args.concurrency)
    session = open_session(job.settings, job.console)
    try:
        method = _open_method(args, session, limits, job.config)
        job.console.print(
            f"eval [bold]{method.name}[/bold] on {markup(job.qaset.source)}: {len(job.qaset.rows)} questions"
            + (f", {len(done)} already recorded" if done else "")
            + f"; writing {job.out_dir}",
            highlight=False,
        )
        interrupted = _ask_all(job, session, method)
        crash = session.server_crash()
    finally:
        session.close()
    return _finish(job, crash, interrupted)


def _open_method(args: argparse.Namespace, session: Session, limits: EndpointLimits, config: dict[str, Any]) -> Method:
    """The method over the session's clients; the settings it resolved (and the embedded server) go to the
    run's configuration."""
    from ..eval.methods import method_class

    method = method_class(args.method).from_session(session, limits=limits)
    if args.retrieval_inflight:
        limits.cap_retriever(method.retriever_endpoint, args.retrieval_inflight)
    config["settings_resolved"] = method.settings()  # e.g. plan_grammar auto -> what this server got
    if session.server is not None:
        config["embedded_server"] = {
            "gguf": str(getattr(session.server, "model_path", "")),
            "alias": getattr(session.server, "alias", None),
        }
    return method


def _ask_all(job: _Job, session: Session, method: Method) -> bool:
    """Answer the pending questions, each record written as it finishes, under a progress bar; True when
    Ctrl-C / SIGTERM stopped it. A dead embedded server stops asking."""
    from ..eval.records import RecordWriter
    from ..eval.runner import Progress, run_rows
    from .trace_cmds import export_record

    args, out_dir, qaset, done_records = job.args, job.out_dir, job.qaset, job.done_records
    state = Progress(
        total=len(qaset.rows),
        done=len(done_records),
        em_sum=sum(r["metrics"]["em"] for r in done_records),
        errors=sum(bool(r.get("error")) for r in done_records),
    )
    writer = RecordWriter(out_dir / "records.jsonl")
    bar = _progress(job.console)
    task = bar.add_task(
        method.name, total=len(qaset.rows), completed=state.done, em=_pct(state.em), errors=state.errors
    )
    stop = threading.Event()

    def on_record(record: dict[str, Any], p: Progress) -> None:
        export_record(out_dir, record)  # with --otlp-endpoint: the question's spans
        bar.update(task, completed=p.done, em=_pct(p.em), errors=p.errors)
        if session.server_crash() is not None:  # a dead embedded server: ask no more questions
            stop.set()
        if args.verbose:
            _print_record(bar.console, record)

    try:
        with bar:
            run_rows(
                method,
                job.todo,
                out_dir,
                writer,
                concurrency=args.concurrency,
                on_record=on_record,
                progress=state,
                stop=stop,
            )
    except KeyboardInterrupt:
        return True
    finally:
        writer.close()
    return False


def _print_record(console: Console, record: dict[str, Any]) -> None:
    """`eval --verbose`: one line per finished question, right or wrong, with the gold answer."""
    mark = "[green]✓[/green]" if record["metrics"]["em"] else "[red]✗[/red]"
    console.print(
        f"{mark} {markup(record['id'])}: {markup(record['prediction'])} | gold "
        f"{markup(record['gold'][0])}"
        + (f" [red]{markup(record['error']['type'])}[/red]" if record.get("error") else ""),
        highlight=False,
    )


def _finish(job: _Job, crash: Exception | None, interrupted: bool) -> int:
    """The summary, then what stopped the run (a dead server, an interrupt) and how to continue; the exit code."""
    from ..eval.runner import finish

    console, qaset = job.console, job.qaset
    summary = finish(job.out_dir, qaset, job.config)
    _print_summary(console, summary, f"{job.args.method} on {qaset.source}", job.out_dir)
    if crash is not None:
        server_died(console, crash, summary["overall"]["n"], len(qaset.rows))
        console.print("continue with the same command plus --resume --retry-errors once it is fixed", highlight=False)
        return EXIT_RUNTIME
    if interrupted:
        from . import signals

        console.print(
            f"[red]{signals.interrupt_word()}[/red]: {summary['overall']['n']} of {len(qaset.rows)} "
            "questions recorded; continue with the same command plus --resume",
            highlight=False,
        )
        return signals.interrupt_exit_code()  # 130 Ctrl-C, 143 SIGTERM
    return EXIT_OK


def _summary_only(job: _Job) -> int:
    """--resume with every question recorded: rewrite the summary without starting any server."""
    from ..eval.runner import finish, resolved_settings

    args, console, out_dir, qaset, config = job.args, job.console, job.out_dir, job.qaset, job.config
    config.update(resolved_settings(out_dir))
    console.print(
        f"eval {args.method} on {markup(qaset.source)}: all {len(qaset.rows)} questions already recorded; "
        "summary rewritten, no server started",
        highlight=False,
    )
    _print_summary(console, finish(out_dir, qaset, config), f"{args.method} on {qaset.source}", out_dir)
    return EXIT_OK


def _eval_on_ray(job: _Job) -> int:
    """`eval --ray`: the pending questions sharded over Ray tasks (pyrag_dsl.eval.ray_shards), then the
    summary as for a local run; exit 1 when a task failed or questions are left, 130 when interrupted."""
    from ..eval.ray_shards import run_on_ray

    args, console, qaset = job.args, job.console, job.qaset
    run = run_on_ray(
        job.todo,
        job.settings,
        qaset,
        job.out_dir,
        job.config,
        len(job.done_records),
        console,
        method=args.method,
        address=args.ray,
        shards=args.shards,
        concurrency=args.concurrency,
        llm_inflight=args.llm_inflight,
        retrieval_inflight=args.retrieval_inflight,
    )
    _print_summary(console, run.summary, f"{args.method} on {qaset.source} (ray)")
    for f in run.failures:
        console.print(f"[red]a Ray task failed[/red]: {f}", highlight=False)
    if run.interrupted or run.failures or not run.summary["complete"]:
        console.print("continue with the same command plus --resume", highlight=False)
        return 130 if run.interrupted else 1
    return EXIT_OK


def _print_summary(console: Console, summary: dict[str, Any], title: str, out_dir: Path | None = None) -> None:
    """The summary table (" (partial)" while questions are left), then where the records are (`out_dir`)."""
    from ..eval.summary import rich_table

    wide(console).print(rich_table(summary, title=title + (" (partial)" if not summary["complete"] else "")))
    if out_dir is not None:
        console.print(
            f"[dim]records: {out_dir / 'records.jsonl'}; summary: {out_dir / 'summary.md'}[/dim]", highlight=False
        )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def cmd_eval_report(args: argparse.Namespace, console: Console) -> int:
    from ..eval.records import EvalError
    from ..eval.report import (
        ReportError,
        load_runs,
        paired,
        paired_markdown,
        paired_table,
        plot,
        runs_table,
        to_markdown,
    )

    try:
        runs = load_runs(args.dirs)
        pairs = paired(runs, args.metric)
    except (ReportError, EvalError) as e:
        raise UsageError(str(e)) from None
    if args.markdown:
        print(to_markdown(runs), end="")
        if pairs:
            print("\n" + paired_markdown(pairs, args.metric), end="")
    else:
        wide(console).print(runs_table(runs, args.metric))
        if pairs:
            wide(console).print(paired_table(pairs, args.metric))
    if not args.no_plot:
        png = Path(args.png) if args.png else Path(args.dirs[0]).parent / "eval-report.png"
        try:
            plot(runs, png, metric=args.metric)
        except ImportError:
            raise UsageError("the plot needs matplotlib: pip install 'pyrag-dsl[eval]' (or --no-plot)") from None
        console.print(f"[dim]plot: {png}[/dim]", highlight=False)
    return EXIT_OK


def add_eval_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .flags import add_llm_flags
    from .trace_cmds import add_otel_flags

    p = sub.add_parser(
        "eval",
        help="score a method (pyrag, vanilla, direct) on a QA data set: EM, F1, Acc, recall, costs",
        description="Answer every question of a QA data set with one method and score it with FlashRAG's "
        "metrics (EM, F1, Acc = sub-EM) and retrieval recall (all supporting titles retrieved). Rows are "
        "{id, question, golden_answers, metadata...} in JSON Lines or parquet. Writes one JSON line per "
        "finished question to OUT/records.jsonl as it finishes, then OUT/summary.md and OUT/summary.json. "
        "'pyrag-dsl eval report DIR...' compares runs.",
        epilog="Example: pyrag-dsl eval --data hotpotqa-dev300 --method vanilla --limit 100 --out runs/vanilla",
    )
    d = p.add_argument_group("data")
    d.add_argument(
        "--data",
        help="a JSONL/parquet file, a directory with <split>.jsonl|.parquet, a built-in name "
        "(hotpotqa-dev300) or hub:NAME[:CONFIG] (needs network and the 'datasets' library)",
    )
    d.add_argument("--split", help="split: file name in a directory, or the hub split (default: dev)")
    d.add_argument("--limit", type=int, help="the first N questions (FlashRAG's protocol: 1000)")
    d.add_argument("--sample", type=int, help="N questions drawn at random (with --seed), in file order")
    d.add_argument("--seed", type=int, default=0, help="seed for --sample (default 0)")
    e = p.add_argument_group("run")
    e.add_argument(
        "--method",
        choices=("pyrag", "vanilla", "direct"),
        default="pyrag",
        help="pyrag: the pipeline; vanilla: retrieve top-k for the question and answer once; "
        "direct: closed book, no retrieval (default: pyrag)",
    )
    e.add_argument("--out", help="output directory (default: eval-runs/<data>-<method>-<time>)")
    e.add_argument("--concurrency", type=int, default=1, help="questions in flight (default 1)")
    e.add_argument(
        "--llm-inflight", type=int, help="cap on requests in flight to each LLM server (default: --concurrency)"
    )
    e.add_argument("--retrieval-inflight", type=int, help="cap on requests in flight to the retriever (default: none)")
    e.add_argument(
        "--resume",
        action="store_true",
        help="continue a run in --out by question id: recorded questions are not redone (with none left, "
        "e.g. at a smaller --limit, only the summary is rewritten and no server starts)",
    )
    e.add_argument(
        "--retry-errors",
        action="store_true",
        help="with --resume: ask again the questions whose records carry an error (a server that "
        "timed out or was down); their records are replaced",
    )
    e.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="shard the questions over Ray tasks (no ADDRESS: a local Ray); needs 'pyrag-dsl[ray]' and "
        "an --out directory every worker can write",
    )
    e.add_argument("--shards", type=int, help="Ray tasks (default: the cluster's CPUs, at most the questions)")
    e.add_argument("-v", "--verbose", action="store_true", help="print each question's prediction as it finishes")
    add_llm_flags(p)
    p.set_defaults(func=cmd_eval)
    add_otel_flags(p)
    rsub = p.add_subparsers(dest="eval_command", metavar="report")
    r = rsub.add_parser(
        "report",
        help="compare eval runs side by side (table and PNG)",
        description="Put eval runs side by side: a table of metrics and costs per method and data "
        "set; for runs on the same data file, a paired comparison on the questions both recorded (how "
        "often each scores higher, and a two-sided sign test); and a PNG with the metric per method "
        "per data set and cost (LLM calls, seconds) against EM.",
    )
    r.add_argument("dirs", nargs="+", help="eval output directories (each with summary.json)")
    r.add_argument("--png", help="where the plot goes (default: eval-report.png next to the first DIR)")
    r.add_argument(
        "--metric", choices=("em", "f1", "acc", "recall"), default="em", help="metric to plot and to pair (default em)"
    )
    r.add_argument("--no-plot", action="store_true", help="the tables only, no PNG")
    r.add_argument("--markdown", action="store_true", help="print the tables as Markdown (for benchmarks/README.md)")
    r.set_defaults(func=cmd_eval_report)


__all__ = ["add_eval_commands"]
