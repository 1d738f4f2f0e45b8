"""A retrieval server speaking the Search-R1 `/retrieve` JSON protocol (FastAPI + uvicorn).

Hostile clients are bounded: each response holds at most `max_documents` documents (queries x topk), searches run
on one worker thread with at most `max_pending_searches` waiting, uvicorn answers 503 past `max_connections`, and a
connection that does not send a whole request (or read its response) within `request_timeout_s` is closed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Sized
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import h11
import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..config.defaults import TOPK
from ..config.limits import MAX_TOPK
from ..documents import Doc
from .base import RetrievalError, Retriever


@dataclass(frozen=True)
class ServerLimits:
    """What one client may ask of the server; each field is a flag of `pyrag-dsl serve-retriever`."""

    max_queries: int = 512
    max_query_chars: int = 4_096
    max_topk: int = MAX_TOPK  # the bound every layer shares (pyrag_dsl.config.limits)
    default_topk: int = TOPK
    max_body_bytes: int = 4_000_000
    max_documents: int = 20_000  # documents in one response: queries x topk (about 16 MB of JSON)
    max_pending_searches: int = 64  # requests running or waiting for the search thread; more get 503
    max_connections: int = 512  # uvicorn's limit_concurrency: requests past it get 503
    request_timeout_s: float = 30.0  # to send a whole request, and to read a response, per connection
    max_header_bytes: int = 16_384  # h11's bound on a request line and headers


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
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise BadRequest(f"request body over {limits.max_body_bytes} bytes", 413)
            chunks.append(chunk)
    except ClientDisconnect:  # closed by the client, or by the request timeout: nobody reads the answer
        raise BadRequest("the client disconnected before sending the whole body") from None
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
    if len(queries) * topk > limits.max_documents:
        raise BadRequest(
            f"too many documents: {len(queries)} queries x topk {topk} = {len(queries) * topk} > "
            f"max_documents {limits.max_documents} per response; send fewer queries per request",
            422,
        )
    return_scores = data.get("return_scores", False)
    if not isinstance(return_scores, bool):
        raise BadRequest("'return_scores' must be true or false", 422)
    return queries, topk, return_scores


def render(results: Sequence[Sequence[Doc]], return_scores: bool) -> bytes:
    """The response body, serialized one query at a time (no dict tree of the whole response is ever built)."""
    rows = []
    for hits in results:
        row = []
        for d in hits:
            document = {"id": d.id, "contents": f'"{d.title}"\n{d.text}' if d.title else d.text}
            row.append({"document": document, "score": d.score} if return_scores else document)
        rows.append(orjson.dumps(row))
    return b'{"result":[' + b",".join(rows) + b"]}"


def create_app(retriever: Retriever, limits: ServerLimits | None = None, *, name: str = "index") -> FastAPI:
    """The app. Searches and their serialization run on one worker thread (backends such as the JVM prefer that),
    at most `limits.max_pending_searches` queued; the event loop stays free for /health and other I/O."""
    limits = limits or ServerLimits()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retriever")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown(wait=False)

    app = FastAPI(title="pyrag-dsl retriever", version="1", lifespan=lifespan)
    app.state.limits = limits  # read by serve_config: one ServerLimits for the app and its connections

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:  # JSON, never plain text
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)

    load = _Load()
    _add_health(app, retriever, limits, load, name)
    _add_retrieve(app, retriever, limits, load, pool)
    return app


@dataclass
class _Load:
    """The app's counts for /health: requests and queries answered; searches running or queued (`pending`, read
    and written on the event loop thread only)."""

    requests: int = 0
    queries: int = 0
    pending: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, queries: int) -> None:
        with self.lock:
            self.requests += 1
            self.queries += queries


def _add_health(app: FastAPI, retriever: Retriever, limits: ServerLimits, load: _Load, name: str) -> None:
    """GET /health: the index, its size where the backend knows it, the counts and the limits."""

    @app.get("/health")
    async def health() -> dict[str, Any]:
        size = len(retriever) if isinstance(retriever, Sized) else None
        return {
            "status": "ok",
            "index": name,
            "documents": size,
            "requests": load.requests,
            "queries": load.queries,
            "pending_searches": load.pending,
            "limits": asdict(limits),
        }


def _add_retrieve(
    app: FastAPI, retriever: Retriever, limits: ServerLimits, load: _Load, pool: ThreadPoolExecutor
) -> None:
    """POST /retrieve: a checked request searched on the worker thread; 503 when too many are pending."""

    def search(queries: list[str], topk: int, return_scores: bool) -> bytes:
        return render(retriever.search(queries, topk), return_scores)

    @app.post("/retrieve")
    async def retrieve(request: Request) -> Response:
        try:
            queries, topk, return_scores = parse_request(await read_body(request, limits), limits)
        except BadRequest as e:
            return JSONResponse({"error": str(e)}, status_code=e.status)
        if load.pending >= limits.max_pending_searches:
            return JSONResponse(
                {
                    "error": f"busy: {load.pending} searches pending (max_pending_searches "
                    f"{limits.max_pending_searches}); retry later"
                },
                status_code=503,
                headers={"Retry-After": "1"},
            )
        load.pending += 1
        try:
            body = await asyncio.get_running_loop().run_in_executor(pool, search, queries, topk, return_scores)
        except RetrievalError as e:
            return JSONResponse({"error": f"retrieval failed: {e.cause}"}, status_code=503)
        finally:
            load.pending -= 1
        load.answered(len(queries))
        return Response(body, media_type="application/json")


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline per connection: from its opening and from the end of each response,
    the client has `request_timeout_s` to send a whole request (line, headers, body) and to read what it was sent.
    Past it the connection is closed (with a 408 when a request was begun and not answered), or aborted when the
    client has not read its response. A request being answered is never cut: the deadline waits for its response."""

    request_timeout_s: float = ServerLimits.request_timeout_s

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.request_timeout_s, self._on_deadline)

    def _on_deadline(self) -> None:
        self._deadline = None
        transport = self.transport
        if transport.get_write_buffer_size() > 0:  # a response left unread for a whole period
            transport.abort()
            return
        if transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.more_body and not cycle.response_complete:
            self._arm()  # a whole request is being answered: look again later
            return
        headers_begun = self.conn.their_state is h11.IDLE and bool(self.conn.trailing_data[0])
        body_begun = self.conn.their_state is h11.SEND_BODY and not cycle.response_started
        if headers_begun or body_begun:  # an unfinished request, not answered yet (an idle one is closed silently)
            transport.write(REQUEST_TIMEOUT_RESPONSE)
        transport.close()


