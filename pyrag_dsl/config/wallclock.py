"""A whole HTTP response bounded by its timeout on the wall clock.

httpx's timeouts bound each wait for data: a server that sends a byte a second never times out, however
long the reply takes. `wall_clock_hooks()` gives event hooks for an httpx client (or the httpx2 client the
openai package uses) that end a response once its read timeout has passed since the request was sent
(its headers written: time spent waiting for a pooled connection does not count),
checked as each piece of the body arrives (a response ends at most one read wait after its time). Hooks,
not a transport: the client keeps its own transport, connection limits and proxy settings.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Iterator

_STREAM_CLASSES: dict[str, type] = {}


def _module_of(obj: Any) -> Any:
    """The httpx-like package an object comes from (httpx, or the httpx2 fork)."""
    return sys.modules[type(obj).__module__.split(".")[0]]


def _bounded_stream_class(module: Any) -> type:
    cls = _STREAM_CLASSES.get(module.__name__)
    if cls is None:
        # the base is the SyncByteStream of httpx or of its httpx2 fork, whichever made the response
        class BoundedStream(module.SyncByteStream):  # type: ignore[misc]
            def __init__(self, inner: Any, request: Any, deadline: float, limit: float) -> None:
                self._inner, self._request, self._deadline, self._limit = inner, request, deadline, limit

            def __iter__(self) -> Iterator[bytes]:
                for chunk in self._inner:
                    if time.monotonic() > self._deadline:
                        raise module.ReadTimeout(f"no complete response in {self._limit:g} s", request=self._request)
                    yield chunk

            def close(self) -> None:
                self._inner.close()

        cls = _STREAM_CLASSES[module.__name__] = BoundedStream
    return cls


def _on_request(request: Any) -> None:
    """Start the request's clock when its headers are sent (httpcore's `trace` extension), not now: a request
    waiting for a pooled connection (the HTTP retriever has one) is not yet the server's time."""
    earlier = request.extensions.get("trace")

    def trace(name: str, info: dict[str, Any]) -> None:
        if name.endswith("send_request_headers.started"):
            request.pyrag_sent_at = time.monotonic()
        if earlier is not None:
            earlier(name, info)

    request.extensions["trace"] = trace


def _on_response(response: Any) -> None:
    request = response.request
    limit = (request.extensions.get("timeout") or {}).get("read")
    sent = getattr(request, "pyrag_sent_at", None)
    if limit is None or sent is None:
        return
    module = _module_of(response)
    if time.monotonic() - sent > limit:
        raise module.ReadTimeout(f"no complete response in {limit:g} s", request=request)
    response.stream = _bounded_stream_class(module)(response.stream, request, sent + limit, limit)


def wall_clock_hooks() -> dict[str, list[Callable[[Any], None]]]:
    """`event_hooks=` for a sync httpx(2) client: each response gets at most its read timeout in all."""
    return {"request": [_on_request], "response": [_on_response]}
