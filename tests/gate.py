"""A gate that holds whoever calls `hold()` until the test calls `release()` (or for `seconds`): the barrier
the tests use instead of sleeps, saying whether a holder came (`entered`) and left (`left`)."""

from __future__ import annotations

import threading


class Gate:
    def __init__(self, seconds: float = 30.0) -> None:
        self.seconds = seconds  # the longest hold: a test that forgets to release still ends
        self.entered, self.released, self.left = threading.Event(), threading.Event(), threading.Event()

    def hold(self) -> None:
        self.entered.set()
        self.released.wait(self.seconds)
        self.left.set()

    def release(self) -> None:
        self.released.set()
