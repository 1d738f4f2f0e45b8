"""`pyrag-dsl view`: the page's data cannot become markup (unit tests), and the pages open in a real headless
Chromium (Debian's `chromium`, driven over the DevTools protocol) with no console error, hostile text shown as
text, and first paint under a second for a 100-question eval and a 1,000-step trace.

Without chromium the browser tests skip on a developer's machine and FAIL in CI (env CI set)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from pyrag_dsl.observe.view import ViewError, json_for_script, load, render_html, write_view

HOSTILE = (
    '<script>window.pwned=1</script><img src=x onerror="window.pwned=2"></script><!-- '
    '<iframe src="javascript:window.pwned=3"></iframe><b onmouseover=alert(1)>bold</b> '
    "admin\u202egnp.exe\u202c \u2066isolated\u2069 \u200bzero-width line\u2028sep\u2029 ${x} {{x}} ]]> &amp; &lt;"
)
PAINT_BUDGET_MS = 1000


# -- data: traces and eval directories as the pipeline and `eval` write them -----------------------------


def _doc(i: int, query: str, hostile: bool) -> dict[str, Any]:
    text = f"Passage {i} about {query}. " + "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 8
    if hostile and i == 0:
        text = HOSTILE + " " + text
    return {
        "id": f"doc{i}",
        "title": (HOSTILE if hostile and i == 1 else f"Title {i}: {query[:30]}"),
        "text": text,
        "score": round(12.5 - i, 3),
    }


class _TraceBuilder:
    """Appends trace events one after another in time: each starts where the one before ended."""

    def __init__(self, t0: float) -> None:
        self.events: list[dict[str, Any]] = []
        self.t = t0

    def add(self, kind: str, dur: float, **kw: Any) -> dict[str, Any]:
        e = {"kind": kind, "step": len(self.events) + 1, "start": self.t, "end": self.t + dur, **kw}
        self.events.append(e)
        self.t += dur
        return e

    def llm(self, dur: float, agent: str, model: str, messages: list, reply: str, tokens: tuple[int, int]) -> None:
        prompt_tokens, completion_tokens = tokens
        self.add(
            "llm",
            dur,
            agent=agent,
            model=model,
            messages=messages,
            reply=reply,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )

    def call(self, kind: str, dur: float, statement: int, source: str, target: str, end_col: int, **kw: Any):
        """A retrieve or answer step of statement `statement` (on line statement + 1)."""
        line = statement + 1
        return self.add(
            kind,
            dur,
            statement=statement,
            line=line,
            col=1,
            end_line=line,
            end_col=end_col,
            source=source,
            target=target,
            tool=kind,
            **kw,
        )


def _program_lines(subs: list[str], calls: int, hostile: bool) -> list[str]:
    lines = []
    for i in range(calls):
        lines.append(f'docs{i} = retrieve("{subs[i % len(subs)] if not hostile else "q"}")')
        lines.append(f'ans{i} = answer("what about {i}?", docs{i})')
    lines.append('final_answer = answer(f"Given: {ans0}. Answer the question: the question")')
    return lines


def _add_plan_and_repair(b: _TraceBuilder, lines: list[str], good: str, llm: bool) -> None:
    """A first plan with an undefined name, the repair request, and the repaired plan."""
    bad = good.replace("{ans0}", "{ans_0}")
    line = len(lines)
    col = bad.splitlines()[-1].index("ans_0") + 1
    err = {
        "type": "UndefinedName",
        "message": "name 'ans_0' is not defined",
        "line": line,
        "col": col,
        "end_line": line,
        "end_col": col + 5,
        "hint": "Did you mean 'ans0'?",
    }
    b.add("plan", 0.9, round=0, program=bad, errors=[err])
    if llm:
        messages = [{"role": "user", "content": "fix " + bad}]
        b.llm(0.5, "repair", "Qwen2.5-Coder-7B", messages, good, (800, 120))
    feedback = "UndefinedName: name 'ans_0' is not defined\n" + bad.splitlines()[-1]
    b.add("repair", 0.01, round=1, errors=[err], feedback=feedback, program=good)
    b.add("plan", 0.0, round=1, program=good, errors=[])


def _add_calls(b: _TraceBuilder, lines: list[str], subs: list[str], calls: int, hostile: bool, llm: bool) -> None:
    """`calls` retrieve/answer pairs; odd retrievals are batched with the one before (same start and end)."""
    for i in range(calls):
        src_r, src_a = lines[2 * i], lines[2 * i + 1]
        query = subs[i % len(subs)]
        docs = [_doc(k, query, hostile) for k in range(5)]
        e = b.call(
            "retrieve",
            0.05,
            2 * i,
            src_r,
            f"docs{i}",
            len(src_r) + 1,
            inputs={"query": query, "topk": 5},
            output=docs,
            cached=False,
        )
        if i % 2 == 1:
            before = [x for x in b.events[:-1] if x["kind"] == "retrieve"][-1]
            e["start"], e["end"] = before["start"], before["end"]
        answer = HOSTILE if hostile and i == 0 else ("unknown" if i == 1 else f"answer {i}")
        if llm:
            messages = [{"role": "user", "content": f"Answer the question using the documents: {query}"}]
            b.llm(0.2, "answer", "Qwen2.5-7B-Instruct", messages, f"<answer>{answer}</answer>", (900, 12))
        inputs = {"query": f"what about {i}?", "docs": "docs"}
        b.call("answer", 0.2, 2 * i + 1, src_a, f"ans{i}", len(src_a) + 1, inputs=inputs, output=answer, cached=False)


def _add_adaptive_retry(b: _TraceBuilder, lines: list[str], subs: list[str], calls: int) -> None:
    """Answer 1 was 'unknown': its retrieval again with top-k 10, and the answer again."""
    b.add(
        "adaptive_retry",
        0.0,
        statement=3,
        target="ans1",
        answer="unknown",
        retrieve_statements=[2],
        topk=10,
        rerun=[2, 3, 2 * calls],
        policy="incremental",
    )
    boosted = [_doc(k, "boosted", False) for k in range(10)]
    inputs = {"query": subs[1 % len(subs)], "topk": 10}
    b.call("retrieve", 0.06, 2, lines[2], "docs1", 10, inputs=inputs, output=boosted, cached=False)
    inputs = {"query": "what about 1?", "docs": "docs"}
    b.call("answer", 0.2, 3, lines[3], "ans1", 10, inputs=inputs, output="answer 1", cached=False)


def trace_events(
    question: str,
    calls: int = 6,
    hostile: bool = False,
    t0: float = 1_795_535_078.0,
    repair: bool = True,
    llm: bool = True,
) -> list[dict[str, Any]]:
    """A trace as `pyrag-dsl run` writes it (decompose, plan with a repair, execute, calls, adaptive retry,
    final), plus the `llm` events of newer traces; `calls` retrieve/answer pairs (so 2*calls call steps)."""
    q = HOSTILE if hostile else question
    b = _TraceBuilder(t0)
    subs = [f"sub-question {i} of {q}" for i in range(min(calls, 4))]
    if llm:
        messages = [{"role": "system", "content": "You split a multi-hop question"}, {"role": "user", "content": q}]
        b.llm(0.4, "decompose", "Qwen2.5-7B-Instruct", messages, json.dumps(subs), (210, 40))
    b.add("decompose", 0.01, question=q, sub_queries=subs, fallback=False, attempts=1, raw=[json.dumps(subs)])
    lines = _program_lines(subs, calls, hostile)
    good = "\n".join(lines) + "\n"
    # streamed plan execution: the first statement was dispatched 0.3 s into the plan, done at 0.5 s
    dispatched = [{"statement": 0, "source": lines[0], "at_s": 0.3, "done_s": 0.5, "ok": True}]
    b.add("plan_stream", 0.9, dispatched=dispatched, plan_done_s=0.8)
    b.t -= 0.9  # the plan event below spans the same time
    if repair:
        _add_plan_and_repair(b, lines, good, llm)
    else:
        b.add("plan", 0.9, round=0, program=good, errors=[])
    b.add("execute", 0.0, attempt=1, program=good, settings={"topk": 5})
    _add_calls(b, lines, subs, calls, hostile, llm)
    if calls > 1:
        _add_adaptive_retry(b, lines, subs, calls)
    final = HOSTILE if hostile else "the final answer"
    inputs = {"query": "Given: ...", "docs": None}
    b.call("answer", 0.3, 2 * calls, lines[-1], "final_answer", 20, inputs=inputs, output=final, cached=False)
    b.add("final", 0.0, final_answer=final, program=good, error=None)
    return b.events


def write_trace(path: Path, question: str, **kw: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    events = trace_events(question, **kw)
    header = {
        "schema": "pyrag-dsl-trace",
        "version": 1,
        "question": events[1 if kw.get("llm", True) else 0]["question"],
        "settings": {"topk": 5, "boosted_topk": 10, "policy": "incremental", "parallel": True},
    }
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in [header, *events]) + "\n", encoding="utf-8")
    return path


def write_eval_dir(base: Path, n: int = 100, hostile_every: int = 17) -> Path:
    """An eval output directory as `pyrag-dsl eval` leaves it: records.jsonl, summary.json, traces/<id>/."""
    base.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        hostile = i % hostile_every == 3
        qid = f"q{i:03d}"
        rel = f"traces/{qid}/trace.jsonl"
        question = HOSTILE if hostile else f"Question {i}: which film did the director of film {i} make first?"
        error = {"type": "LLMError", "message": "timed out after 60 s"} if i % 11 == 5 else None
        if error is None:
            write_trace(base / rel, question, calls=3, hostile=hostile, t0=1_795_535_078.0 + i)
            (base / "traces" / qid / "result.json").write_text(json.dumps({"final_answer": "x"}), encoding="utf-8")
        em = 1.0 if i % 3 == 0 else 0.0
        records.append(
            {
                "id": qid,
                "question": question,
                "gold": ["Gold " + str(i)],
                "type": "bridge" if i % 2 else "comparison",
                "method": "pyrag",
                "prediction": HOSTILE if hostile else f"prediction {i}",
                "metrics": {"em": em, "f1": em or 0.25, "acc": em, "recall": 1.0 if i % 4 else 0.5},
                "sub_queries": ["a", "b"],
                "program": "x = 1\n",
                "repairs": i % 2,
                "adaptive_retry": i % 5 == 0,
                "llm_calls": {"total_requests": 4},
                "seconds": 10.0 + i,
                "error": error,
                "trace": rel if error is None else None,
            }
        )
    (base / "records.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    summary = {
        "overall": {
            "n": n,
            "em": 0.34,
            "f1": 0.5,
            "acc": 0.34,
            "recall": 0.87,
            "error_rate": 0.09,
            "llm_calls": 4.1,
            "seconds_p50": 60.0,
            "seconds_p95": 108.0,
        },
        "error_types": {"LLMError": 9},
        "complete": True,
        "config": {"method": "pyrag", "data": {"source": "hotpotqa-dev300"}, "llm": {"model": "scripted"}},
    }
    (base / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return base


# -- a headless Chromium over the DevTools protocol ----------------------------------------------------


def find_chromium() -> str | None:
    for name in (
        os.environ.get("PYRAG_DSL_CHROMIUM"),
        "/usr/bin/chromium",
        "chromium",
        "chromium-browser",
        "google-chrome",
    ):
        if name and (shutil.which(name) or (os.path.isfile(name) and os.access(name, os.X_OK))):
            return shutil.which(name) or name
    return None


def _connect(url: str):
    try:
        from websockets.sync.client import connect
    except ImportError:  # websocket-client
        import websocket

        ws = websocket.create_connection(url, timeout=60, suppress_origin=True)
        return ws, lambda timeout: (ws.settimeout(timeout), ws.recv())[1]
    ws = connect(url, max_size=None, open_timeout=30).__enter__()  # closed by Chromium.close
    return ws, lambda timeout: ws.recv(timeout=timeout)


class Chromium:
    def __init__(self, binary: str, width: int = 1280, height: int = 900) -> None:
        self.dir = tempfile.mkdtemp(prefix="pyrag-view-chromium-")
        self.proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.dir}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.dir) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and len(port_file.read_text().split()) >= 2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        port, path = port_file.read_text().split()[:2]
        self.ws, self._recv = _connect(f"ws://127.0.0.1:{port}{path}")
        self.n = 0
        self.events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.page(f"{domain}.enable")
        self.page(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def _read(self, timeout: float) -> dict[str, Any]:
        return json.loads(self._recv(timeout))

    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        self.n += 1
        msg: dict[str, Any] = {"id": self.n, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(max(0.05, deadline - time.monotonic()))
            if m.get("id") == self.n:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)
            if time.monotonic() > deadline:
                raise TimeoutError(method)

    def page(self, method: str, params: dict | None = None, timeout: float = 60) -> dict[str, Any]:
        return self.send(method, params, self.session, timeout)

    def wait_event(self, method: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = len(self.events)
        for m in self.events[:seen]:
            if m.get("method") == method and not m.get("_used"):
                m["_used"] = True
                return m
        while time.monotonic() < deadline:
            m = self._read(max(0.05, deadline - time.monotonic()))
            self.events.append(m)
            if m.get("method") == method:
                m["_used"] = True
                return m
        raise TimeoutError(method)

    def open(self, path: Path, hash_: str = "") -> None:
        for m in self.events:
            if m.get("method") == "Page.loadEventFired":
                m["_used"] = True
        self.page("Page.navigate", {"url": Path(path).resolve().as_uri() + hash_})
        self.wait_event("Page.loadEventFired")

    def js(self, expression: str, timeout: float = 30) -> Any:
        r = self.page(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}, timeout=timeout
        )
        if "exceptionDetails" in r:
            raise RuntimeError(json.dumps(r["exceptionDetails"])[:2000])
        return r["result"].get("value")

    def paint_timing(self) -> dict[str, float]:
        """Milliseconds from navigation start: first-contentful-paint, the viewer's rendered mark, load end."""
        return self.js("""new Promise(function (done) {
          var t0 = performance.now();
          (function poll() {
            var p = performance.getEntriesByType('paint'), fcp = p.filter(function (e) {
              return e.name === 'first-contentful-paint'; })[0];
            var mark = performance.getEntriesByName('pyrag-view-rendered')[0];
            var nav = performance.getEntriesByType('navigation')[0];
            if ((fcp && mark) || performance.now() - t0 > 10000) done({fcp: fcp ? fcp.startTime : null,
              rendered: mark ? mark.startTime : null, dom: nav ? nav.domContentLoadedEventEnd : null,
              load: nav ? nav.loadEventEnd : null});
            else setTimeout(poll, 20);
          })();
        })""")

    def console_errors(self) -> list[str]:
        out = []
        for m in self.events:
            method, p = m.get("method"), m.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:500])
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console.error: " + json.dumps(p.get("args", []))[:500])
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append("log: " + str(p["entry"].get("text"))[:500])
        return out

    def screenshot(self, path: Path, full: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full:
            size = self.js("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params.update(
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size[0], "height": min(size[1], 4000), "scale": 1},
            )
        data = self.page("Page.captureScreenshot", params)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        except Exception:  # noqa: BLE001
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


