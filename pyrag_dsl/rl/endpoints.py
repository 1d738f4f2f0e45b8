"""The frozen agents and the retriever the rewards call, opened once per process and shared by threads,
with their results cached across rollouts (`SharedCache`).

The cache key is the endpoint plus the call's arguments (query, top-k; query and documents), so the n
rollouts of a prompt, and any other prompt making the same call, reuse one result: the frozen agents
decode greedily, so a call's result depends on its arguments only.

The tools make their requests under the rollout's deadline (`config.deadline`): once it has passed or been
cancelled, a call, or a retry of one, fails before anything is sent.
"""

from __future__ import annotations

import os
import threading
from functools import partial
from typing import Sequence

from ..agents.answer import AnswerAgent
from ..agents.llm import LLMClient, LLMConfig
from ..config.deadline import Deadline, active
from ..documents import Doc, Docs
from ..retrievers.http_client import HttpRetriever
from .cache import SharedCache
from .settings import RewardSettings

_LOCK = threading.Lock()
_CLIENTS: dict[tuple[int, str, str, float, int], LLMClient] = {}  # (pid, url, model, timeout, retries)
_CACHES: dict[tuple[int, int], SharedCache] = {}  # (pid, size)
_LOCAL = threading.local()
# HTTP timeouts run a little past the engine's tool_timeout_s, so the engine reports the typed
# LimitExceeded first and the abandoned request still ends soon after.
HTTP_GRACE_S = 1.0


def llm_client(url: str, model: str, settings: RewardSettings) -> LLMClient:
    """One client per endpoint and process (the openai client pools connections and is thread-safe)."""
    key = (os.getpid(), url, model, settings.tool_timeout_s, settings.llm_retries)
    with _LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            config = LLMConfig(
                model=model,
                base_url=url,
                timeout_s=settings.tool_timeout_s + HTTP_GRACE_S,
                retries=settings.llm_retries,
                backoff_s=0.5,
                temperature=0.0,
            )
            client = _CLIENTS[key] = LLMClient(config)
        return client


def shared_cache(settings: RewardSettings) -> SharedCache:
    """The process's tool-result cache (one per size, so a test can ask for a fresh small one)."""
    key = (os.getpid(), settings.cache_size)
    with _LOCK:
        cache = _CACHES.get(key)
        if cache is None:
            cache = _CACHES[key] = SharedCache(settings.cache_size)
        return cache


def _thread_retriever(url: str, settings: RewardSettings) -> HttpRetriever:
    """One HTTP retriever per thread and URL: HttpRetriever keeps a single connection."""
    pool: dict[tuple[str, float, int], HttpRetriever] | None = getattr(_LOCAL, "retrievers", None)
    if pool is None or _LOCAL.pid != os.getpid():
        pool = _LOCAL.retrievers = {}
        _LOCAL.pid = os.getpid()
    key = (url, settings.tool_timeout_s, settings.retriever_retries)
    if key not in pool:
        pool[key] = HttpRetriever(
            url, timeout=settings.tool_timeout_s + HTTP_GRACE_S, retries=settings.retriever_retries, backoff=0.25
        )
    return pool[key]


class CachedRetriever:
    """The Retriever protocol over the retrieval endpoint, one cached search per (query, top-k); requests under
    `deadline`."""

    def __init__(self, settings: RewardSettings, cache: SharedCache, deadline: Deadline | None = None) -> None:
        self.settings = settings
        self.url = settings.retriever_url
        self.cache = cache
        self.deadline = deadline

    def search(self, queries: Sequence[str], topk: int) -> list[list[Doc]]:
        out = []
        for q in queries:
            key = ("retrieve", self.url, q, int(topk))
            out.append(
                self.cache.get_or_compute(key, partial(self._search, q, topk), wait_s=self.settings.tool_timeout_s)
            )
        return out

    def _search(self, query: str, topk: int) -> list[Doc]:
        with active(self.deadline):
            return _thread_retriever(self.url, self.settings).search([query], topk)[0]

    def close(self) -> None:  # the per-thread connections live as long as the worker
        pass


class CachedAnswer:
    """The engine's `answer(query, docs)` tool: the frozen Answer agent (same prompts as inference), cached;
    requests under `deadline`."""

    def __init__(self, settings: RewardSettings, cache: SharedCache, deadline: Deadline | None = None) -> None:
        self.settings = settings
        self.cache = cache
        self.deadline = deadline
        self.agent = AnswerAgent(
            llm_client(settings.answer_url, settings.answer_model, settings), use_grammar=settings.use_grammar
        )

    def __call__(self, query: str, docs: Docs | None = None) -> str:
        key = ("answer", self.settings.answer_url, self.settings.answer_model, query, docs)
        return self.cache.get_or_compute(key, lambda: self._answer(query, docs), wait_s=self.settings.tool_timeout_s)

    def _answer(self, query: str, docs: Docs | None) -> str:
        with active(self.deadline):
            return self.agent(query, docs)
