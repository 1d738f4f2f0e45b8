"""Shared by the tests/test_ops_*.py files: the CLI as a subprocess, a tantivy index of the small test
corpus (opens in milliseconds: no JVM), and process inspection through /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SMALL_CORPUS

CLEAN_ENV = ("LLM_MODEL", "LLM_BASE_URL", "PLAN_LLM_MODEL", "PLAN_LLM_BASE_URL", "OUTPUT_DIR")


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    return {**out, "COLUMNS": "250", **extra}  # wide enough that rich tables do not wrap cells


def cli(*args: str, stdin: str | None = None, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pyrag_dsl.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
        env=kw.pop("env", env()),
        **kw,
    )


def popen(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pyrag_dsl.cli", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=kw.pop("env", env()),
        **kw,
    )


@pytest.fixture(scope="module")
def tantivy_index(tmp_path_factory) -> Path:
    from pyrag_dsl.retrievers.tantivy_bm25 import build_tantivy_index

    out = tmp_path_factory.mktemp("tantivy") / "index"
    build_tantivy_index(SMALL_CORPUS, out)
    return out


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"process ended ({proc.returncode}) before {what}: {out[-2000:]} {err[-2000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields after the command name: state, ppid, pgrp, ...


def children(pid: int) -> list[int]:
    """Live child processes of pid (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry.name))
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def pgrp(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[2]) if fields else None
