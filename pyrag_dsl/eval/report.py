"""Compare eval runs: a table side by side and a PNG (metric per method per data set; cost against EM)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import jsonl
from ..config.errors import show
from .summary import fmt

if TYPE_CHECKING:
    from rich.table import Table


class ReportError(ValueError):
    """A directory is not an eval run (no readable summary.json)."""


@dataclass
class RunSummary:
    path: Path
    method: str
    dataset: str
    overall: dict[str, Any]
    complete: bool
    model: str | None
    data_sha256: str | None = None

    @property
    def label(self) -> str:
        return f"{self.method} ({self.dataset})"


def _dataset_name(cfg: dict[str, Any]) -> str:
    data = cfg.get("data") or {}  # checked to be an object by read_summary
    src = str(data.get("source") or "?")
    if src.startswith("hub:"):
        return src[4:]
    name = Path(src).name
    for suffix in (".jsonl", ".parquet", ".json", ".qa"):
        name = name.removesuffix(suffix)
    if data.get("split") and Path(src).is_dir():
        name = f"{name}/{data['split']}"
    return name


def _object(value: Any, key: str) -> dict[str, Any]:
    """`value` when it is an object (None: empty); else a ReportError naming `key` (the caller adds the file)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ReportError(f"{key} must be an object, got {show(value)}")
    return value


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def read_summary(sj: Path) -> RunSummary:
    """One run's summary.json, its shape checked; a ReportError naming the file and the bad key."""
    try:
        s = _object(jsonl.loads(sj.read_text(encoding="utf-8")), "the file")
        if not isinstance(s.get("overall"), dict):
            raise ReportError(f"overall must be an object, got {show(s.get('overall'))}")
        overall = s["overall"]
        bad = next((k for k in TABLE_FIELDS if not _number(overall.get(k))), None)
        if bad is not None:
            raise ReportError(f"overall.{bad} must be a number, got {show(overall[bad])}")
        cfg = _object(s.get("config"), "config")
        data = _object(cfg.get("data"), "config.data")
        model = _object(cfg.get("llm"), "config.llm").get("model")
        return RunSummary(
            path=sj.parent,
            method=str(cfg.get("method", "?")),
            dataset=_dataset_name(cfg),
            overall=overall,
            complete=bool(s.get("complete", True)),
            model=None if model is None else str(model),
            data_sha256=None if data.get("sha256") is None else str(data["sha256"]),
        )
    except (ReportError, ValueError, OSError) as e:  # JsonError and UnicodeDecodeError are ValueErrors
        raise ReportError(f"{sj}: not an eval summary ({e})") from None


def load_runs(dirs: list[str]) -> list[RunSummary]:
    runs = []
    for d in dirs:
        path = Path(d)
        sj = path / "summary.json" if path.is_dir() else path
        if not sj.is_file():
            raise ReportError(
                f"{d}: no summary.json (is it an eval --out directory? an unfinished run gets one "
                "when it ends or with --resume)"
            )
        runs.append(read_summary(sj))
    if not runs:
        raise ReportError("no runs given")
    return runs


TABLE_FIELDS = (
    "n",
    "em",
    "f1",
    "acc",
    "recall",
    "llm_calls",
    "prompt_tokens",
    "completion_tokens",
    "error_rate",
    "seconds_p50",
    "seconds_mean",
)
_HEAD = {
    "n": "n",
    "em": "EM",
    "f1": "F1",
    "acc": "Acc",
    "recall": "Recall",
    "llm_calls": "LLM calls",
    "prompt_tokens": "prompt tok",
    "completion_tokens": "compl. tok",
    "error_rate": "errors",
    "seconds_p50": "p50 s",
    "seconds_mean": "mean s",
}


def runs_table(runs: list[RunSummary], metric: str = "em") -> Table:
    from rich.table import Table

    table = Table(title="eval runs (metrics and rates in %)", title_justify="left")
    for col in ("data", "method", "model"):
        table.add_column(col)
    for f in TABLE_FIELDS:
        table.add_column(_HEAD[f] + (" *" if f == metric else ""), justify="right")
    table.add_column("run")
    for r in sorted(runs, key=lambda r: (r.dataset, r.method)):
        table.add_row(
            r.dataset,
            r.method + ("" if r.complete else " (partial)"),
            str(r.model or "-"),
            *(fmt(f, r.overall.get(f)) for f in TABLE_FIELDS),
            str(r.path),
        )
    return table


def to_markdown(runs: list[RunSummary]) -> str:
    lines = [
        "| data | method | " + " | ".join(_HEAD[f] for f in TABLE_FIELDS) + " |",
        "|---|---|" + "---|" * len(TABLE_FIELDS),
    ]
    for r in sorted(runs, key=lambda r: (r.dataset, r.method)):
        lines.append(
            f"| {r.dataset} | {r.method} | " + " | ".join(fmt(f, r.overall.get(f)) for f in TABLE_FIELDS) + " |"
        )
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Paired:
    """Two runs on the same data, question by question: where only one of them scores higher on the metric."""

    data: str
    a: str
    b: str
    n: int  # questions both runs recorded
    a_better: int
    b_better: int

    @property
    def p_value(self) -> float:
        return sign_test(self.a_better, self.b_better)


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test (ties left out): the chance of a split at least this uneven if neither run
    were better."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / (1 << n)  # 1 << n: 2**n as an int
    return min(1.0, 2 * tail)