# -- the page: data stays data ---------------------------------------------------------------------------


def _blocks(html: str) -> dict[str, str]:
    return dict(re.findall(r'<script type="application/json" id="([^"]+)">(.*?)</script>', html, re.S))


def _without_data(html: str) -> str:
    return re.sub(r'<script type="application/json" id="[^"]+">.*?</script>', "", html, flags=re.S)


def test_json_for_script_cannot_end_the_block_and_reads_back():
    value = {
        "a": "</script><script>alert(1)</script><!-- -->",
        "b": "x\u2028y\u2029z & > <",
        "c": [1, 2.5, None, True],
        "lone": "\ud800",
    }
    text = json_for_script(value)
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text
    assert json.loads(text) == value
    html = render_html({"kind": "question", "events": [], "q": value})
    assert json.loads(_blocks(html)["pyrag-data"])["q"] == value
    html.encode("utf-8")  # the lone surrogate travels as an ASCII escape


def test_csp_allows_exactly_the_inline_script_and_style(tmp_path):
    html = render_html(load(write_trace(tmp_path / "q" / "trace.jsonl", "Q", hostile=True))[0])
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html).group(1)
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'" and directives["img-src"] == "data:"
    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)

    def sha(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert directives["script-src"] == sha(script) and directives["style-src"] == sha(style)
    assert "unsafe" not in csp
    rest = _without_data(html)
    assert "pwned" not in rest and "onerror" not in rest and "<img" not in rest
    for api in (
        r"\.innerHTML",
        r"\.outerHTML",
        r"insertAdjacentHTML",
        r"document\.write",
        r"\beval\(",
        r"Function\(",
        r"setAttribute\(\s*[\"']on",
        r"\.on\w+\s*=",
    ):
        assert not re.search(api, script), api
    assert len(re.findall(r"<script", rest)) == 1 and " on" not in re.sub(r"<script>.*?</script>", "", rest, flags=re.S)


def test_load_knows_traces_questions_runs_and_evals(tmp_path):
    trace = write_trace(tmp_path / "run" / "1" / "trace.jsonl", "Q1")
    (trace.parent / "result.json").write_text(json.dumps({"original_query": "Q1", "final_answer": "A"}))
    (trace.parent / "generated_code.py").write_text("x = 1\n")
    write_trace(tmp_path / "run" / "2" / "trace.jsonl", "Q2")
    q, extra = load(trace)
    assert q["kind"] == "question" and q["result"]["final_answer"] == "A" and q["code"] == "x = 1\n" and not extra
    assert [e["kind"] for e in q["events"]].count("llm") > 0  # kinds the typed reader does not know stay
    assert q["diffs"][0] is None and ["-", q["diffs"][1][-2][1]] in q["diffs"][1]
    assert load(trace.parent)[0]["result"] == q["result"]
    run, questions = load(tmp_path / "run")
    assert run["kind"] == "run" and [r["question"] for r in run["rows"]] == ["Q1", "Q2"] and len(questions) == 2
    ev, questions = load(write_eval_dir(tmp_path / "eval", n=12))
    assert ev["kind"] == "eval" and len(ev["rows"]) == 12 and len(questions) == 12
    assert ev["rows"][5]["error_type"] == "LLMError" and not ev["rows"][5]["has_trace"]
    assert questions[0]["events"] and questions[0]["record"]["id"] == "q000"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ViewError, match="expected a trace.jsonl"):
        load(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(ViewError, match="not a pyrag-dsl trace"):
        load(tmp_path / "notes.txt")


def test_a_bad_line_is_noted_and_the_rest_is_shown(tmp_path):
    trace = write_trace(tmp_path / "t.jsonl", "Q")
    lines = trace.read_text().split("\n")
    lines.insert(3, '{"kind": "retrieve", "step": 99, "start": NaN')  # torn
    lines.insert(4, '{"kind": "answer", "step": 98, "start": NaN, "end": Infinity, "output": "x"}')
    lines.insert(5, "[" * 100_000)
    trace.write_text("\n".join(lines))
    q, _ = load(trace)
    # the project's one JSON reader (config.jsonl) refuses NaN/Infinity, as replay does: noted, not shown
    assert len(q["notes"]) == 3 and all("not JSON" in n for n in q["notes"])
    assert not any(e.get("step") in (98, 99) for e in q["events"]) and q["events"]
    json.loads(_blocks(render_html(q))["pyrag-data"])


def test_an_eval_record_cannot_point_outside_its_directory(tmp_path):
    secret = write_trace(tmp_path / "secret" / "trace.jsonl", "SECRET QUESTION")
    base = write_eval_dir(tmp_path / "eval", n=2)
    recs = [json.loads(x) for x in (base / "records.jsonl").read_text().splitlines()]
    recs[0]["trace"] = "../secret/trace.jsonl"
    recs[1]["trace"] = str(secret)
    (base / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    _, questions = load(base)
    assert all(not q["events"] and "outside" in q["notes"][0] for q in questions)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pyrag_dsl.cli", *args], capture_output=True, text=True, timeout=120)


def test_cli_view_writes_one_page_and_refuses_what_it_cannot_show(tmp_path):
    base = write_eval_dir(tmp_path / "eval", n=5)
    r = _cli("view", str(base))
    assert r.returncode == 0, r.stderr
    assert (base / "view.html").is_file() and "5 questions" in r.stdout and "open: file://" in r.stdout
    trace = write_trace(tmp_path / "x.jsonl", "Q")
    r = _cli("view", str(trace), "--out", str(tmp_path / "page.html"))
    assert r.returncode == 0 and (tmp_path / "page.html").is_file()
    for bad in (str(tmp_path / "missing"), str(tmp_path / "eval" / "summary.json")):
        r = _cli("view", bad)
        assert r.returncode == 2 and r.stderr.startswith("error:"), r.stderr


def test_view_open_hands_the_page_to_the_browser(tmp_path, monkeypatch):
    import webbrowser

    from pyrag_dsl.cli import main

    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda uri: opened.append(uri) or True)
    trace = write_trace(tmp_path / "q" / "trace.jsonl", "Q")
    assert main(["view", str(trace.parent), "--open"]) == 0
    assert opened == [(trace.parent / "view.html").resolve().as_uri()]


# -- the pages in a real browser -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    binary = find_chromium()
    why = None
    if binary is None:
        why = "chromium not found (apt-get install chromium; or set PYRAG_DSL_CHROMIUM)"
    else:
        try:
            import websockets  # noqa: F401
        except ImportError:
            why = "the websockets package is missing (pip install -e '.[test]')"
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {why}")
        pytest.skip(why)
    chrome = Chromium(binary)
    yield chrome
    chrome.close()


def _fresh(browser: Chromium) -> None:
    browser.events.clear()


def _no_injection(browser: Chromium) -> dict[str, Any]:
    """What the page would have if the hostile text had become markup: none of it may be there."""
    return browser.js("""({
      pwned: typeof window.pwned,
      injected: document.querySelectorAll('iframe, b[onmouseover], img:not([alt="eval report chart"])').length,
      handlers: Array.prototype.filter.call(document.querySelectorAll('*'), function (e) {
        return Array.prototype.some.call(e.attributes, function (a) { return /^on/i.test(a.name); }); }).length,
      scripts: Array.prototype.filter.call(document.scripts, function (s) { return s.type !== 'application/json'; }).length,
      shown: document.body.innerText.indexOf('<script>window.pwned=1</script><img src=x onerror=') >= 0,
      marks: Array.prototype.map.call(document.querySelectorAll('.ctl'), function (e) { return e.textContent; })
    })""")


def _open_everything(browser: Chromium, scope: str = "#app") -> None:
    """Open every section, every step, LLM call and fold: all lazily built content gets built."""
    browser.js(
        """new Promise(function (done) {
      var root = document.querySelector('%s');
      root.querySelectorAll('details').forEach(function (d) { d.open = true; });
      setTimeout(function () {
        root.querySelectorAll('tr.row').forEach(function (r) { r.click(); });
        root.querySelectorAll('button.fold').forEach(function (b) { b.click(); });
        setTimeout(done, 50);
      }, 50);
    })"""
        % scope
    )


def _paint(browser: Chromium, page: Path, runs: int = 5) -> list[dict[str, float]]:
    out = []
    for _ in range(runs):
        browser.open(page)
        out.append(browser.paint_timing())
    return out


def _report(tmp_path: Path, name: str, timings: list[dict[str, float]]) -> float:
    fcp = [t["fcp"] for t in timings]
    load_avg = os.getloadavg()
    (tmp_path / f"{name}-paint.json").write_text(json.dumps({"timings": timings, "loadavg": load_avg}))
    print(
        f"\n{name}: first-contentful-paint ms {fcp} (median {statistics.median(fcp):.0f}); "
        f"rendered ms {[round(t['rendered']) for t in timings]}; load average {load_avg}"
    )
    return statistics.median(fcp)


@pytest.mark.browser
def test_hostile_question_renders_as_text_with_no_console_error(browser, tmp_path):
    trace = write_trace(tmp_path / "q" / "trace.jsonl", "Q", hostile=True)
    page, _ = write_view(trace.parent)
    _fresh(browser)
    browser.open(page)
    before = _no_injection(browser)
    _open_everything(browser)
    after = _no_injection(browser)
    browser.screenshot(tmp_path / "question.png")
    for state in (before, after):
        assert state["pwned"] == "undefined" and state["injected"] == 0 and state["handlers"] == 0
        assert state["scripts"] == 1 and state["shown"]
        assert {"U+202E", "U+202C", "U+2066", "U+2069", "U+200B", "U+2028"} <= set(state["marks"])
    assert browser.console_errors() == []
    text = browser.js("document.body.innerText")
    for part in (
        "Repair round 1",
        "UndefinedName",
        "^^^^^",
        "Adaptive retrieval",
        "top-k 10",
        "Timeline",
        "decompose",
        "score 12.500",
    ):
        assert part in text, part
    assert browser.js("document.querySelectorAll('.diff .del').length") == 1
    llm_events = [e for e in json.loads(_blocks(page.read_text())["pyrag-data"])["events"] if e["kind"] == "llm"]
    assert browser.js("document.querySelectorAll('.wf .bar.llm').length") == len(llm_events) == 8
    assert browser.js("document.querySelectorAll('.wf .bar.prefetch').length") == 1
    assert "prefetch stmt 0" in text and "retrieve docs1 \u00d72" in text  # streamed prefetch, a batch of two
    assert (tmp_path / "question.png").stat().st_size > 10_000


@pytest.mark.browser
def test_the_harness_sees_a_refused_script(browser, tmp_path):
    """Control: the same page with its script changed by one byte is refused by the CSP, and the refusal is
    a console error the tests see (so "no console error" above means something)."""
    trace = write_trace(tmp_path / "q" / "trace.jsonl", "Q")
    page, _ = write_view(trace)
    html = page.read_text()
    page.write_text(html.replace('"use strict";', '"use strict"; ', 1))
    _fresh(browser)
    browser.open(page)
    time.sleep(0.2)
    errors = browser.console_errors()
    assert errors and any("Content Security Policy" in e for e in errors), errors
    assert browser.js("document.querySelectorAll('#app h1').length") == 0


@pytest.mark.browser
def test_eval_view_of_100_questions_paints_in_under_a_second(browser, tmp_path):
    base = write_eval_dir(tmp_path / "eval", n=100)
    page, payload = write_view(base)
    _fresh(browser)
    median = _report(tmp_path, "eval-100", _paint(browser, page))
    assert median < PAINT_BUDGET_MS
    assert browser.js("document.querySelectorAll('tbody tr.row').length") == 100
    browser.screenshot(tmp_path / "eval.png")
    wrong = sum(1 for r in payload["rows"] if r["em"] != 1)
    errors = sum(1 for r in payload["rows"] if r["error_type"])

    def shown(select_value: str) -> int:
        return browser.js(f"""(function () {{ var s = document.querySelector('.filters select');
          s.value = '{select_value}'; s.dispatchEvent(new Event('change'));
          return document.querySelectorAll('tbody tr.row').length; }})()""")

    assert (shown("wrong"), shown("errors"), shown("all")) == (wrong, errors, 100)
    firsts = browser.js("""(function () { var th = Array.prototype.filter.call(document.querySelectorAll('th'),
      function (h) { return h.textContent === 's'; })[0]; th.click(); th.click();
      return document.querySelector('tbody tr.row td').textContent; })()""")
    assert firsts == "100"  # sorted by seconds, descending
    browser.js("document.querySelector('tbody tr.row:nth-child(3) td:nth-child(3)').click()")  # a row opens its view
    assert browser.js("location.hash") == "#q97"
    browser.js("location.hash = '#q3'")
    time.sleep(0.1)
    assert browser.js("document.querySelector('#qview h1').textContent") == HOSTILE.replace("\u202e", "U+202E").replace(
        "\u202c", "U+202C"
    ).replace("\u2066", "U+2066").replace("\u2069", "U+2069").replace("\u200b", "U+200B").replace(
        "\u2028", "U+2028"
    ).replace("\u2029", "U+2029")
    _open_everything(browser, "#qview")
    assert browser.js("location.hash") == "#q3"
    state = _no_injection(browser)
    assert state["pwned"] == "undefined" and state["injected"] == 0 and state["handlers"] == 0 and state["shown"]
    browser.screenshot(tmp_path / "eval-question.png")
    browser.js("document.querySelector('#qview .nav a').click()")  # back to all questions
    time.sleep(0.1)
    assert browser.js("document.getElementById('qview') === null")
    assert browser.console_errors() == []


@pytest.mark.browser
def test_a_1000_step_trace_paints_in_under_a_second(browser, tmp_path):
    trace = write_trace(tmp_path / "big" / "trace.jsonl", "Big", calls=500)
    page, payload = write_view(trace)
    steps = sum(1 for e in payload["events"] if e["kind"] in ("retrieve", "answer", "execute", "adaptive_retry"))
    assert steps >= 1000
    _fresh(browser)
    median = _report(tmp_path, "trace-1000", _paint(browser, page))
    assert median < PAINT_BUDGET_MS
    deadline = time.monotonic() + 20
    while browser.js("document.querySelectorAll('table.steps tbody tr.row').length") < steps:
        assert time.monotonic() < deadline, "the other steps were not rendered after the first paint"
        time.sleep(0.1)
    browser.screenshot(tmp_path / "trace.png")
    assert browser.console_errors() == []


def _real_run_handler():
    """A scripted Plan LLM whose first program has an error (one repair round) over a real index, where one
    answer needs the boosted top-k (one adaptive retry): every part of the question view has something."""
    from test_pipeline import ADAPTIVE_PROGRAM, _synth_age, _unknown_at_top5, default_handler

    broken = ADAPTIVE_PROGRAM.replace("{bruce_birth}", "{bruce_brith}")
    base = default_handler([broken, ADAPTIVE_PROGRAM], answers=_unknown_at_top5)
    return lambda role, prompt, body: _synth_age(role, prompt, body) or base(role, prompt, body)


def run_for_view(bm25_index: Path, out: Path, *extra: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`pyrag-dsl run --parallel` against a scripted LLM and the real Lucene index; the view command it printed."""
    from scripted_llm import ScriptedLLM

    questions = out.parent / "questions.txt"
    questions.write_text("How old was Virginia Bruce in Let Freedom Ring?\n")
    with ScriptedLLM(_real_run_handler()) as llm:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "pyrag_dsl.cli",
                "run",
                str(questions),
                "--llm-url",
                llm.url,
                "--llm-model",
                "scripted",
                "--index",
                str(bm25_index),
                "--output-dir",
                str(out),
                "--parallel",
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={k: v for k, v in os.environ.items() if not k.endswith(("LLM_MODEL", "LLM_BASE_URL"))},
        )
    printed = [
        line.split("view: ", 1)[1].split()
        for line in (r.stdout + r.stderr).splitlines()
        if "view: pyrag-dsl view" in line
    ]
    return r, printed[0] if printed else []


@pytest.mark.browser
@pytest.mark.slow(seconds=25)
def test_a_real_run_prints_its_view_command_and_the_view_opens(bm25_index, browser, tmp_path):
    r, command = run_for_view(bm25_index, tmp_path / "outputs")
    assert r.returncode == 0, r.stdout + r.stderr
    assert command[:2] == ["pyrag-dsl", "view"] and Path(command[2]).name == "1"
    v = _cli(*command[1:])
    assert v.returncode == 0, v.stderr
    page = Path(command[2]) / "view.html"
    _fresh(browser)
    browser.open(page)
    text = browser.js("document.body.innerText")
    assert "How old was Virginia Bruce in Let Freedom Ring?" in text and "28" in text
    assert "Repair round 1" in text and "UndefinedName" in text and "Adaptive retrieval" in text
    trace = [json.loads(x) for x in (Path(command[2]) / "trace.jsonl").read_text().splitlines()[1:]]
    calls = [e for e in trace if e["kind"] in ("retrieve", "answer", "execute", "adaptive_retry", "assign", "error")]
    assert browser.js("document.querySelectorAll('table.steps tbody tr.row').length") == len(calls)
    _open_everything(browser)
    assert (
        browser.js("document.querySelectorAll('.wf .bar').length") >= len(calls) - 2
    )  # execute/adaptive: instants too
    browser.screenshot(tmp_path / "real-run.png")
    assert browser.console_errors() == []


@pytest.mark.browser
def test_serve_ui_serves_views_read_only_and_nothing_outside_its_directory(browser, tmp_path):
    import http.client

    from pyrag_dsl.observe.serve import serve_in_thread

    root = tmp_path / "served"
    write_eval_dir(root / "runs" / "pyrag", n=4)
    write_trace(root / "outputs" / "20260101-000000" / "1" / "trace.jsonl", "Q1")
    write_trace(root / "outputs" / "20260101-000000" / "2" / "trace.jsonl", "Q2")
    write_trace(tmp_path / "secret" / "trace.jsonl", "SECRET")
    server, url = serve_in_thread(root)
    port = server.server_address[1]

    def get(path: str, method: str = "GET", host: str | None = None) -> tuple[int, str, dict]:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.putrequest(method, path, skip_host=True)
        c.putheader("Host", host or f"127.0.0.1:{port}")
        c.endheaders()
        r = c.getresponse()
        body = r.read().decode("utf-8", "replace")
        c.close()
        return r.status, body, dict(r.getheaders())

    try:
        status, body, headers = get("/")
        assert status == 200 and "default-src 'none'" in headers["Content-Security-Policy"]
        rows = json.loads(_blocks(body)["pyrag-data"])["rows"]
        assert rows == [{"path": "outputs/20260101-000000", "kind": "run"}, {"path": "runs/pyrag", "kind": "eval"}]
        status, body, _ = get("/view/runs/pyrag")
        assert status == 200 and len(json.loads(_blocks(body)["pyrag-data"])["rows"]) == 4
        for bad in (
            "/view/../secret",
            "/view/%2e%2e/secret",
            "/view//" + str(tmp_path / "secret"),
            "/view/runs/../../secret/trace.jsonl",
        ):
            status, body, _ = get(bad)
            assert status == 403 and "SECRET" not in body, bad
        assert get("/view/runs/nothing-here")[0] == 404
        assert get("/", host="evil.example:80")[0] == 403  # DNS rebinding
        assert get("/", method="POST")[0] == 501 and get("/", method="PUT")[0] == 501
        _fresh(browser)
        browser.page("Page.navigate", {"url": url + "/"})
        browser.wait_event("Page.loadEventFired")
        browser.js("document.querySelectorAll('#app a')[1].click()")
        deadline = time.monotonic() + 10
        while browser.js("document.querySelectorAll('tbody tr.row').length") != 4:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert browser.console_errors() == []
    finally:
        server.shutdown()
        server.server_close()
