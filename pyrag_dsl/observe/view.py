"""`pyrag-dsl view`: one self-contained HTML page of a trace, a question's outputs, a run or an eval run.

Everything shown comes from files that hold untrusted text (questions, passages, model output), so the page
never turns data into markup: the data travels as JSON in `<script type="application/json">` blocks (with
`<`, `>`, `&`, U+2028 and U+2029 escaped, so nothing in it can end the block), and one inline script builds
the DOM with createElement/textContent. A Content-Security-Policy allows that script and that style sheet
by their sha256 and nothing else (no network, no other script, images only as data: URIs).

Traces are read as plain JSON objects, not as typed events: the viewer shows kinds it does not know (the
`llm` events of newer traces, say) and keeps going past a bad line (it is listed in the page).
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import json
import math
from pathlib import Path
from typing import Any

from ..config import jsonl

ASSETS = Path(__file__).parent / "html"
MAX_FILE_BYTES = 64 << 20  # a file bigger than this is left out of the page (and the page says so)
TRACE_NAMES = ("trace.jsonl",)
RECORD_GLOB = "records*.jsonl"


class ViewError(ValueError):
    """The path is not something the viewer knows how to show; the message says what it expected."""


# -- reading ---------------------------------------------------------------------------------------------


def _loads(text: str) -> Any:
    """config.jsonl's reader: nesting bounded, NaN/Infinity refused (JSON.parse in the page would refuse them)."""
    return jsonl.loads(text)


def _read_text(path: Path, notes: list[str]) -> str | None:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            notes.append(f"{path.name}: {size} bytes, over the viewer's {MAX_FILE_BYTES} byte limit; left out")
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        notes.append(f"{path.name}: cannot read ({e.strerror or e})")
        return None


def _read_json(path: Path, notes: list[str]) -> Any:
    if not path.is_file():
        return None
    text = _read_text(path, notes)
    if text is None:
        return None
    try:
        return _loads(text)
    except (ValueError, RecursionError) as e:
        notes.append(f"{path.name}: not JSON ({type(e).__name__})")
        return None


