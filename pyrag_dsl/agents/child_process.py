"""Child servers that die with their parent.

`popen_kwargs()` gives a child its own process group (a Ctrl-C or `kill -TERM -PGID` sent to the
parent's group is not delivered twice; the parent stops the child itself) and, on Linux, a parent-death
signal (prctl PR_SET_PDEATHSIG): when the parent dies, even by SIGKILL, the kernel kills the child
(SIGKILL: a server child has nothing to save, and a busy one must not linger). Elsewhere only the
process group is set. The signal follows the thread that started the child: start it from a thread
that lives as long as the process (the CLI uses the main thread).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any, Callable

PR_SET_PDEATHSIG = 1


def _die_with(parent_pid: int, sig: int) -> Callable[[], None]:
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None

    def preexec() -> None:  # runs in the child between fork and exec: no imports, no locks
        os.setpgid(0, 0)
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
            if os.getppid() != parent_pid:  # the parent died before prctl took effect
                os.kill(os.getpid(), sig)

    return preexec


def popen_kwargs(sig: int = signal.SIGKILL) -> dict[str, Any]:
    """Keyword arguments for subprocess.Popen: own process group, and death with this process."""
    if os.name != "posix":
        return {}
    return {"preexec_fn": _die_with(os.getpid(), sig)}


__all__ = ["popen_kwargs"]
