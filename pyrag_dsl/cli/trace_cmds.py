"""OpenTelemetry on the command line: `--otlp-endpoint URL` (and `--otel-no-content`) on run, exec and eval,
and `pyrag-dsl trace export TRACE.jsonl|QUESTION_DIR... --otlp-endpoint URL` for runs already recorded.

Without the flag, the standard OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) turns the
export on; OTEL_SERVICE_NAME names the service (default pyrag-dsl). A command given --otlp-endpoint without
the [otel] extra installed exits 2 with the pip command; with only the variable set it says so on stderr and
runs without exporting (the variable may be meant for another program). A collector that does not take the
spans never fails a run: it is said once on stderr, and counted at the end.
"""

from __future__ import annotations

import argparse
import functools
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from rich.console import Console
from rich.text import Text

from .exits import EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, UsageError
from .safe_text import markup, text

if TYPE_CHECKING:
    from ..interpreter.trace import TraceEvent
    from ..observe.otel import OtelSink

_ACTIVE: dict[str, Any] = {}  # "sink": the OtelSink of the running command (one command per process)
_LOCK = threading.Lock()


def add_otel_flags(p: argparse.ArgumentParser) -> None:
    """--otlp-endpoint and --otel-no-content on a command that answers questions; call it after the command's
    set_defaults(func=...): the command then runs with the exporter open (export_result/export_trace/
    export_record send each question's spans as it finishes)."""
    g = p.add_argument_group(
        "OpenTelemetry (needs the [otel] extra; env: OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME)"
    )
    g.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="send each question's spans (OpenInference + GenAI conventions) to this OTLP/HTTP endpoint "
        "when it finishes, e.g. http://127.0.0.1:6006 (Phoenix) or http://127.0.0.1:4318 (a collector)",
    )
    g.add_argument(
        "--otel-no-content",
        action="store_true",
        help="leave texts out of the spans (questions, prompts, replies, passages, programs); ids, "
        "scores, token counts, models and times stay",
    )
    func = p.get_default("func")
    if func is not None:
        p.set_defaults(func=_with_otel(func))


def _with_otel(func: Callable[[argparse.Namespace, Console], int]) -> Callable[[argparse.Namespace, Console], int]:
    @functools.wraps(func)
    def run(args: argparse.Namespace, console: Console) -> int:
        sink = open_sink(args)
        if sink is None:
            return func(args, console)
        _ACTIVE["sink"] = sink
        try:
            return func(args, console)
        finally:
            _ACTIVE.pop("sink", None)
            sink.close()
            _report(sink)

    return run


def _err() -> Console:
    return Console(stderr=True, soft_wrap=True)


def open_sink(args: argparse.Namespace, *, required: bool = False) -> OtelSink | None:
    """The OtelSink the flags (or the environment) ask for, or None. UsageError when --otlp-endpoint is given
    (or `required`) and the [otel] extra is missing or no endpoint is known."""
    from ..observe.otel import OtelUnavailable, endpoint_from_env, require_otel, traces_url

    flag = getattr(args, "otlp_endpoint", None)
    url = traces_url(flag) if flag else endpoint_from_env()
    if not url:
        if required:
            raise UsageError(
                "no OTLP endpoint: pass --otlp-endpoint URL (e.g. http://127.0.0.1:6006 for Phoenix) "
                "or set OTEL_EXPORTER_OTLP_ENDPOINT"
            )
        return None
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--otlp-endpoint must be an http:// or https:// URL, got {flag or url!r}")
    try:
        require_otel()
    except OtelUnavailable as e:
        if flag or required:
            raise UsageError(str(e)) from None
        _err().print(
            Text("warning: ", style="yellow")
            + text(f"OTEL_EXPORTER_OTLP_ENDPOINT is set, but {e}; running without exporting spans")
        )
        return None
    from ..observe.otel import OtelSink

    # the exporter logs each failed request; we say it once (and count them at the end)
    logging.getLogger("opentelemetry.exporter").setLevel(logging.CRITICAL)
    return OtelSink(url, content=not getattr(args, "otel_no_content", False))


def _export(send: Callable[[Any], bool]) -> None:
    sink = _ACTIVE.get("sink")
    if sink is None:
        return
    try:
        with _LOCK:
            failed_before = sink.failed
            send(sink)
            first_failure = failed_before == 0 and sink.failed > 0
    except Exception as e:  # noqa: BLE001 - the export must never break the run
        sink.failed += 1
        sink.last_error = f"{type(e).__name__}: {e}"
        first_failure = sink.failed == 1
    if first_failure:
        _err().print(
            Text("warning: ", style="yellow")
            + text(f"spans not exported to {sink.endpoint}: {sink.last_error} (the run goes on)")
        )


def export_result(result: Any) -> None:
    """A finished question of `run` (its PipelineResult), when the command runs with an exporter."""
    _export(lambda sink: sink.export_result(result))


