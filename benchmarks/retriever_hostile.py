"""`serve-retriever` under hostile clients: peak and settled RSS of the server, and /health latency, while
(1) clients ask for the largest responses and (2) hundreds of clients hold half-sent request bodies.

The server runs in a subprocess over a synthetic retriever that returns `topk` documents of about 800 bytes of
JSON for any query (the size the issue measured: 512 queries x topk 1000 = 416 MB), so that the numbers do not
depend on an index. Memory is read from /proc/PID/status (VmHWM: peak RSS, VmRSS: now). Only 127.0.0.1 is
contacted; every loop is bounded in count and time.

    python benchmarks/retriever_hostile.py                    # the working tree's server
    PYTHONPATH=/tmp/old python benchmarks/retriever_hostile.py  # another copy of pyrag_dsl (e.g. before the caps)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

SERVER = r"""
import sys
import uvicorn
from pyrag_dsl.documents import Doc
from pyrag_dsl.retrievers import server as srv

TEXT = "lorem ipsum dolor sit amet " * 27  # about 800 bytes of JSON per document, with id and title


class Synthetic:
    def search(self, queries, topk):
        return [[Doc(id=f"{i}-{j}", title=f"Title {j}", text=TEXT, score=1.0 / (j + 1)) for j in range(topk)]
                for i, _ in enumerate(queries)]

    def __len__(self):
        return 21_000_000

    def close(self):
        pass


port, timeout = int(sys.argv[1]), float(sys.argv[2])
if hasattr(srv, "serve_config"):
    limits = srv.ServerLimits(request_timeout_s=timeout)
    config = srv.serve_config(srv.create_app(Synthetic(), limits), host="127.0.0.1", port=port, log_level="error")
else:  # a server from before the caps: uvicorn's defaults
    config = uvicorn.Config(srv.create_app(Synthetic()), host="127.0.0.1", port=port, log_level="error",
                            lifespan="on")
uvicorn.Server(config).run()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


@contextlib.contextmanager
def server(timeout_s: float):
    port = free_port()
    # run outside the checkout, so that `python -c` does not put the working tree before PYTHONPATH
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), str(timeout_s)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tempfile.gettempdir(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url + "/health", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("server did not start: " + (proc.stderr.read() or "")[-500:]) from None
                time.sleep(0.2)
        yield url, port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


class HealthProbe:
    """GET /health every `every_s` on fresh connections (as a load balancer does) until stopped; at most
    `max_probes`. A probe that fails or does not answer 200 within `timeout_s` is counted as failed."""

    def __init__(self, url: str, every_s: float = 0.1, timeout_s: float = 5.0, max_probes: int = 2000) -> None:
        self.url, self.every_s, self.timeout_s, self.max_probes = url, every_s, timeout_s, max_probes
        self.latencies_ms: list[float] = []
        self.failed: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for _ in range(self.max_probes):
            if self._stop.is_set():
                return
            t0 = time.perf_counter()
            try:
                status = httpx.get(self.url + "/health", timeout=self.timeout_s).status_code
            except httpx.HTTPError as e:
                status = type(e).__name__
            if status == 200:
                self.latencies_ms.append((time.perf_counter() - t0) * 1e3)
            else:
                self.failed[str(status)] = self.failed.get(str(status), 0) + 1
            self._stop.wait(self.every_s)

    def __enter__(self) -> "HealthProbe":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout_s + 5)

    def summary(self) -> str:
        if not self.latencies_ms:
            return f"/health: no answer ({self.failed})"
        lat = self.latencies_ms
        failed = f", failed {self.failed}" if self.failed else ""
        return (
            f"/health: {len(lat)} answered, median {statistics.median(lat):.1f} ms "
            f"(min {min(lat):.1f} - max {max(lat):.1f}){failed}"
        )


def big_responses(url: str, pid: int, repeats: int) -> None:
    print(f"\n== large responses (server memory before: {memory_mb(pid)['VmRSS']:.0f} MB RSS)")
    requests = [
        ("512 queries x topk 1000 (the issue's request)", 512, 1000),
        ("20 queries x topk 1000 (20,000 documents: the default cap)", 20, 1000),
    ]
    for label, n, topk in requests:
        with HealthProbe(url) as probe:
            statuses, sizes, seconds = [], [], []
            for _ in range(repeats):
                t0 = time.perf_counter()
                r = httpx.post(
                    url + "/retrieve", json={"queries": [f"q{i}" for i in range(n)], "topk": topk}, timeout=300
                )
                seconds.append(time.perf_counter() - t0)
                statuses.append(r.status_code)
                sizes.append(len(r.content))
                del r
        mem = memory_mb(pid)
        print(
            f"{label}: status {sorted(set(statuses))}, {max(sizes) / 1e6:.1f} MB per response, "
            f"{statistics.median(seconds):.2f} s median of {repeats}"
        )
        print(f"  server RSS peak {mem['VmHWM']:.0f} MB, now {mem['VmRSS']:.0f} MB; {probe.summary()}")


def half_sent_bodies(url: str, port: int, pid: int, clients: int, hold_s: float, timeout_s: float) -> None:
    print(f"\n== {clients} clients holding half-sent bodies (request timeout {timeout_s:g} s)")
    head = (
        b"POST /retrieve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        + b" " * 500
    )
    socks: list[socket.socket] = []
    try:
        with HealthProbe(url) as probe:
            for _ in range(clients):
                try:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                    sock.sendall(head)
                    socks.append(sock)
                except OSError as e:
                    print(f"  connect failed after {len(socks)}: {type(e).__name__}")
                    break
            time.sleep(hold_s)
        print(f"  while held ({hold_s:g} s): {probe.summary()}")
        closed, statuses = 0, {}
        deadline = time.monotonic() + timeout_s + 10
        for sock in socks:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(200)
                closed += 1
                status = data[9:12].decode() or "EOF"
                statuses[status] = statuses.get(status, 0) + 1
            except (socket.timeout, ConnectionResetError) as e:
                statuses[type(e).__name__] = statuses.get(type(e).__name__, 0) + 1
        print(f"  closed by the server within timeout + 10 s: {closed} of {len(socks)} {statuses}")
        print(
            f"  server RSS now {memory_mb(pid)['VmRSS']:.0f} MB; /health afterwards: "
            f"{httpx.get(url + '/health', timeout=10).status_code}"
        )
    finally:
        for sock in socks:
            sock.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="large requests of each kind (default: 3)")
    ap.add_argument("--clients", type=int, default=300, help="clients holding half-sent bodies (default: 300)")
    ap.add_argument("--hold", type=float, default=5.0, help="seconds to probe /health while they hold (default: 5)")
    ap.add_argument(
        "--request-timeout",
        type=float,
        default=10.0,
        help="the server's request timeout (default: 10; serve-retriever's default is 30)",
    )
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    with server(args.request_timeout) as (url, port, pid):
        with HealthProbe(url) as quiet:
            time.sleep(2)
        print(f"\n== quiet (no attack): {quiet.summary()}")
        big_responses(url, pid, args.repeats)
        half_sent_bodies(url, port, pid, args.clients, args.hold, args.request_timeout)


if __name__ == "__main__":
    main()
