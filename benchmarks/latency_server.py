"""A loopback OpenAI-compatible chat server whose latency is per token, for benchmarks.

* `GET /v1/models` and `POST /v1/chat/completions`, with and without `"stream": true` (SSE chunks
  `data: {...}` ... `data: [DONE]`, usage in a last chunk when `stream_options.include_usage` is set).
* Latency model: `base_s` before the first token, then `per_token_s` per completion token (defaults
  20 ms + 10 ms per token). Streamed replies send each token as it is "generated"; plain replies arrive
  after the whole time. Requests are served in parallel (one thread each), like vLLM's batching.
* Tokens are counted as ceil(characters / 4) (about right for English and code with BPE tokenizers);
  `usage` reports those counts for the prompt (all messages) and the completion.
* Replies come from a `Script`: the request's role (decompose, plan, repair, answer_docs, answer_synth)
  is recognised by phrases of our prompt files, the question by its `Question:` line. The default script
  answers comparison questions ("Who is older, A or B?") with one branch per entity and a synthesis step.

Needs only the standard library (and the package's prompts); nothing from tests/.

    python benchmarks/latency_server.py --port 8337 --base-ms 20 --per-token-ms 10
"""

from __future__ import annotations

import argparse
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

# Phrases of pyrag_dsl/agents/prompts/*.txt that tell the agents' requests apart (checked in this order:
# a repair request also holds the plan prompt's phrases).
MARKERS = (
    ("repair", "is not valid. Fix every error"),
    ("plan", "Sub-questions:"),
    ("decompose", "You split a multi-hop question"),
    ("answer_docs", "Answer the question using the documents"),
    ("answer_synth", "Answer the question from the facts given in it"),
)


def count_tokens(text: str) -> int:
    """ceil(len(text) / 4), at least 1 for a non-empty text."""
    return math.ceil(len(text) / 4)


def role_of(messages: list[dict[str, Any]]) -> str:
    text = "\n".join(str(m.get("content") or "") for m in messages)
    for role, marker in MARKERS:
        if marker in text:
            return role
    return "unknown"


