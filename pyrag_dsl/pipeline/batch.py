"""Many questions at once without overloading a server.

* `EndpointLimits`: one semaphore per endpoint (an LLM base URL, a retriever URL or index), so at most
  N requests are in flight to each server whatever the number of questions in flight.
* `MeteredLLM` / `MeteredRetriever`: per-question views of a shared LLM client / retriever that take the
  endpoint's slot around every request and count calls, tokens (where the server reports usage) and
  retrievals for that question alone.
* `concurrent_map`: run `fn` over items with N in flight, calling `on_done(index, item, result, error)` as
  each finishes (in completion order); `ordered_map` returns the results in input order.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence, TypeVar

from ..documents import Doc

if TYPE_CHECKING:
    from ..agents.llm import LLMClient
    from ..retrievers.base import Retriever

T = TypeVar("T")
R = TypeVar("R")


def _retriever_slot(endpoint: str) -> str:
    return f"retriever:{endpoint}"


class EndpointLimits:
    """At most `per_endpoint` (or `overrides[endpoint]`) requests in flight to each endpoint; None: no cap."""

    def __init__(self, per_endpoint: int | None = None, overrides: dict[str, int] | None = None) -> None:
        if per_endpoint is not None and per_endpoint < 1:
            raise ValueError(f"per-endpoint cap must be >= 1, got {per_endpoint}")
        self.per_endpoint = per_endpoint
        self.overrides = dict(overrides or {})
        self._sems: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self.in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    def cap_retriever(self, endpoint: str, n: int) -> None:
        """At most `n` searches in flight to the retriever named `endpoint` (as MeteredRetriever names it)."""
        self.overrides[_retriever_slot(endpoint)] = n

    def _sem(self, endpoint: str) -> threading.BoundedSemaphore | None:
        cap = self.overrides.get(endpoint, self.per_endpoint)
        if cap is None:
            return None
        with self._lock:
            sem = self._sems.get(endpoint)
            if sem is None:
                sem = self._sems[endpoint] = threading.BoundedSemaphore(cap)
            return sem

    @contextmanager
    def slot(self, endpoint: str) -> Iterator[None]:
        sem = self._sem(endpoint)
        if sem is not None:
            sem.acquire()
        with self._lock:
            n = self.in_flight[endpoint] = self.in_flight.get(endpoint, 0) + 1
            self.peak[endpoint] = max(self.peak.get(endpoint, 0), n)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight[endpoint] -= 1
            if sem is not None:
                sem.release()


class MeteredLLM:
    """A per-question view of an `LLMClient`: the endpoint's slot around each request; counts and tokens."""

    def __init__(self, client: LLMClient, limits: EndpointLimits | None = None) -> None:
        self._client = client
        self._limits = limits or EndpointLimits()
        self._endpoint = f"llm:{client.config.base_url}"
        self._lock = threading.Lock()
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.usage_reported = False

    def __getattr__(self, name: str) -> Any:  # config, where, check, ...
        return getattr(self._client, name)

    def grammar_body(self, lark: str, gbnf: str) -> dict[str, Any]:
        return self._client.grammar_body(lark, gbnf)

    def server_kind(self) -> str:
        return self._client.server_kind()

    def _usage(self, usage: Any) -> None:
        with self._lock:
            self.usage_reported = True
            self.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
            self.completion_tokens += int(getattr(usage, "completion_tokens", 0) or 0)

    def chat(self, messages: list[dict[str, str]], **kw: Any) -> str:
        with self._lock:
            self.calls += 1
        with self._limits.slot(self._endpoint):
            return self._client.chat(messages, on_usage=self._usage, **kw)

    def close(self) -> None:  # the shared client is closed by its owner
        pass


def metered_llms(llm: LLMClient, plan_llm: LLMClient, limits: EndpointLimits) -> tuple[MeteredLLM, MeteredLLM]:
    """One question's views of the shared Answer and Plan clients (one view when they are one client)."""
    view = MeteredLLM(llm, limits)
    return view, view if plan_llm is llm else MeteredLLM(plan_llm, limits)


class MeteredRetriever:
    """A per-question view of a retriever: the endpoint's slot around each search; counts searches."""

    def __init__(self, retriever: Retriever, endpoint: str, limits: EndpointLimits | None = None) -> None:
        self._retriever = retriever
        self._limits = limits or EndpointLimits()
        self._endpoint = _retriever_slot(endpoint)
        self._lock = threading.Lock()
        self.requests = 0
        self.queries = 0

    def search(self, queries: Sequence[str], topk: int) -> list[list[Doc]]:
        with self._lock:
            self.requests += 1
            self.queries += len(queries)
        with self._limits.slot(self._endpoint):
            return self._retriever.search(queries, topk)

    def close(self) -> None:  # the shared retriever is closed by its owner
        pass


def concurrent_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    concurrency: int = 1,
    on_done: Callable[[int, T, R | None, BaseException | None], None] | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Run `fn(item)` with at most `concurrency` in flight; `on_done(i, item, result, error)` runs in the
    calling thread as each finishes. An exception from `fn` is passed to `on_done`, never raised; an
    exception from `on_done` (or Ctrl-C) stops submitting, cancels what has not started and is raised.
    Items are submitted lazily, in order; `stop.set()` ends the run after the items in flight."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    it = iter(enumerate(items))
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="batch")
    pending: dict[Future[R], tuple[int, T]] = {}
    clean = False
    try:
        while True:
            while len(pending) < concurrency and not (stop is not None and stop.is_set()):
                nxt = next(it, None)
                if nxt is None:
                    break
                pending[pool.submit(fn, nxt[1])] = nxt
            if not pending:
                break
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: pending[f][0]):
                i, item = pending.pop(fut)
                err = fut.exception()
                if on_done is not None:
                    on_done(i, item, None if err is not None else fut.result(), err)
        clean = True
    finally:
        # on an error or Ctrl-C: do not wait for questions in flight (their threads finish on their own)
        pool.shutdown(wait=clean, cancel_futures=True)


def ordered_map(fn: Callable[[T], R], items: Sequence[T], concurrency: int = 1) -> list[R]:
    """`[fn(x) for x in items]` with `concurrency` in flight; results in input order; the first error raises."""
    out: list[Any] = [None] * len(items)
    errors: list[tuple[int, BaseException]] = []

    def done(i: int, _item: T, result: R | None, err: BaseException | None) -> None:
        if err is not None:
            errors.append((i, err))
        out[i] = result

    concurrent_map(fn, items, concurrency, done)
    if errors:
        raise min(errors, key=lambda e: e[0])[1]
    return out


__all__ = ["EndpointLimits", "MeteredLLM", "MeteredRetriever", "concurrent_map", "ordered_map"]