def paired(runs: list[RunSummary], metric: str = "em") -> list[Paired]:
    """Every two runs on the same data file (by sha256), compared on the questions both recorded with the metric."""
    from .records import read_records

    scores: dict[Path, dict[str, float]] = {}
    for r in runs:
        scores[r.path] = {
            rec["id"]: value
            for rec in read_records(r.path, repair=False)
            if (value := _metric_value(rec, metric)) is not None
        }
    out = []
    ordered = sorted(runs, key=lambda r: (r.dataset, r.method, str(r.model)))
    for a, b in combinations(ordered, 2):
        if a.data_sha256 is None or a.data_sha256 != b.data_sha256:
            continue
        sa, sb = scores[a.path], scores[b.path]
        both = [i for i in sa if i in sb]
        if not both:
            continue
        same_model = a.model == b.model
        out.append(
            Paired(
                data=a.dataset,
                a=_name(a, same_model),
                b=_name(b, same_model),
                n=len(both),
                a_better=sum(sa[i] > sb[i] for i in both),
                b_better=sum(sb[i] > sa[i] for i in both),
            )
        )
    return out


def _metric_value(record: dict[str, Any], metric: str) -> float | None:
    """The record's value of `metric`; None when it has none (or not a number)."""
    value = (record.get("metrics") or {}).get(metric)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _name(run: RunSummary, same_model: bool) -> str:
    return run.method if same_model else f"{run.method} [{run.model or '-'}]"


def paired_table(pairs: list[Paired], metric: str = "em") -> Table:
    from rich.table import Table

    table = Table(
        title=f"paired on the same questions ({metric.upper()}; p: two-sided sign test)", title_justify="left"
    )
    for col in ("data", "A", "B", "n", "A higher", "B higher", "p"):
        table.add_column(col, justify="right" if col in ("n", "A higher", "B higher", "p") else "left")
    for p in pairs:
        table.add_row(p.data, p.a, p.b, str(p.n), str(p.a_better), str(p.b_better), _p(p.p_value))
    return table


def paired_markdown(pairs: list[Paired], metric: str = "em") -> str:
    lines = [
        f"| data | A | B | n | A higher ({metric.upper()}) | B higher | p (sign test) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {p.data} | {p.a} | {p.b} | {p.n} | {p.a_better} | {p.b_better} | {_p(p.p_value)} |" for p in pairs]
    return "\n".join(lines) + "\n"


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def plot(runs: list[RunSummary], png: Path, metric: str = "em") -> Path:
    """Three panels: the metric per method per data set (bars), EM against mean LLM calls, EM against mean
    seconds per question."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({r.dataset for r in runs})
    methods = sorted({r.method for r in runs})
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    ax = axes[0]
    width = 0.8 / max(1, len(methods))
    for j, m in enumerate(methods):
        xs, ys = [], []
        for i, d in enumerate(datasets):
            match = [r for r in runs if r.dataset == d and r.method == m]
            if match and match[-1].overall.get(metric) is not None:
                xs.append(i + (j - (len(methods) - 1) / 2) * width)
                ys.append(100 * match[-1].overall[metric])
        bars = ax.bar(xs, ys, width, label=m)
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.margins(y=0.12)
    ax.set_xticks(range(len(datasets)), datasets)
    ax.set_ylabel(f"{metric.upper()} (%)")
    ax.set_title(f"{metric.upper()} per method and data set")
    ax.legend()
    for ax, cost, label in (
        (axes[1], "llm_calls", "mean LLM calls per question"),
        (axes[2], "seconds_mean", "mean seconds per question"),
    ):
        for m in methods:
            pts = [(r.overall.get(cost), r.overall.get("em"), r.dataset) for r in runs if r.method == m]
            pts = [(x, 100 * y, d) for x, y, d in pts if x is not None and y is not None]
            if not pts:
                continue
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], label=m, s=50)
            for x, y, d in pts:
                ax.annotate(d, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.margins(x=0.2, y=0.15)  # room for the labels
        ax.set_xlabel(label)
        ax.set_ylabel("EM (%)")
        ax.set_title(f"EM against cost ({'LLM calls' if cost == 'llm_calls' else 'seconds'})")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


__all__ = [
    "Paired",
    "ReportError",
    "RunSummary",
    "load_runs",
    "paired",
    "read_summary",
    "paired_markdown",
    "paired_table",
    "plot",
    "runs_table",
    "sign_test",
    "to_markdown",
]
