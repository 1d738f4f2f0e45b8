"""The CLI's exit codes and its usage error: the leaf every command module imports."""

from __future__ import annotations

from ..config.errors import UsageError

# 0 ok; 1 invalid program or some questions failed; 2 usage; 3 runtime failure (I/O, a server down);
# 130 / 143 stopped by SIGINT / SIGTERM; 141 standard output closed by its reader.
EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_RUNTIME, EXIT_PIPE = 0, 1, 2, 3, 141
EXIT_FAILED = 1  # run/exec/replay: a question failed, the program did not run, the replay differs

__all__ = ["EXIT_FAILED", "EXIT_INVALID", "EXIT_OK", "EXIT_PIPE", "EXIT_RUNTIME", "EXIT_USAGE", "UsageError"]
