"""One retry policy for every client (the LLM client and the HTTP retriever): exponential backoff, each
attempt bounded by the question's deadline, and a circuit breaker per endpoint, so that a server that keeps
failing fails the rest of a batch at once instead of costing every question its full timeouts. The breaker
opens only on failures of more than one call: one call's own retries (a request the server refuses, say for
one question) never cut that call short nor fail the calls after it."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional, TypedDict, TypeVar

from . import defaults as D
from .deadline import DeadlineExceeded, current

T = TypeVar("T")


class TransientError(Exception):
    """A failure worth another attempt: no connection, a timeout, a 5xx, a garbled answer."""


class RetriesExhausted(Exception):
    """Every attempt failed; `last` is the last TransientError."""

    def __init__(self, last: TransientError, attempts: int) -> None:
        super().__init__(f"{last} (after {attempts} attempt{'s' if attempts != 1 else ''})")
        self.last = last
        self.attempts = attempts


class EndpointUnavailable(Exception):
    """The endpoint's breaker is open: it failed `failures` times in a row, so calls fail at once."""

    def __init__(self, endpoint: str, failures: int, retry_in_s: float) -> None:
        super().__init__(f"failed {failures} times in a row; failing fast for the next {retry_in_s:.0f} s")
        self.endpoint = endpoint
        self.failures = failures
        self.retry_in_s = retry_in_s


class CircuitBreaker:
    """Counts consecutive failures of one endpoint. At `failures`, when they come from at least two calls, it
    opens: calls raise EndpointUnavailable at once for `cooldown_s`; then one call may try (others still fail
    fast); a success closes it."""

    def __init__(
        self,
        endpoint: str,
        failures: int = D.BREAKER_FAILURES,
        cooldown_s: float = D.BREAKER_COOLDOWN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.failures = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._consecutive = 0
        self._calls: set[object] = set()  # the calls whose failures make up the streak
        self._open = False
        self._opened_at = 0.0
        self._probing = False

    @property
    def is_open(self) -> bool:
        return self._open

    def before_call(self) -> None:
        with self._lock:
            if not self._open:
                return
            wait = self._opened_at + self.cooldown_s - self._clock()
            if wait > 0 or self._probing:
                raise EndpointUnavailable(self.endpoint, self._consecutive, max(wait, 0.0))
            self._probing = True  # half-open: this call tries the endpoint again

    def retry_in(self) -> float:
        """Seconds until a call may try the endpoint again (0 when it may now)."""
        with self._lock:
            if not self._open:
                return 0.0
            return max(0.0, self._opened_at + self.cooldown_s - self._clock())

    def record_success(self) -> None:
        with self._lock:
            self._consecutive = 0
            self._calls.clear()
            self._open = False
            self._probing = False

    def release(self) -> None:
        """The call ended without telling whether the endpoint works: let another call try."""
        with self._lock:
            self._probing = False

    def record_failure(self, call: object = None) -> None:
        """One failed request; `call` names the call it belongs to (its retries share it; None: a call of its own)."""
        with self._lock:
            self._consecutive += 1
            self._calls.add(call if call is not None else object())
            self._probing = False
            if self._open or (self._consecutive >= self.failures and len(self._calls) >= 2):
                self._open = True
                self._opened_at = self._clock()


_BREAKERS: dict[str, CircuitBreaker] = {}


class _BreakerDefaults(TypedDict):
    failures: int
    cooldown_s: float


_DEFAULTS: _BreakerDefaults = {"failures": D.BREAKER_FAILURES, "cooldown_s": D.BREAKER_COOLDOWN_S}
_REGISTRY_LOCK = threading.Lock()


def configure_breakers(failures: int, cooldown_s: float) -> None:
    """Set the thresholds of every endpoint's breaker in this process (from the [breaker] settings)."""
    with _REGISTRY_LOCK:
        _DEFAULTS["failures"], _DEFAULTS["cooldown_s"] = failures, cooldown_s
        for breaker in _BREAKERS.values():
            breaker.failures, breaker.cooldown_s = failures, cooldown_s


def breaker_for(endpoint: str) -> CircuitBreaker:
    """The process-wide breaker of an endpoint (its URL), shared by every client that calls it."""
    with _REGISTRY_LOCK:
        breaker = _BREAKERS.get(endpoint)
        if breaker is None:
            breaker = _BREAKERS[endpoint] = CircuitBreaker(endpoint, **_DEFAULTS)
        return breaker


def wait_for_open_breakers(stop: Optional[threading.Event] = None) -> float:
    """Sleep until no endpoint's breaker is in its cooldown (or `stop` is set); returns the seconds waited.
    For work that should not start while a server is known to be failing (eval: a question started then
    would fail at once and be recorded as an error)."""
    waited = 0.0
    while True:
        with _REGISTRY_LOCK:
            pause = max((b.retry_in() for b in _BREAKERS.values()), default=0.0)
        if pause <= 0 or (stop is not None and stop.is_set()):
            return waited
        if stop is not None:
            stop.wait(pause)
        else:
            time.sleep(pause)
        waited += pause


_CALL_IDS = itertools.count(1)


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 2  # attempts after the first
    backoff_s: float = 1.0  # before retry n: backoff_s * 2**(n-1), at most max_backoff_s
    max_backoff_s: float = 30.0

    def delay(self, retry: int) -> float:
        return min(self.max_backoff_s, self.backoff_s * 2.0 ** (retry - 1))

    def call(
        self,
        send: Callable[[float], T],
        *,
        timeout_s: float,
        breaker: Optional[CircuitBreaker] = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """`send(timeout)` until it returns. A TransientError is retried (and counted by the breaker); any other
        exception propagates at once (the endpoint answered, so the breaker counts a success). Raises
        RetriesExhausted, EndpointUnavailable, or DeadlineExceeded when the question's deadline passes."""
        last: Optional[TransientError] = None
        call = next(_CALL_IDS)  # this call's retries count as one caller for the breaker
        for attempt in range(self.retries + 1):
            deadline = current()
            if attempt:
                pause = self.delay(attempt)
                if deadline is not None and deadline.remaining() <= pause:
                    raise DeadlineExceeded(deadline.seconds)
                sleep(pause)
            timeout = timeout_s if deadline is None else deadline.bound(timeout_s)
            if breaker is not None:
                try:
                    breaker.before_call()
                except EndpointUnavailable as e:
                    if last is not None:  # say why it failed, too
                        e.args = (f"{e.args[0]}; last: {last}",)
                    raise
            try:
                result = send(timeout)
            except TransientError as e:
                last = e
                if timeout < timeout_s and deadline is not None and deadline.remaining() <= 0:
                    if breaker is not None:  # cut short by the deadline: not the endpoint's fault
                        breaker.release()
                    raise DeadlineExceeded(deadline.seconds) from None
                if breaker is not None:
                    breaker.record_failure(call)
                continue
            except BaseException as e:
                if breaker is not None:  # the endpoint answered (4xx, bad JSON...) or we were interrupted
                    breaker.record_success() if isinstance(e, Exception) else breaker.release()
                raise
            if breaker is not None:
                breaker.record_success()
            return result
        assert last is not None
        raise RetriesExhausted(last, self.retries + 1)


__all__ = [
    "CircuitBreaker",
    "EndpointUnavailable",
    "RetriesExhausted",
    "RetryPolicy",
    "TransientError",
    "breaker_for",
    "configure_breakers",
    "wait_for_open_breakers",
]
