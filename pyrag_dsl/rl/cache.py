"""A bounded, thread-safe, process-level cache of tool calls shared by the rollouts of a reward worker.

The rollouts of one prompt (GRPO's n samples) mostly make the same retrieve/answer calls; they run
concurrently in verl's reward threads. `SharedCache.get_or_compute` computes a key once: callers that
ask for a key already being computed wait for that result (single flight). Failures are not cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any, Callable, Hashable, TypeVar, cast

T = TypeVar("T")


class SharedCache:
    """LRU of at most `max_entries` results; `hits` / `misses` count lookups."""

    def __init__(self, max_entries: int = 20_000) -> None:
        if max_entries < 1:
            raise ValueError(f"cache size must be positive, got {max_entries}")
        self.max_entries = max_entries
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._inflight: dict[Hashable, Future[Any]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def get_or_compute(self, key: Hashable, compute: Callable[[], T], wait_s: float | None = None) -> T:
        """The cached value of `key`, or `compute()` (once, however many threads ask at the same time).
        A waiter gives up after `wait_s` seconds with TimeoutError (the engine's own limits are shorter).
        A key names one call, so every value cached or computed under it has the type `compute` returns."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return cast(T, self._data[key])
            flight = self._inflight.get(key)
            owner = flight is None
            if flight is None:
                flight = self._inflight[key] = Future()
                self.misses += 1
            else:
                self.hits += 1
        if not owner:
            return cast(T, flight.result(timeout=wait_s))
        try:
            value = compute()
        except BaseException as e:
            with self._lock:
                self._inflight.pop(key, None)
            flight.set_exception(e)
            raise
        with self._lock:
            self._inflight.pop(key, None)
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
        flight.set_result(value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0
