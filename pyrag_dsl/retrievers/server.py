"""A retrieval server speaking the Search-R1 `/retrieve` JSON protocol (FastAPI + uvicorn)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
import orjson
from fastapi.responses import JSONResponse, Response

from ..config.limits import MAX_TOPK
from .base import RetrievalError, Retriever


@dataclass(frozen=True)
class ServerLimits:
    max_queries: int = 512
    max_query_chars: int = 4_096
    max_topk: int = MAX_TOPK  # the bound every layer shares (pyrag_dsl.config.limits)
    default_topk: int = 5
    max_body_bytes: int = 4_000_000


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


async def read_body(request: Request, limits: ServerLimits) -> bytes:
    """The body, read in chunks and refused (413) as soon as it passes the cap, or at once when
    Content-Length announces more: a huge body is never read whole."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest("bad Content-Length header")
        if int(declared) > limits.max_body_bytes:
            raise BadRequest(f"request body over {limits.max_body_bytes} bytes", 413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise BadRequest(f"request body over {limits.max_body_bytes} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_request(body: bytes, limits: ServerLimits) -> tuple[list[str], int, bool]:
    if len(body) > limits.max_body_bytes:
        raise BadRequest(f"request body over {limits.max_body_bytes} bytes", 413)
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadRequest(f"malformed JSON: {e}") from None
    except RecursionError:
        raise BadRequest("malformed JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = set(data) - {"queries", "topk", "return_scores"}
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}", 422)
    queries = data.get("queries")
    if queries is None:
        raise BadRequest("missing 'queries' (a list of strings)", 422)
    if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
        raise BadRequest("'queries' must be a list of strings", 422)
    if not queries:
        raise BadRequest("'queries' is empty", 422)
    if len(queries) > limits.max_queries:
        raise BadRequest(f"too many queries: {len(queries)} > {limits.max_queries}", 422)
    for i, q in enumerate(queries):
        if not q.strip():
            raise BadRequest(f"query {i} is empty", 422)
        if len(q) > limits.max_query_chars:
            raise BadRequest(f"query {i} is over {limits.max_query_chars} characters", 422)
        try:
            q.encode("utf-8")
        except UnicodeEncodeError as e:  # a lone surrogate escape such as "\ud800"
            raise BadRequest(f"query {i} is not valid Unicode (lone surrogate at character {e.start})", 422) from None
    topk = data.get("topk", limits.default_topk)
    if topk is None:
        topk = limits.default_topk
    if isinstance(topk, bool) or not isinstance(topk, int) or not 1 <= topk <= limits.max_topk:
        raise BadRequest(f"'topk' must be an integer from 1 to {limits.max_topk}", 422)
    return_scores = data.get("return_scores", False)
    if not isinstance(return_scores, bool):
        raise BadRequest("'return_scores' must be true or false", 422)
    return queries, topk, return_scores


def create_app(retriever: Retriever, limits: ServerLimits | None = None, *, name: str = "index") -> FastAPI:
    """The app. Searches run on one worker thread (backends such as the JVM prefer that); the event loop
    stays free, so slow searches never block other requests' I/O."""
    limits = limits or ServerLimits()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retriever")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        pool.shutdown(wait=False)

    app = FastAPI(title="pyrag-dsl retriever", version="1", lifespan=lifespan)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:  # JSON, never plain text
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)
    stats = {"requests": 0, "queries": 0}
    lock = threading.Lock()

    @app.get("/health")
    async def health() -> dict[str, Any]:
        size = len(retriever) if hasattr(retriever, "__len__") else None  # type: ignore[arg-type]
        return {"status": "ok", "index": name, "documents": size, **stats}

    @app.post("/retrieve")
    async def retrieve(request: Request) -> JSONResponse:
        try:
            queries, topk, return_scores = parse_request(await read_body(request, limits), limits)
        except BadRequest as e:
            return JSONResponse({"error": str(e)}, status_code=e.status)
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(pool, retriever.search, queries, topk)
        except RetrievalError as e:
            return JSONResponse({"error": f"retrieval failed: {e.cause}"}, status_code=503)
        with lock:
            stats["requests"] += 1
            stats["queries"] += len(queries)
        out = []
        for hits in results:
            row = []
            for d in hits:
                document = {"id": d.id, "contents": f'"{d.title}"\n{d.text}' if d.title else d.text}
                row.append({"document": document, "score": d.score} if return_scores else document)
            out.append(row)
        return Response(orjson.dumps({"result": out}), media_type="application/json")

    return app


class BackgroundServer:
    """Run an app with uvicorn on a loopback port in a background thread (port 0: a free one)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                     lifespan="on"))
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._server.run, name="retriever-server", daemon=True)
        self.host = host
        self.port = port

    def start(self, timeout: float = 30.0) -> "BackgroundServer":
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"retrieval server did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
