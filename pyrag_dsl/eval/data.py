"""QA data for evaluation: rows in the FlashRAG / Search-R1 shape `{id, question, golden_answers, metadata...}`.

Sources (`load_questions(spec, ...)`):
* a built-in name: `hotpotqa-dev300` (shipped in pyrag_dsl/data, see PROVENANCE.md);
* a local `.jsonl`/`.json` file (read line by line, so errors name the line) or `.parquet` file (read with
  the `datasets` library); a directory holding `<split>.jsonl` or `<split>.parquet` (FlashRAG's layout);
* `hub:NAME[:CONFIG]`, e.g. `hub:RUC-NLPIR/FlashRAG_datasets:hotpotqa`, loaded with `datasets` from the Hugging
  Face Hub. Needs network; no default or test uses it.

Supporting titles (for retrieval recall) come from `supporting_titles`, or HotpotQA/2Wiki-style
`supporting_facts` (pairs `[title, sentence]` or `{"title": [...]}`), at the top level or in `metadata`.
The question type (HotpotQA `type`: bridge/comparison) comes from `type` at the top level or in `metadata`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from ..config import jsonl
from ..config.errors import show
from ..config.limits import MAX_QUESTION_CHARS
from ..retrievers.index_meta import file_sha256

BUILTIN = {"hotpotqa-dev300": "hotpotqa-dev300.qa.jsonl"}
_ANSWER_KEYS = ("golden_answers", "answers", "answer", "golden_answer")


class DataError(ValueError):
    """A data file or row is unusable. `where` is `file:line` (or `file: row N`)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


@dataclass(frozen=True)
class QARow:
    id: str
    question: str
    golden_answers: tuple[str, ...]
    type: str | None = None
    supporting_titles: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "golden_answers": list(self.golden_answers),
            "type": self.type,
            "supporting_titles": list(self.supporting_titles),
            "metadata": self.metadata,
        }


@dataclass
class QASet:
    """Selected rows and where they came from (for the summary's configuration)."""

    rows: list[QARow]
    source: str  # the spec as given
    path: str | None  # the file read (None for hub data)
    sha256: str | None
    total: int  # rows in the source before --limit/--sample
    selection: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "path": self.path,
            "sha256": self.sha256,
            "rows_in_source": self.total,
            "rows_selected": len(self.rows),
            **self.selection,
        }


def builtin_path(name: str) -> Path:
    return Path(str(resources.files("pyrag_dsl") / "data" / BUILTIN[name]))


def _titles(value: Any) -> list[str]:
    if isinstance(value, dict) and "title" in value:  # HF hotpot_qa: {"title": [...], "sent_id": [...]}
        value = value["title"]
    out: list[str] = []
    for item in value if isinstance(value, (list, tuple)) else []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
            out.append(item[0])
        elif isinstance(item, dict) and isinstance(item.get("title"), str):
            out.append(item["title"])
    return list(dict.fromkeys(out))


