"""A per-question deadline: the pipeline activates one for a question, and every client call made for that
question (in any thread the tools run in) gets at most the time that is left."""

from __future__ import annotations

import contextlib
import contextvars
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional


class DeadlineExceeded(TimeoutError):
    """The question's deadline passed before (or while) a call could be made."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the question's deadline of {seconds:g} s passed")
        self.seconds = seconds


@dataclass(frozen=True)
class Deadline:
    seconds: float
    at: float  # time.monotonic() when it passes

    @classmethod
    def after(cls, seconds: Optional[float]) -> Optional["Deadline"]:
        return None if seconds is None else cls(seconds, time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def bound(self, timeout_s: float) -> float:
        """`timeout_s`, or the time left when that is less; DeadlineExceeded when none is left."""
        left = self.remaining()
        if left <= 0:
            raise DeadlineExceeded(self.seconds)
        return min(timeout_s, left)


_CURRENT: contextvars.ContextVar[Optional[Deadline]] = contextvars.ContextVar("pyrag_dsl_deadline", default=None)


def current() -> Optional[Deadline]:
    return _CURRENT.get()


@contextlib.contextmanager
def active(deadline: Optional[Deadline]) -> Iterator[Optional[Deadline]]:
    """Make `deadline` the current one in this thread (None: no deadline) for the block."""
    token = _CURRENT.set(deadline)
    try:
        yield deadline
    finally:
        _CURRENT.reset(token)


def bound_timeout(timeout_s: float) -> float:
    """A client's timeout for its next request under the current deadline (unchanged when there is none)."""
    deadline = _CURRENT.get()
    return timeout_s if deadline is None else deadline.bound(timeout_s)


class WithDeadline:
    """A tool callable that runs under `deadline` in whatever thread calls it (forwards `batch` too)."""

    def __init__(self, fn: Callable[..., Any], deadline: Optional[Deadline]) -> None:
        self.fn = fn
        self.deadline = deadline
        if callable(getattr(fn, "batch", None)):
            self.batch = self._batch

    def __call__(self, *args: Any, **kw: Any) -> Any:
        with active(self.deadline):
            return self.fn(*args, **kw)

    def _batch(self, calls: list[dict[str, Any]]) -> list[Any]:
        batch: Callable[[list[dict[str, Any]]], list[Any]] = getattr(self.fn, "batch")  # set only when fn has one
        with active(self.deadline):
            return batch(calls)


def carry(tools: dict[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """The tools, each running under the deadline current here (unchanged when there is none)."""
    deadline = _CURRENT.get()
    return dict(tools) if deadline is None else {name: WithDeadline(fn, deadline) for name, fn in tools.items()}


__all__ = ["Deadline", "DeadlineExceeded", "WithDeadline", "active", "bound_timeout", "carry", "current"]
