"""Trace recording: each statement execution fills a StepLog; logs are committed in statement order.

Committing numbers the events, charges each one against the trace budget by (an upper bound of)
its serialised UTF-8 size, and hands it to the event sink. Both schedulers commit the same logs in
the same order, so a run's trace is the same whichever scheduler ran it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..grammar.errors import DslError
from .trace import ErrorEvent, TraceEvent, build_event

EventSink = Callable[[TraceEvent], None]

# Bytes of an event's JSON besides its inputs, output and source text (field names, numbers, kind).
EVENT_OVERHEAD = 320


@dataclass
class StepLog:
    """What one statement execution produced: its events (class, fields, charged size), value and error.
    Events are built when committed, with their step number, from fields the walker made (trusted)."""

    index: int
    events: list[tuple[type[TraceEvent], dict[str, Any], int]] = field(default_factory=list)
    error: DslError | None = None
    ok: bool = False
    value: Any = None

    def add(self, cls: type[TraceEvent], fields: dict[str, Any], size: int) -> None:
        self.events.append((cls, fields, size))


class Recorder:
    """The committed trace of a run, its byte budget and its first error."""

    def __init__(self, max_bytes: int, on_event: EventSink | None) -> None:
        self.max_bytes = max_bytes
        self.on_event = on_event
        self.events: list[TraceEvent] = []
        self.bytes = 0
        self.error: DslError | None = None
        self.lock = threading.RLock()

    def commit(self, log: StepLog, over_budget: Callable[[], DslError]) -> bool:
        """Append a statement's events; False when the run must stop (its error, or the budget spent)."""
        with self.lock:
            if self.error is not None:
                return False
            for cls, fields, size in log.events:
                self.bytes += size
                if self.bytes > self.max_bytes:
                    self.fail(over_budget(), log.index)
                    return False
                self._append(build_event(cls, {**fields, "step": len(self.events) + 1}))
            if log.error is not None:
                self.fail(log.error, log.index)
                return False
            return True

    def fail(self, err: DslError, statement: int | None) -> None:
        """Record the run's error (the first one wins) as an error event."""
        with self.lock:
            if self.error is not None:
                return
            self.error = err
            now = time.time()
            self._append(ErrorEvent(step=len(self.events) + 1, start=now, end=now, statement=statement,
                                    error=err.to_dict()))

    def _append(self, event: TraceEvent) -> None:
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

