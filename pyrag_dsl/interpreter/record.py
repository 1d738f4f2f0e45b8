"""Trace recording: each statement execution fills a StepLog; logs are committed in statement order.

Committing numbers the events, charges each one against the trace budget by (an upper bound of)
its serialised UTF-8 size, and hands it to the event sink. Both schedulers commit the same logs in
the same order, so a run's trace is the same whichever scheduler ran it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..grammar.errors import DslError
from .trace import ErrorEvent, TraceEvent, construct_event

EventSink = Callable[[TraceEvent], None]

# Bytes of an event's JSON besides its inputs, output and source text (field names, numbers, kind).
EVENT_OVERHEAD = 320


class StepLog:
    """What one statement execution produced: its events, value and error. Events are built when
    committed, with their step number, from fields the walker made (trusted). Each event is kept as
    (class, all its field values but `step`, the names of the fields given explicitly with `step`, charged
    size)."""

    __slots__ = ("index", "events", "error", "ok", "value")

    def __init__(self, index: int) -> None:
        self.index = index
        self.events: list[tuple[type[TraceEvent], dict[str, Any], frozenset[str], int]] = []
        self.error: DslError | None = None
        self.ok = False
        self.value: Any = None


class Recorder:
    """The committed trace of a run, its byte budget and its first error."""

    def __init__(self, max_bytes: int, on_event: EventSink | None) -> None:
        self.max_bytes = max_bytes
        self.on_event = on_event
        self.events: list[TraceEvent] = []
        self.bytes = 0
        self.error: DslError | None = None
        self.lock = threading.RLock()

    def commit(self, log: StepLog, over_budget: Callable[[int], DslError]) -> bool:
        """Append a statement's events; False when the run must stop (its error, or the budget spent:
        `over_budget(statement index)` makes that error)."""
        with self.lock:
            if self.error is not None:
                return False
            events = self.events
            for cls, values, fields_set, size in log.events:
                self.bytes += size
                if self.bytes > self.max_bytes:
                    self.fail(over_budget(log.index), log.index)
                    return False
                values["step"] = len(events) + 1
                event = construct_event(cls, values, fields_set)
                events.append(event)  # as _append does
                if self.on_event is not None:
                    self.on_event(event)
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
            self._append(
                ErrorEvent(step=len(self.events) + 1, start=now, end=now, statement=statement, error=err.to_dict())
            )

    def _append(self, event: TraceEvent) -> None:
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)
