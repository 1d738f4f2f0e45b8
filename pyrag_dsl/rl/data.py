"""`pyrag-dsl rl build-data`: the four verl parquet sets, with the prompts our agents send at inference.

* answer_with_docs: each question with its top-k documents (k drawn, seeded, from `topks`), rendered
  by the Answer agent's documents prompt; ground truth: the gold answers.
* answer_no_docs: the synthesis step (final `answer(...)` without documents) of runs whose prediction
  was correct, rendered by the Answer agent's synthesis prompt.
* plan: each run's question and sub-queries, rendered by the Plan agent's write prompt.
* decompose: each question, rendered by the Decompose agent's prompt.

Rows: `{data_source, prompt, ability, reward_model: {style: "rule", ground_truth}, extra_info: {split,
index, id, question, sub_queries, topk, doc_ids, origin}}`. One question is in the same split in
every set (seeded shuffle of the questions). `summary.json` says what was kept and why rows were dropped.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable

from ..agents.answer import AnswerAgent
from ..agents.decompose import DecomposeAgent
from ..agents.plan import PlanAgent
from ..config import jsonl
from ..config.defaults import TOPK
from ..documents import Docs
from ..eval.metrics import accuracy, exact_match, f1_score
from ..retrievers.base import Retriever
from .rewards import ANSWER_NO_DOCS, ANSWER_WITH_DOCS, DECOMPOSE, PLAN
from .sources import Item

SETS = {"answer_with_docs": ANSWER_WITH_DOCS, "answer_no_docs": ANSWER_NO_DOCS, "plan": PLAN, "decompose": DECOMPOSE}
ABILITY = {
    ANSWER_WITH_DOCS: "fact-reasoning",
    ANSWER_NO_DOCS: "fact-reasoning",
    PLAN: "code-gen",
    DECOMPOSE: "decomposition",
}
CORRECT_IF = ("em", "acc", "f1")


class BuildError(ValueError):
    """The sets cannot be built as asked (nothing to build from, no retriever for answer_with_docs, ...)."""


@dataclass(frozen=True)
class BuildOptions:
    sets: tuple[str, ...] = tuple(SETS)
    val_fraction: float = 0.1
    seed: int = 0
    topks: tuple[int, ...] = (3, 5, 8, 10)
    correct_if: str = "em"  # when a run counts as correct for answer_no_docs: em | acc | f1 (>= 0.5)
    max_prompt_chars: int = 16_000

    def __post_init__(self) -> None:
        unknown = [s for s in self.sets if s not in SETS]
        if unknown or not self.sets:
            raise BuildError(f"unknown or no sets {unknown}; known: {', '.join(SETS)}")
        if not 0 <= self.val_fraction < 1:
            raise BuildError(f"val fraction must be in [0, 1), got {self.val_fraction}")
        if not self.topks or any(k <= 0 for k in self.topks):
            raise BuildError(f"top-k values must be positive, got {self.topks}")
        if self.correct_if not in CORRECT_IF:
            raise BuildError(f"correct_if must be one of {CORRECT_IF}")


@dataclass
class SetReport:
    kept: Counter[str] = field(default_factory=Counter)  # split -> rows
    dropped: Counter[str] = field(default_factory=Counter)  # reason -> rows

    def to_dict(self) -> dict[str, Any]:
        return {"kept": dict(self.kept), "dropped": dict(self.dropped)}


def split_of(items: Iterable[Item], val_fraction: float, seed: int) -> dict[str, str]:
    """question key -> 'train' | 'val': a seeded shuffle of the distinct questions; at least one
    validation question when there are two or more and the fraction is positive."""
    keys = sorted({i.key for i in items})
    random.Random(seed).shuffle(keys)
    n_val = math.ceil(len(keys) * val_fraction) if val_fraction > 0 and len(keys) >= 2 else 0
    n_val = min(n_val, len(keys) - 1) if keys else 0
    return {k: ("val" if i < n_val else "train") for i, k in enumerate(keys)}


def _correct(pred: str | None, golds: list[str], rule: str) -> bool:
    if pred is None:
        return False
    if rule == "em":
        return exact_match(pred, golds) == 1.0
    if rule == "acc":
        return accuracy(pred, golds) == 1.0
    return f1_score(pred, golds) >= 0.5


def _row(
    source: str,
    messages: list[dict[str, str]],
    item: Item,
    split: str,
    *,
    topk: int = 0,
    doc_ids: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "data_source": source,
        "prompt": messages,
        "ability": ABILITY[source],
        "reward_model": {"style": "rule", "ground_truth": list(item.golds)},
        "extra_info": {
            "split": split,
            "index": 0,
            "id": item.id,
            "question": item.question,
            "sub_queries": list(item.sub_queries),
            "topk": topk,
            "doc_ids": list(doc_ids or []),
            "origin": item.origin,
        },
    }


class Builder:
    """Renders rows through the agents; `retriever` is needed for answer_with_docs only."""

    def __init__(
        self,
        options: BuildOptions,
        retriever: Retriever | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.options = options
        self.retriever = retriever
        self.progress = progress
        self.planner = PlanAgent(llm=None)  # type: ignore[arg-type]  # renders prompts; never calls the LLM

    def build(
        self, qa: list[Item], records: list[Item]
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, SetReport]]:
        opts = self.options
        if not qa and not records:
            raise BuildError("nothing to build from: give QA files (--qa) or run/eval records (--records)")
        golds_by_q = {i.key: i.golds for i in qa if i.golds}
        for r in records:  # result.json files carry no gold: take it from the QA files
            if not r.golds and r.key in golds_by_q:
                r.golds = list(golds_by_q[r.key])
        splits = split_of(qa + records, opts.val_fraction, opts.seed)
        questions: dict[str, Item] = {}
        for item in qa + records:
            questions.setdefault(item.key, item)
        rows: dict[str, list[dict[str, Any]]] = {}
        reports: dict[str, SetReport] = {}
        for name in opts.sets:
            report = reports[name] = SetReport()
            if name == "answer_with_docs":
                raw = self._answer_with_docs(list(questions.values()), splits, report)
            elif name == "decompose":
                raw = [
                    (i, _row(DECOMPOSE, DecomposeAgent.messages(i.question), i, splits[i.key]))
                    for i in questions.values()
                ]
            elif name == "plan":
                raw = []
                for r in records:
                    if not r.sub_queries:
                        report.dropped["no_sub_queries"] += 1
                        continue
                    raw.append(
                        (
                            r,
                            _row(
                                PLAN,
                                self.planner.write_messages(r.question, r.sub_queries),
                                r,
                                splits[r.key],
                                topk=TOPK,
                            ),
                        )
                    )
            else:
                raw = []
                for r in records:
                    if r.failed or not _correct(r.prediction, r.golds, opts.correct_if):
                        report.dropped["not_correct" if r.golds else "no_gold"] += 1
                        continue
                    if not r.synthesis_query:
                        report.dropped["no_synthesis_step"] += 1
                        continue
                    raw.append((r, _row(ANSWER_NO_DOCS, AnswerAgent.messages(r.synthesis_query), r, splits[r.key])))
            rows[name] = self._finish(raw, report)
        return rows, reports

    def _answer_with_docs(
        self, items: list[Item], splits: dict[str, str], report: SetReport
    ) -> list[tuple[Item, dict[str, Any]]]:
        if self.retriever is None:
            raise BuildError("answer_with_docs needs a retriever (--retriever-url or --index), or leave the set out")
        rng = random.Random(self.options.seed)
        by_topk: dict[int, list[Item]] = {}
        for item in sorted(items, key=lambda i: i.key):
            by_topk.setdefault(rng.choice(self.options.topks), []).append(item)
        out = []
        done, total = 0, len(items)
        for topk, group in sorted(by_topk.items()):
            for start in range(0, len(group), 64):
                chunk = group[start : start + 64]
                results = self.retriever.search([i.question for i in chunk], topk)
                for item, docs in zip(chunk, results):
                    if not docs:
                        report.dropped["no_documents"] += 1
                        continue
                    ds = Docs(tuple(docs))
                    out.append(
                        (
                            item,
                            _row(
                                ANSWER_WITH_DOCS,
                                AnswerAgent.messages(item.question, ds),
                                item,
                                splits[item.key],
                                topk=topk,
                                doc_ids=[d.id for d in docs],
                            ),
                        )
                    )
                done += len(chunk)
                if self.progress:
                    self.progress(done, total)
        return out

    def _finish(self, raw: list[tuple[Item, dict[str, Any]]], report: SetReport) -> list[dict[str, Any]]:
        seen: set[str] = set()
        out = []
        for item, row in raw:
            if not item.golds:
                report.dropped["no_gold"] += 1
                continue
            text = json.dumps(row["prompt"], ensure_ascii=False)
            if len(text) > self.options.max_prompt_chars:
                report.dropped["prompt_too_long"] += 1
                continue
            if text in seen:
                report.dropped["duplicate"] += 1
                continue
            seen.add(text)
            out.append(row)
        for split in ("train", "val"):
            for i, row in enumerate(r for r in out if r["extra_info"]["split"] == split):
                row["extra_info"]["index"] = i
            report.kept[split] = sum(1 for r in out if r["extra_info"]["split"] == split)
        return out


def write_sets(
    rows: dict[str, list[dict[str, Any]]], reports: dict[str, SetReport], out: Path, inputs: dict[str, Any]
) -> dict[str, Any]:
    """OUT/<set>/{train,val}.parquet and OUT/summary.json; returns the summary."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    summary: dict[str, Any] = {"inputs": inputs, "sets": {}}
    for name, set_rows in rows.items():
        d = out / name
        d.mkdir(parents=True, exist_ok=True)
        files = {}
        for split in ("train", "val"):
            part = [r for r in set_rows if r["extra_info"]["split"] == split]
            path = d / f"{split}.parquet"
            tmp = path.with_suffix(".parquet.tmp")
            pq.write_table(pa.Table.from_pylist(part, schema=_schema(pa)), tmp)
            tmp.replace(path)
            files[split] = str(path)
        summary["sets"][name] = {**reports[name].to_dict(), "files": files}
    tmp = out / "summary.json.tmp"
    tmp.write_text(jsonl.dumps(summary, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out / "summary.json")
    return summary


def _schema(pa: ModuleType) -> Any:
    """The parquet schema of the rows (a pyarrow.Schema; pyarrow is optional and not analysed)."""
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", pa.list_(message)),
            ("ability", pa.string()),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.list_(pa.string()))])),
            (
                "extra_info",
                pa.struct(
                    [
                        ("split", pa.string()),
                        ("index", pa.int64()),
                        ("id", pa.string()),
                        ("question", pa.string()),
                        ("sub_queries", pa.list_(pa.string())),
                        ("topk", pa.int64()),
                        ("doc_ids", pa.list_(pa.string())),
                        ("origin", pa.string()),
                    ]
                ),
            ),
        ]
    )
