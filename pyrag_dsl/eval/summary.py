"""The summary of an eval run: metrics and costs overall and per question type, as JSON and Markdown.

Rates are fractions of the questions in the group; means skip questions without the value (tokens are
counted only where the server reports usage; recall only where rows carry supporting titles)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..config import jsonl

if TYPE_CHECKING:
    from rich.table import Table

FIELDS = (
    "n",
    "em",
    "f1",
    "acc",
    "recall",
    "recall_n",
    "llm_calls",
    "prompt_tokens",
    "completion_tokens",
    "retrievals",
    "repair_rate",
    "first_program_valid_rate",
    "adaptive_retry_rate",
    "error_rate",
    "seconds_p50",
    "seconds_p95",
    "seconds_mean",
)
_LABELS = {
    "n": "n",
    "em": "EM",
    "f1": "F1",
    "acc": "Acc",
    "recall": "Recall",
    "recall_n": "recall n",
    "llm_calls": "LLM calls",
    "prompt_tokens": "prompt tok",
    "completion_tokens": "compl. tok",
    "retrievals": "retrievals",
    "repair_rate": "repaired",
    "first_program_valid_rate": "1st prog valid",
    "adaptive_retry_rate": "adaptive retry",
    "error_rate": "errors",
    "seconds_p50": "p50 s",
    "seconds_p95": "p95 s",
    "seconds_mean": "mean s",
}
PERCENT = {"em", "f1", "acc", "recall", "repair_rate", "first_program_valid_rate", "adaptive_retry_rate", "error_rate"}


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100), as numpy's default."""
    if not values:
        return None
    vals = sorted(values)
    pos = (len(vals) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def group_stats(records: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(records)
    m = [r.get("metrics") or {} for r in records]
    secs = [float(r["seconds"]) for r in records if r.get("seconds") is not None]
    calls = [(r.get("llm_calls") or {}).get("total_requests") for r in records]
    recall = [x.get("recall") for x in m if x.get("recall") is not None]
    valid = [r.get("first_program_valid") for r in records if r.get("first_program_valid") is not None]
    return {
        "n": n,
        "em": _mean(x.get("em", 0.0) for x in m),
        "f1": _mean(x.get("f1", 0.0) for x in m),
        "acc": _mean(x.get("acc", 0.0) for x in m),
        "recall": _mean(recall),
        "recall_n": len(recall),
        "llm_calls": _mean(calls),
        "prompt_tokens": _mean(r.get("prompt_tokens") for r in records),
        "completion_tokens": _mean(r.get("completion_tokens") for r in records),
        "retrievals": _mean(r.get("retrievals") for r in records),
        "repair_rate": _mean(1.0 if (r.get("repairs") or 0) > 0 else 0.0 for r in records),
        "first_program_valid_rate": _mean(1.0 if v else 0.0 for v in valid),
        "adaptive_retry_rate": _mean(1.0 if r.get("adaptive_retry") else 0.0 for r in records),
        "error_rate": _mean(1.0 if r.get("error") else 0.0 for r in records),
        "seconds_p50": percentile(secs, 50),
        "seconds_p95": percentile(secs, 95),
        "seconds_mean": statistics.fmean(secs) if secs else None,
    }


def summarize(records: list[dict[str, Any]], config: dict[str, Any], expected: int | None = None) -> dict[str, Any]:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r.get("type"):
            by_type.setdefault(str(r["type"]), []).append(r)
    errors: dict[str, int] = {}
    for r in records:
        if r.get("error"):
            t = str(r["error"].get("type", "Error"))
            errors[t] = errors.get(t, 0) + 1
    return {
        "overall": group_stats(records),
        "by_type": {t: group_stats(rs) for t, rs in sorted(by_type.items())},
        "error_types": dict(sorted(errors.items())),
        "complete": expected is None or len(records) >= expected,
        "questions_expected": expected,
        "config": config,
    }


def fmt(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key in PERCENT:
        return f"{100 * value:.1f}"
    if key in ("n", "recall_n"):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def rows_for_table(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [("all", summary["overall"])] + [(t, s) for t, s in summary["by_type"].items()]


def to_markdown(summary: dict[str, Any]) -> str:
    cfg = summary.get("config", {})
    lines = [f"# Eval: {cfg.get('method', '?')} on {cfg.get('data', {}).get('source', '?')}", ""]
    if not summary.get("complete", True):
        lines += [f"**Partial run**: {summary['overall']['n']} of {summary['questions_expected']} questions.", ""]
    lines.append("| group | " + " | ".join(_LABELS[f] for f in FIELDS) + " |")
    lines.append("|---" * (len(FIELDS) + 1) + "|")
    for name, stats in rows_for_table(summary):
        lines.append(f"| {name} | " + " | ".join(fmt(f, stats.get(f)) for f in FIELDS) + " |")
    lines += [
        "",
        "EM, F1, Acc (FlashRAG's sub-EM), recall (all supporting titles retrieved) and rates in percent; "
        "LLM calls, tokens and retrievals are means per question; seconds per question.",
        "",
    ]
    if summary.get("error_types"):
        lines += ["Errors: " + ", ".join(f"{k} {v}" for k, v in summary["error_types"].items()), ""]
    lines += ["## Configuration", "", "```json", jsonl.dumps(cfg, indent=2), "```", ""]
    return "\n".join(lines)


def write_summary(out_dir: Path, summary: dict[str, Any]) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    pj, pm = out_dir / "summary.json", out_dir / "summary.md"
    for path, text in ((pj, jsonl.dumps(summary, indent=2) + "\n"), (pm, to_markdown(summary))):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8", errors="backslashreplace")  # a lone surrogate in a path
        tmp.replace(path)
    return pj, pm


def rich_table(summary: dict[str, Any], title: str | None = None) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("group")
    for f in FIELDS:
        table.add_column(_LABELS[f], justify="right")
    for name, stats in rows_for_table(summary):
        table.add_row(name, *(fmt(f, stats.get(f)) for f in FIELDS))
    return table


__all__ = ["FIELDS", "group_stats", "percentile", "rich_table", "summarize", "to_markdown", "write_summary"]