def last_user(messages: list[dict[str, Any]]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return str(users[-1].get("content") or "") if users else ""


def question_in(prompt: str) -> str:
    found = re.findall(r"Question: (.*)", prompt)
    return found[-1].strip() if found else ""


def doc_titles(prompt: str) -> list[str]:
    return re.findall(r"Document \d+ \(Title: (.*?)\):", prompt)


def entities(question: str) -> list[str]:
    """'Who is older, A or B?' -> [A, B]; 'Are A and B both ...' -> [A, B]; otherwise [question]."""
    m = re.match(r".*?,\s*(.+?)\s+or\s+(.+?)\?*$", question)
    if m:
        return [m.group(1).strip(), m.group(2).strip()]
    m = re.match(r"(?:Are|Were|Did|Do)\s+(.+?)\s+and\s+(.+?)\s+(?:both|the same|from)", question)
    if m:
        return [m.group(1).strip(), m.group(2).strip()]
    return [question.rstrip("?")]


def _ident(name: str) -> str:
    words = re.findall(r"[a-z0-9]+", name.lower())
    return "_".join(words[:2]) or "x"


def plan_program(question: str, subs: list[str]) -> str:
    """One retrieve + answer per sub-question, then a synthesis answer (5 statements for 2 branches)."""
    lines, facts = [], []
    for i, sub in enumerate(subs, 1):
        var = f"{_ident(sub.replace('When was', '').replace('born', ''))}_fact{i}"
        lines.append(f'docs{i} = retrieve("{sub}")')
        lines.append(f'{var} = answer("{sub}", docs{i})')
        facts.append(f"{sub} {{{var}}}")
    given = ". ".join(facts).replace('"', "'")
    lines.append(f'final_answer = answer(f"Given: {given}. Answer the question: {question}")')
    return "```python\n" + "\n".join(lines) + "\n```"


@dataclass
class Script:
    """Replies keyed on the request's role and question. `answers` maps a substring of the sub-question
    (or of the question, for synthesis) to the short answer; unknown ones get `default_answer`."""

    answers: dict[str, str] = field(default_factory=dict)
    default_answer: str = "unknown"
    synth_answer: str | None = None
    think_tokens: int = 0  # a <think>...</think> of about this many tokens before each answer (0: none)

    def __call__(self, role: str, prompt: str, body: dict[str, Any]) -> str:
        text = self._reply(role, prompt, body)
        if self.think_tokens and role.startswith("answer"):
            text = "<think>" + "step " * (self.think_tokens * 4 // 5) + "</think>" + text
        return text

    def _reply(self, role: str, prompt: str, body: dict[str, Any]) -> str:
        if role == "decompose":
            q = question_in(prompt) or prompt.strip().splitlines()[-1]
            subs = [f"When was {e} born?" for e in entities(q)] if " or " in q else [q]
            return json.dumps(subs)
        if role in ("plan", "repair"):
            text = "\n".join(str(m.get("content") or "") for m in body.get("messages", []))
            q = question_in(text)
            found = re.findall(r"Sub-questions: (.*)", text)
            try:
                subs = [str(x) for x in json.loads(found[-1])] if found else []
            except ValueError:
                subs = []
            return plan_program(q, subs or [q])
        if role == "answer_docs":
            q = question_in(prompt)
            for key, value in self.answers.items():
                if key in q:
                    return f"<answer>{value}</answer>"
            return f"<answer>{self.default_answer}</answer>"
        if role == "answer_synth":
            if self.synth_answer is not None:
                return f"<answer>{self.synth_answer}</answer>"
            asked = re.findall(r"Answer the question: (.*)", prompt)
            ents = entities(asked[-1].strip()) if asked else ["unknown"]
            return f"<answer>{ents[-1][:40]}</answer>"
        return "<answer>unknown</answer>"


Handler = Callable[[str, str, dict[str, Any]], str]


class LatencyServer:
    """`with LatencyServer(script) as s: s.url` -> 'http://127.0.0.1:PORT/v1'. `requests` records
    (role, prompt tokens, completion tokens, streamed) per request; `delay_for(role, prompt)`, when given,
    overrides the latency model with its own seconds."""

    def __init__(
        self,
        script: Handler | None = None,
        *,
        base_s: float = 0.020,
        per_token_s: float = 0.010,
        host: str = "127.0.0.1",
        port: int = 0,
        owned_by: str = "latency",
        delay_for: Callable[[str, str], float] | None = None,
    ) -> None:
        self.script = script or Script()
        self.base_s = base_s
        self.per_token_s = per_token_s
        self.owned_by = owned_by
        self.delay_for = delay_for
        self.requests: list[dict[str, Any]] = []
        self.in_flight = 0
        self.peak_in_flight = 0  # most chat requests being answered at once
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="latency-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def seconds_for(self, completion_tokens: int) -> float:
        """The latency model: time until the last token of a reply of that many tokens."""
        return self.base_s + self.per_token_s * completion_tokens

    def count(self, role: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r["role"] == role)

    def start(self) -> "LatencyServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "LatencyServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _chunk(model: str, created: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-latency",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _pieces(text: str, n: int) -> list[str]:
    """The reply cut into n pieces of about 4 characters (one per token)."""
    return [text[i * 4 : (i + 1) * 4] for i in range(n)] if n else []


class LatencyHandler(BaseHTTPRequestHandler):
    """OpenAI-style `/models` and `/chat/completions` (whole or streamed) for the LatencyServer in `latency`."""

    protocol_version = "HTTP/1.1"
    latency: LatencyServer  # set by _make_handler

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
            pass

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/").endswith("/models"):
            model = {"id": "latency", "object": "model", "owned_by": self.latency.owned_by}
            self._json(200, {"object": "list", "data": [model]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        t0 = time.perf_counter()
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            messages = body["messages"]
        except (ValueError, KeyError, TypeError) as e:
            self._json(400, {"error": {"message": f"bad request: {e}"}})
            return
        role = role_of(messages)
        prompt = last_user(messages)
        try:
            text = self.latency.script(role, prompt, body)
        except Exception as e:  # noqa: BLE001 - a failing script is a 500 (or the exception's `status`)
            self._json(int(getattr(e, "status", 500)), {"error": {"message": str(e)}})
            return
        n = count_tokens(text)
        prompt_tokens = sum(count_tokens(str(m.get("content") or "")) for m in messages)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": n, "total_tokens": prompt_tokens + n}
        stream = bool(body.get("stream"))
        self._begin(role, usage, stream, t0)
        try:
            total = self.latency.delay_for(role, prompt) if self.latency.delay_for else self.latency.seconds_for(n)
            (self._stream if stream else self._whole)(body, text, usage, total, t0)
        finally:
            with self.latency._lock:
                self.latency.in_flight -= 1

    def _begin(self, role: str, usage: dict[str, int], stream: bool, t0: float) -> None:
        """Record the request and count it in flight."""
        server = self.latency
        with server._lock:
            server.requests.append(
                {
                    "role": role,
                    "prompt_tokens": usage["prompt_tokens"],
                    "completion_tokens": usage["completion_tokens"],
                    "stream": stream,
                    "t": t0,
                }
            )
            server.in_flight += 1
            server.peak_in_flight = max(server.peak_in_flight, server.in_flight)

    def _whole(self, body: dict[str, Any], text: str, usage: dict[str, int], total: float, t0: float) -> None:
        time.sleep(max(0.0, total - (time.perf_counter() - t0)))
        choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
        self._json(
            200,
            {
                "id": "chatcmpl-latency",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": str(body.get("model") or "latency"),
                "usage": usage,
                "choices": [choice],
            },
        )

    def _send(self, obj: Any) -> None:
        self.wfile.write(b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n")
        self.wfile.flush()

    def _stream(self, body: dict[str, Any], text: str, usage: dict[str, int], total: float, t0: float) -> None:
        n = usage["completion_tokens"]
        model = str(body.get("model") or "latency")
        created = int(time.time())
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            first = total - self.latency.per_token_s * n if not self.latency.delay_for else 0.0
            time.sleep(max(0.0, first - (time.perf_counter() - t0)))
            self._send(_chunk(model, created, {"role": "assistant", "content": ""}, None))
            step = (total - first) / n if n else 0.0
            for i, piece in enumerate(_pieces(text, n), 1):
                time.sleep(max(0.0, first + step * i - (time.perf_counter() - t0)))
                self._send(_chunk(model, created, {"content": piece}, None))
            self._send(_chunk(model, created, {}, "stop"))
            if (body.get("stream_options") or {}).get("include_usage"):
                last = {"id": "chatcmpl-latency", "object": "chat.completion.chunk", "created": created}
                self._send({**last, "model": model, "choices": [], "usage": usage})
            self._send(b"[DONE]")
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading
            pass


def _make_handler(server: LatencyServer) -> type[BaseHTTPRequestHandler]:
    return type("H", (LatencyHandler,), {"latency": server})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8337)
    ap.add_argument("--base-ms", type=float, default=20.0, help="milliseconds before the first token")
    ap.add_argument("--per-token-ms", type=float, default=10.0, help="milliseconds per completion token")
    args = ap.parse_args()
    server = LatencyServer(
        base_s=args.base_ms / 1000, per_token_s=args.per_token_ms / 1000, host=args.host, port=args.port
    )
    print(f"latency server on {server.url} ({args.base_ms:g} ms + {args.per_token_ms:g} ms per token); Ctrl-C stops")
    server.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
