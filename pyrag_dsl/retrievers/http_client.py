"""Client for any server speaking the Search-R1 `/retrieve` protocol (ours or Search-R1's own)."""

from __future__ import annotations

from typing import Any, Sequence

import httpx
import orjson

from ..config import defaults as D
from ..config.deadline import DeadlineExceeded
from ..config.retry import EndpointUnavailable, RetriesExhausted, RetryPolicy, TransientError, breaker_for
from ..config.wallclock import wall_clock_hooks
from ..documents import Doc, split_contents
from .base import RetrievalError

CHECK_TIMEOUT_S = 10.0


class HttpRetriever:
    """One pooled connection; many queries go out in one request (split into chunks of `max_batch` queries and at most
    `max_documents` documents, queries x topk: the default is serve-retriever's default cap per response).
    Connection errors, timeouts and 5xx are retried by the shared policy (pyrag_dsl.config.retry): backoff,
    the question's deadline, and failing fast once the server has failed several times in a row."""

    def __init__(
        self,
        url: str = "http://127.0.0.1:8008",
        *,
        timeout: float = D.RETRIEVER_TIMEOUT_S,
        retries: int = D.RETRIEVER_RETRIES,
        backoff: float = D.RETRIEVER_BACKOFF_S,
        max_batch: int = 256,
        max_documents: int = 20_000,
    ) -> None:
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/retrieve") else base + "/retrieve"
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.retry = RetryPolicy(retries, backoff)
        self.breaker = breaker_for(self.endpoint)  # shared by every client of this server
        self.max_batch = max_batch
        self.max_documents = max_documents
        # each request bounded on the wall clock (httpx alone bounds each wait: a slow drip never times out)
        self._client = httpx.Client(
            timeout=timeout,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            event_hooks=wall_clock_hooks(),
        )
        self.requests = 0  # HTTP requests sent, retries included

    def close(self) -> None:
        self._client.close()

    def check(self) -> None:
        """Fail fast with a RetrievalError when the server cannot be reached or does not answer in time.
        Asks GET /health (ours); any HTTP answer below 500 means a live server (Search-R1's has no /health)."""
        health = self.endpoint[: -len("/retrieve")] + "/health"
        timeout = min(max(self.timeout, 2.0), CHECK_TIMEOUT_S)  # a live server answers at once
        try:
            response = self._client.get(health, timeout=timeout)
        except httpx.TimeoutException:
            raise RetrievalError(self.endpoint, f"not answering (no reply in {timeout:g} s)") from None
        except httpx.TransportError as e:
            raise RetrievalError(self.endpoint, f"cannot connect ({type(e).__name__}: {e})") from None
        if response.status_code >= 500:
            raise RetrievalError(self.endpoint, f"server error {response.status_code}: {response.text[:200]}")

    def __enter__(self) -> "HttpRetriever":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def search(self, queries: Sequence[str], topk: int) -> list[list[Doc]]:
        out: list[list[Doc]] = []
        queries = list(queries)
        batch = max(1, min(self.max_batch, self.max_documents // max(topk, 1)))
        for i in range(0, len(queries), batch):
            out.extend(self._post(queries[i : i + batch], topk))
        return out

    def _post(self, queries: list[str], topk: int) -> list[list[Doc]]:
        payload = {"queries": queries, "topk": topk, "return_scores": True}

        def send(timeout: float) -> list[list[Doc]]:
            self.requests += 1
            try:
                response = self._client.post(self.endpoint, json=payload, timeout=timeout)
            except httpx.TimeoutException as e:
                raise TransientError(f"timed out after {timeout:g} s ({type(e).__name__})") from None
            except httpx.TransportError as e:
                raise TransientError(f"cannot connect ({type(e).__name__}: {e})") from None
            if response.status_code >= 500:
                raise TransientError(f"server error {response.status_code}: {response.text[:200]}")
            if response.status_code >= 400:
                raise RetrievalError(self.endpoint, f"request refused ({response.status_code}): {response.text[:300]}")
            return _parse_response(self.endpoint, response, len(queries))

        try:
            return self.retry.call(send, timeout_s=self.timeout, breaker=self.breaker)
        except (RetriesExhausted, EndpointUnavailable, DeadlineExceeded) as e:
            raise RetrievalError(self.endpoint, str(e)) from None


def _parse_response(url: str, response: httpx.Response, n_queries: int) -> list[list[Doc]]:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise RetrievalError(url, f"answer is not JSON: {response.text[:120]!r}") from None
    result = body.get("result") if isinstance(body, dict) else None
    if not isinstance(result, list) or len(result) != n_queries:
        raise RetrievalError(url, f"answer has no 'result' list with {n_queries} entries")
    parsed: list[list[Doc]] = []
    for hits in result:
        if not isinstance(hits, list):
            raise RetrievalError(url, "a 'result' entry is not a list of hits")
        docs = []
        for hit in hits:
            doc = _parse_hit(hit)
            if doc is None:
                raise RetrievalError(url, f"malformed hit: {str(hit)[:120]}")
            docs.append(doc)
        parsed.append(docs)
    return parsed


def _parse_hit(hit: Any) -> Doc | None:
    if not isinstance(hit, dict):
        return None
    score = hit.get("score")
    document = hit.get("document", hit)  # {document, score} or, with return_scores false, the bare document
    if not isinstance(document, dict) or "id" not in document:
        return None
    if isinstance(document.get("contents"), str):
        title, text = split_contents(document["contents"])
    elif isinstance(document.get("text"), str):
        title, text = str(document.get("title", "")), document["text"]
    else:
        return None
    if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
        return None
    return Doc(id=str(document["id"]), title=title, text=text, score=None if score is None else float(score))