def export_trace(header: dict[str, Any], events: list[Any]) -> None:
    """The trace of an `exec` run, when the command runs with an exporter."""
    _export(lambda sink: sink.export(header, events))


def export_record(out_dir: Path, record: dict[str, Any]) -> None:
    """A finished eval question: its trace file (records name it relative to the output directory)."""
    trace = record.get("trace")
    if isinstance(trace, str) and trace.endswith(".jsonl"):
        _export(lambda sink: sink.export_file(Path(out_dir) / trace))


def _report(sink: Any) -> None:
    if sink.failed:
        _err().print(
            Text("warning: ", style="yellow")
            + text(
                f"OpenTelemetry: {sink.failed} question trace(s) not exported to {sink.endpoint} "
                f"({sink.exported} sent); last error: {sink.last_error}"
            )
        )
    elif sink.exported:
        _err().print(
            f"[dim]OpenTelemetry: {sink.exported} question trace(s), {sink.spans_sent} spans sent to "
            f"{markup(sink.endpoint)}[/dim]",
            highlight=False,
        )


def cmd_trace_export(args: argparse.Namespace, console: Console) -> int:
    from ..observe.otel import trace_files

    files: list[Path] = []
    for path in args.paths:
        try:
            files += trace_files(path)
        except FileNotFoundError as e:
            raise UsageError(str(e)) from None
    sink = open_sink(args, required=True)
    if sink is None:  # not reached: with required=True, open_sink raises UsageError where it would give None
        raise UsageError("no OTLP endpoint to export to")
    unreadable = 0
    try:
        for f in files:  # one at a time: an eval directory may hold thousands
            try:
                header, events = read_trace_file(f)
            except UsageError as e:  # not a trace: said, and the others still go
                _err().print(Text("error: ", style="red") + text(str(e)))
                unreadable += 1
                continue
            if not sink.export(header, events):
                _err().print(
                    Text("error: ", style="red") + text(f"{f}: not exported to {sink.endpoint}: {sink.last_error}")
                )
    finally:
        sink.close()
    if sink.exported:
        console.print(
            f"exported {sink.exported} trace(s), {sink.spans_sent} spans, to {markup(sink.endpoint)}", highlight=False
        )
    if sink.failed:
        _err().print(Text("error: ", style="red") + text(f"{sink.failed} of {len(files)} trace(s) not exported"))
        return EXIT_RUNTIME
    return EXIT_USAGE if unreadable else EXIT_OK


def read_trace_file(path: Path) -> tuple[dict[str, Any], list[TraceEvent]]:
    """A trace file's header and typed events (the pipeline's kinds too); a UsageError naming the file when it
    is missing, unreadable or not a trace."""
    from ..observe.otel import read_trace

    if not path.is_file():
        raise UsageError(f"{'not a file' if path.exists() else 'no such trace file'}: {path}")
    try:
        return read_trace(path)
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a trace (not UTF-8 text)") from None
    except ValueError as e:
        raise UsageError(f"{path}: {e}") from None
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror or e}") from None


def add_trace_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "trace",
        help="recorded traces: export them as OpenTelemetry spans",
        description="Work with recorded traces (trace.jsonl).",
    )
    tsub = p.add_subparsers(dest="trace_command", metavar="ACTION", required=True)
    e = tsub.add_parser(
        "export",
        help="send recorded traces to an OTLP/HTTP endpoint (Phoenix, a collector...)",
        description="Send recorded runs as OpenTelemetry spans, one trace per question, with the "
        "OpenInference conventions (CHAIN question, LLM calls with token counts, RETRIEVER calls "
        "with their documents, TOOL calls) and the GenAI attributes; span times are the recorded "
        "ones, so a run looks as it did live. Needs the [otel] extra.",
        epilog="Example: pyrag-dsl trace export outputs/20250101-120000 --otlp-endpoint http://127.0.0.1:6006",
    )
    e.add_argument(
        "paths",
        nargs="+",
        metavar="TRACE.jsonl|DIR",
        help="trace files, question directories (with trace.jsonl), or run / eval directories (every "
        "trace.jsonl under them)",
    )
    g = e.add_argument_group("OpenTelemetry (env: OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME)")
    g.add_argument(
        "--otlp-endpoint",
        metavar="URL",
        help="OTLP/HTTP endpoint: a base URL (http://127.0.0.1:6006, http://127.0.0.1:4318) or the "
        ".../v1/traces URL (default: $OTEL_EXPORTER_OTLP_ENDPOINT)",
    )
    g.add_argument(
        "--otel-no-content",
        action="store_true",
        help="leave texts out (questions, prompts, replies, passages, programs)",
    )
    e.set_defaults(func=cmd_trace_export)


__all__ = ["add_otel_flags", "add_trace_commands", "export_record", "export_result", "export_trace", "open_sink"]
