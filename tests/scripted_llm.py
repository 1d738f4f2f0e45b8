"""A scripted OpenAI-compatible chat server on loopback, for deterministic pipeline tests and benchmarks.

`ScriptedLLM(handler)`: handler(role, prompt, request_json) -> reply text (or raises to send a 500). Roles
are recognised from our prompt files: decompose, plan, repair, answer_docs, answer_synth.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from pyrag_dsl.retrievers.server import BackgroundServer

MARKERS = [
    ("repair", "is not valid. Fix every error"),
    ("plan", "Sub-questions:"),
    ("decompose", "You split a multi-hop question"),
    ("answer_docs", "Answer the question using the documents"),
    ("answer_synth", "Answer the question from the facts given in it"),
]


def role_of(messages: list[dict]) -> str:
    text = "\n".join(m.get("content") or "" for m in messages)
    for role, marker in MARKERS:
        if marker in text:
            return role
    return "unknown"


def last_user(messages: list[dict]) -> str:
    return [m for m in messages if m.get("role") == "user"][-1]["content"]


def question_in(prompt: str) -> str:
    m = re.findall(r"Question: (.*)", prompt)
    return m[-1].strip() if m else ""


def doc_titles(prompt: str) -> list[str]:
    return re.findall(r"Document \d+ \(Title: (.*?)\):", prompt)


class ScriptedLLM:
    def __init__(
        self,
        handler: Callable[[str, str, dict], str],
        owned_by: str = "scripted",
        delay: float = 0.0,
        line_delay: float = 0.0,
        hold: threading.Event | None = None,
    ):
        """`delay`: seconds before each reply; `line_delay`: seconds before each line of a streamed reply;
        `hold`: each reply waits until this event is set (by the test; at most a minute)."""
        self.handler = handler
        self.hold = hold
        self.answered = 0  # replies sent (or begun, when streamed)
        self.requests: list[dict[str, Any]] = []
        self.delay = delay
        self.line_delay = line_delay
        self.streamed_at: dict[int, list[float]] = {}  # request number -> monotonic time of each line sent
        app = FastAPI()

        @app.get("/v1/models")
        async def models():
            return {"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": owned_by}]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            body = await request.json()
            role = role_of(body["messages"])
            self.requests.append({"role": role, **body})
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.hold is not None:
                await asyncio.to_thread(self.hold.wait, 60)
            self.answered += 1
            try:
                text = self.handler(role, last_user(body["messages"]), body)
            except Exception as e:  # noqa: BLE001
                return JSONResponse({"error": {"message": str(e)}}, status_code=500)
            if body.get("stream"):
                return StreamingResponse(self._sse(text, len(self.requests) - 1), media_type="text/event-stream")
            return {
                "id": "x",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": "scripted",
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }

        self.server = BackgroundServer(app)

    async def _sse(self, text: str, number: int):
        import json

        times = self.streamed_at.setdefault(number, [])
        for line in text.splitlines(keepends=True):
            if self.line_delay:
                await asyncio.sleep(self.line_delay)
            times.append(time.monotonic())
            chunk = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": "scripted",
                "choices": [{"index": 0, "delta": {"content": line}, "finish_reason": None}],
            }
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    def __enter__(self) -> "ScriptedLLM":
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url + "/v1"

    def count(self, role: str) -> int:
        return sum(1 for r in self.requests if r["role"] == role)