def _gold_ok(value: Any) -> bool:
    """A gold answer is a string or a number (not a boolean, NaN or an infinity)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def row_from_dict(obj: Any, where: str, index: int) -> QARow:
    """One data row, checked; `where` names it in errors (values of any type are shown shortened)."""
    if not isinstance(obj, dict):
        raise DataError(where, f"a row must be a JSON object, got {type(obj).__name__}")
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(where, "missing or empty 'question' (a string)")
    if len(question.strip()) > MAX_QUESTION_CHARS:
        raise DataError(
            where,
            f"the question has {len(question.strip()):,} characters, over the {MAX_QUESTION_CHARS:,}-character limit",
        )
    key = next((k for k in _ANSWER_KEYS if k in obj), None)
    if key is None:
        raise DataError(where, "missing 'golden_answers' (a list of strings)")
    golds = obj[key]
    if isinstance(golds, dict) and "target" in golds:  # Search-R1 ground_truth {"target": [...]}
        golds = golds["target"]
    if isinstance(golds, str):
        golds = [golds]
    if not isinstance(golds, (list, tuple)) or not golds or not all(_gold_ok(g) for g in golds):
        raise DataError(where, f"'{key}' must be a non-empty list of strings, got {show(golds)}")
    ident = obj.get("id", obj.get("_id"))
    if ident is None:
        ident = f"row{index}"
    elif not isinstance(ident, (str, int)) or isinstance(ident, bool) or not str(ident).strip():
        raise DataError(where, f"'id' must be a non-empty string or an integer, got {show(ident)}")
    given_meta = obj.get("metadata")
    meta: dict[str, Any] = given_meta if isinstance(given_meta, dict) else {}
    qtype = obj.get("type", meta.get("type"))
    support = next(
        (obj[k] for k in ("supporting_titles", "supporting_facts") if k in obj),
        next((meta[k] for k in ("supporting_titles", "supporting_facts") if k in meta), None),
    )
    rest = {k: v for k, v in obj.items() if k not in ("id", "_id", "question", key, "metadata")}
    return QARow(
        id=str(ident),
        question=question.strip(),
        golden_answers=tuple(str(g) for g in golds),
        type=str(qtype) if isinstance(qtype, (str, int)) else None,
        supporting_titles=tuple(_titles(support)),
        metadata={**meta, **rest},
    )


def read_jsonl(path: Path) -> list[QARow]:
    """Rows of a JSON Lines file (or a JSON list), read as config.jsonl reads every JSON Lines file (lines
    split on "\\n" only, a BOM dropped, nesting bounded, no NaN); errors name the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(str(path), f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    stripped = text.lstrip(jsonl.BOM + " \t\r\n")
    if path.suffix == ".json" and stripped.startswith("["):
        try:
            items = jsonl.loads(text)
        except jsonl.JsonError as e:
            raise DataError(str(path), str(e)) from None
        return [row_from_dict(o, f"{path}: row {i + 1}", i) for i, o in enumerate(items)]
    rows: list[QARow] = []
    for n, line in jsonl.lines(text):
        try:
            obj = jsonl.loads(line)
        except jsonl.JsonError as e:
            raise DataError(f"{path}:{n}", str(e)) from None
        rows.append(row_from_dict(obj, f"{path}:{n}", len(rows)))
    return rows


def _datasets() -> Any:
    """The `datasets` module (an optional package, not analysed by mypy)."""
    try:
        import datasets
    except ImportError:
        raise DataError(
            "datasets", "parquet and hub data need the 'datasets' library: pip install 'pyrag-dsl[eval]'"
        ) from None
    return datasets


def read_parquet(path: Path) -> list[QARow]:
    ds = _datasets()
    try:
        table = ds.load_dataset("parquet", data_files=str(path), split="train")
    except Exception as e:  # noqa: BLE001 - datasets/pyarrow raise many types
        raise DataError(str(path), f"cannot read parquet ({type(e).__name__}: {e})") from None
    return [row_from_dict(o, f"{path}: row {i + 1}", i) for i, o in enumerate(table)]


def read_hub(name: str, config: str | None, split: str) -> list[QARow]:
    ds = _datasets()
    try:
        table = ds.load_dataset(name, config, split=split)
    except Exception as e:  # noqa: BLE001
        raise DataError(f"hub:{name}", f"cannot load split {split!r} ({type(e).__name__}: {e})") from None
    return [row_from_dict(o, f"hub:{name}: row {i + 1}", i) for i, o in enumerate(table)]


def _resolve_file(spec: str, split: str | None) -> Path:
    if spec in BUILTIN:
        if split:
            raise DataError(spec, f"--split {split}: a built-in data set has one split")
        return builtin_path(spec)
    path = Path(spec)
    if path.is_dir():
        names = [split] if split else ["dev", "test", "train"]
        for name in names:
            for ext in (".jsonl", ".parquet", ".json"):
                if (path / f"{name}{ext}").is_file():
                    return path / f"{name}{ext}"
        raise DataError(spec, f"no {'/'.join(names)}.jsonl or .parquet in this directory")
    if not path.exists():
        known = ", ".join(sorted(BUILTIN))
        raise DataError(spec, f"no such file (and not a built-in data set: {known})")
    if not path.is_file():
        raise DataError(spec, "not a file")
    if split:
        raise DataError(spec, f"--split {split} picks a file in a directory or a hub split; this is one file")
    return path


def select(rows: list[QARow], limit: int | None = None, sample: int | None = None, seed: int = 0) -> list[QARow]:
    """`--sample N --seed S`: N rows drawn without replacement, kept in file order; then `--limit N`: the
    first N (FlashRAG's protocol is the first 1000)."""
    if sample is not None:
        if sample < 0:
            raise DataError("--sample", "must be >= 0")
        picked = sorted(random.Random(seed).sample(range(len(rows)), min(sample, len(rows))))
        rows = [rows[i] for i in picked]
    if limit is not None:
        if limit < 0:
            raise DataError("--limit", "must be >= 0")
        rows = rows[:limit]
    return rows


def check_unique(rows: Iterable[QARow], where: str) -> None:
    seen: set[str] = set()
    for row in rows:
        if row.id in seen:
            raise DataError(where, f"duplicate id {row.id!r} (ids must be unique: --resume continues by id)")
        seen.add(row.id)


def load_questions(
    spec: str, *, split: str | None = None, limit: int | None = None, sample: int | None = None, seed: int = 0
) -> QASet:
    """Load, check and select QA rows from a built-in name, a local file or directory, or `hub:NAME[:CONFIG]`."""
    if spec.startswith("hub:"):
        name, _, config = spec[4:].partition(":")
        rows = read_hub(name, config or None, split or "dev")
        path, sha = None, None
    else:
        path_obj = _resolve_file(spec, split)
        rows = read_parquet(path_obj) if path_obj.suffix == ".parquet" else read_jsonl(path_obj)
        path, sha = str(path_obj), file_sha256(path_obj)
    if not rows:
        raise DataError(spec, "no rows")
    check_unique(rows, path or spec)
    chosen = select(rows, limit, sample, seed)
    selection = {"split": split, "limit": limit, "sample": sample, "seed": seed if sample is not None else None}
    return QASet(rows=chosen, source=spec, path=path, sha256=sha, total=len(rows), selection=selection)


__all__ = [
    "BUILTIN",
    "DataError",
    "QARow",
    "QASet",
    "builtin_path",
    "file_sha256",
    "load_questions",
    "row_from_dict",
    "select",
]