_TIMEOUT_BODY = b'{"error": "request timeout: the whole request was not received in time"}'
REQUEST_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\nconnection: close\r\n\r\n" + _TIMEOUT_BODY
)


def serve_config(
    app: Any, limits: ServerLimits | None = None, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"
) -> uvicorn.Config:
    """The uvicorn.Config that enforces `limits` on connections (default: the app's own limits, else defaults):
    the h11 protocol with its header bound and the request timeout, and limit_concurrency."""
    limits = limits or getattr(getattr(app, "state", None), "limits", None) or ServerLimits()
    protocol = type("GuardedH11Protocol", (GuardedH11Protocol,), {"request_timeout_s": limits.request_timeout_s})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        http=protocol,
        limit_concurrency=limits.max_connections,
        h11_max_incomplete_event_size=limits.max_header_bytes,
    )


class BackgroundServer:
    """Run an app with uvicorn on a loopback port in a background thread (port 0: a free one), with the connection
    limits of `serve_config`."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, limits: ServerLimits | None = None) -> None:
        self._server = uvicorn.Server(serve_config(app, limits, host=host, port=port))
        # no signal handlers to keep off: uvicorn (>= 0.29) captures signals in the main thread only
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

    @property
    def connections(self) -> int:
        """Connections open now (uvicorn's own count, the one limit_concurrency reads)."""
        return len(self._server.server_state.connections)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