def read_trace(path: Path, notes: list[str]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(header, events) of a trace file as plain dicts; a line that is not a JSON object is noted, not fatal.
    Lines are split on "\\n" only (JSON allows U+2028 inside strings)."""
    text = _read_text(path, notes)
    if text is None:
        return None, []
    header: dict[str, Any] | None = None
    events: list[dict[str, Any]] = []
    for n, line in jsonl.lines(text):
        try:
            obj = _loads(line)
        except (ValueError, RecursionError) as e:
            notes.append(f"{path.name} line {n}: not JSON ({type(e).__name__}); skipped")
            continue
        if not isinstance(obj, dict):
            notes.append(f"{path.name} line {n}: not a JSON object; skipped")
        elif header is None and not events and obj.get("schema") == "pyrag-dsl-trace":
            header = obj
        else:
            events.append(obj)
    if header is None:
        notes.append(f"{path.name}: no pyrag-dsl trace header line")
    return header, events


def _program_diffs(events: list[dict[str, Any]]) -> list[list[list[str]] | None]:
    """For each plan event, the line diff from the program before it ([op, line] with op '=', '-', '+')."""
    out: list[list[list[str]] | None] = []
    before: str | None = None
    for e in events:
        if e.get("kind") != "plan":
            continue
        given = e.get("program")
        program = given if isinstance(given, str) else ""
        if before is None:
            out.append(None)
        else:
            a, b = before.splitlines(), program.splitlines()
            diff: list[list[str]] = []
            for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
                if tag == "equal":
                    diff += [["=", x] for x in a[i1:i2]]
                else:
                    diff += [["-", x] for x in a[i1:i2]] + [["+", x] for x in b[j1:j2]]
            out.append(diff)
        before = program
    return out


def question_payload(trace: Path | None, qdir: Path | None) -> dict[str, Any]:
    """One question: its trace (events as plain dicts), result.json and generated_code.py when present."""
    notes: list[str] = []
    header, events = read_trace(trace, notes) if trace is not None else (None, [])
    result = code = None
    if qdir is not None:
        result = _read_json(qdir / "result.json", notes)
        if (qdir / "generated_code.py").is_file():
            code = _read_text(qdir / "generated_code.py", notes)
    return {
        "kind": "question",
        "source": str(trace or qdir),
        "header": header,
        "events": events,
        "diffs": _program_diffs(events),
        "result": result if isinstance(result, dict) else None,
        "code": code,
        "notes": notes,
    }


def _inside(base: Path, rel: Any) -> Path | None:
    """`base/rel` when it stays inside base (a record's trace path is data, not a place to go)."""
    if not isinstance(rel, str) or not rel or "\0" in rel:
        return None
    try:
        path = (base / rel).resolve()
        path.relative_to(base.resolve())
    except (ValueError, OSError):
        return None
    return path


def _metric(rec: dict[str, Any], key: str) -> Any:
    m = rec.get("metrics")
    v = m.get(key) if isinstance(m, dict) else None
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _error_of(err: Any) -> tuple[str | None, str | None]:
    if isinstance(err, dict):
        return (str(err.get("type") or "Error"), str(err.get("message") or ""))
    if err:
        return ("Error", str(err))
    return (None, None)


def _chart_png(base: Path, notes: list[str]) -> str | None:
    """The `eval report --png` chart when one lies in the run directory or beside it (report*.png)."""
    for where in (base, base.parent):
        for png in sorted(where.glob("report*.png")):
            try:
                data = png.read_bytes()
            except OSError:
                continue
            if len(data) <= 8 << 20 and data.startswith(b"\x89PNG\r\n\x1a\n"):
                return "data:image/png;base64," + base64.b64encode(data).decode("ascii")
            notes.append(f"{png.name}: not a PNG under 8 MB; left out")
    return None


def eval_payload(base: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An eval output directory: summary.json, one table row per record, one question payload per row."""
    notes: list[str] = []
    summary = _read_json(base / "summary.json", notes)
    records = _eval_records(base, notes)
    rows, questions = [], []
    for i, rec in enumerate(records):
        q = _record_question(base, rec)
        questions.append(q)
        rows.append(_record_row(i, rec, bool(q["events"])))
    payload = {
        "kind": "eval",
        "source": str(base),
        "summary": summary if isinstance(summary, dict) else None,
        "rows": rows,
        "chart_png": _chart_png(base, notes),
        "notes": notes,
    }
    return payload, questions


def _eval_records(base: Path, notes: list[str]) -> list[dict[str, Any]]:
    """The records of every record file, the first of each id; a line that is not JSON is a note."""
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for path in sorted(p for p in base.glob(RECORD_GLOB) if p.is_file()):
        text = _read_text(path, notes) or ""
        for n, line in jsonl.lines(text):
            try:
                rec = _loads(line)
            except (ValueError, RecursionError):
                notes.append(f"{path.name} line {n}: not JSON; skipped")
                continue
            if isinstance(rec, dict) and str(rec.get("id")) not in seen:
                seen.add(str(rec.get("id")))
                records.append(rec)
    return records


def _record_question(base: Path, rec: dict[str, Any]) -> dict[str, Any]:
    """The question payload of one record: its trace (only inside the eval directory), or an empty one that
    says why there is none; the record itself under "record"."""
    trace = _inside(base, rec.get("trace"))
    qdir = trace.parent if trace is not None else None
    if trace is not None and trace.suffix == ".jsonl" and trace.is_file():
        q = question_payload(trace, qdir)
    elif qdir is not None and qdir.is_dir():
        q = question_payload(None, qdir)
    else:
        q = {
            "kind": "question",
            "source": None,
            "header": None,
            "events": [],
            "diffs": [],
            "result": None,
            "code": None,
            "notes": [],
        }
        if rec.get("trace") and trace is None:
            q["notes"].append("the record's trace path leads outside the eval directory; not read")
        elif rec.get("trace"):
            q["notes"].append(f"the record's trace ({rec['trace']}) is not in the eval directory (not kept?)")
    q["record"] = rec
    return q


def _record_row(i: int, rec: dict[str, Any], has_trace: bool) -> dict[str, Any]:
    """The eval table's row of one record."""
    etype, emsg = _error_of(rec.get("error"))
    gold = rec.get("gold")
    return {
        "i": i,
        "id": str(rec.get("id")),
        "question": rec.get("question"),
        "type": rec.get("type"),
        "prediction": rec.get("prediction"),
        "gold": [str(g) for g in gold] if isinstance(gold, list) else gold,
        "em": _metric(rec, "em"),
        "f1": _metric(rec, "f1"),
        "acc": _metric(rec, "acc"),
        "recall": _metric(rec, "recall"),
        "seconds": rec.get("seconds") if isinstance(rec.get("seconds"), (int, float)) else None,
        "repairs": rec.get("repairs"),
        "adaptive": rec.get("adaptive_retry"),
        "error_type": etype,
        "error": emsg,
        "has_trace": has_trace,
    }


def run_payload(base: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A `pyrag-dsl run` directory (outputs/<ts>/<n>/...): a table of its questions, like an eval's."""
    rows, questions = [], []
    dirs = sorted((d for d in base.iterdir() if d.is_dir() and d.name.isdigit()), key=lambda d: int(d.name))
    for i, d in enumerate(dirs):
        trace = d / "trace.jsonl"
        q = question_payload(trace if trace.is_file() else None, d)
        questions.append(q)
        res = q["result"] or {}
        header = q["header"] or {}
        etype, emsg = _error_of(res.get("error"))
        rows.append(
            {
                "i": i,
                "id": d.name,
                "question": res.get("original_query") or header.get("question"),
                "prediction": res.get("final_answer"),
                "error_type": etype,
                "error": emsg,
                "repairs": res.get("repair_rounds"),
                "adaptive": res.get("retried_with_topk10"),
                "seconds": (res.get("timings") or {}).get("total_s") if isinstance(res.get("timings"), dict) else None,
                "has_trace": bool(q["events"]),
            }
        )
    return {
        "kind": "run",
        "source": str(base),
        "summary": None,
        "rows": rows,
        "chart_png": None,
        "notes": [],
    }, questions


def load(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(main payload, per-question payloads) for a trace file, a question, run or eval directory."""
    p = Path(path)
    if p.is_file():
        qdir = p.parent if p.name in TRACE_NAMES else None
        payload = question_payload(p, qdir)
        if payload["header"] is None:
            raise ViewError(f"{p} is not a pyrag-dsl trace (JSON Lines with a pyrag-dsl-trace header)")
        return payload, []
    if not p.is_dir():
        raise ViewError(f"no such file or directory: {p}")
    if (p / "trace.jsonl").is_file() or (p / "result.json").is_file():
        trace = p / "trace.jsonl"
        return question_payload(trace if trace.is_file() else None, p), []
    if any(p.glob(RECORD_GLOB)) or (p / "summary.json").is_file():
        return eval_payload(p)
    if any(d.is_dir() and d.name.isdigit() for d in p.iterdir()):
        return run_payload(p)
    raise ViewError(
        f"{p}: expected a trace.jsonl, a question directory (trace.jsonl, result.json), a run "
        "directory (outputs/<ts>/<n>/) or an eval output directory (records.jsonl, summary.json)"
    )


# -- writing ---------------------------------------------------------------------------------------------

_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def json_for_script(obj: Any) -> str:
    """JSON that is safe inside a <script type="application/json"> block: no "<" (so no "</script" and no
    "<!--"), no ">" or "&", and no U+2028/U+2029; each is written as a \\u escape inside its string."""
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: ASCII escapes carry it
        text = json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    for ch, esc in _SCRIPT_ESCAPES.items():
        if ch in text:
            text = text.replace(ch, esc)
    return text


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _assets() -> tuple[str, str]:
    js = (ASSETS / "viewer.js").read_text(encoding="utf-8")
    css = (ASSETS / "viewer.css").read_text(encoding="utf-8")
    if "</" in js.lower() or "<!--" in js or "</" in css:
        raise AssertionError("viewer assets must not contain '</' or '<!--'")
    return js, css


def content_security_policy(js: str, css: str) -> str:
    return (
        f"default-src 'none'; script-src {_sha256(js)}; style-src {_sha256(css)}; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )


def render_html(payload: dict[str, Any], questions: list[dict[str, Any]] | None = None) -> str:
    js, css = _assets()
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n',
        f'<meta http-equiv="Content-Security-Policy" content="{content_security_policy(js, css)}">\n',
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>pyrag-dsl view</title>\n",
        f'<style>{css}</style>\n</head><body>\n<div id="app"><noscript>This page needs JavaScript '
        "(one inline script, no network).</noscript></div>\n",
        f'<script type="application/json" id="pyrag-data">{json_for_script(payload)}</script>\n',
        f"<script>{js}</script>\n",
    ]
    # each question's data after the script: the table is drawn (and painted) before they are parsed
    for i, q in enumerate(questions or []):
        parts.append(f'<script type="application/json" id="pyrag-q-{i}">{json_for_script(q)}</script>\n')
    parts.append("</body></html>\n")
    return "".join(parts)


def default_out(path: str | Path) -> Path:
    p = Path(path)
    if p.is_file():
        return p.with_suffix(".html") if p.suffix != ".html" else p.with_name(p.name + ".view.html")
    return p / "view.html"


def write_view(path: str | Path, out: str | Path | None = None) -> tuple[Path, dict[str, Any]]:
    """Write the page (atomically); returns (its path, the main payload)."""
    payload, questions = load(path)
    target = Path(out) if out is not None else default_out(path)
    html = render_html(payload, questions)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target, payload


__all__ = [
    "ViewError",
    "content_security_policy",
    "default_out",
    "eval_payload",
    "json_for_script",
    "load",
    "question_payload",
    "read_trace",
    "render_html",
    "run_payload",
    "write_view",
]
