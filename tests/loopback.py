"""Real loopback servers that misbehave, for the retry / fail-fast / deadline tests:

- `HangServer`: accepts connections and never answers (optionally answers GET /health, so a start-up
  check passes and only the real requests hang).
- `FlakyServer`: an HTTP server that answers the first `failures` POSTs with 503 and then recovers; it
  speaks enough of the Search-R1 /retrieve and OpenAI chat protocols for our clients.
- `DripServer`: answers at once but sends its body a piece every `every_s` seconds (JSON padded with
  `pieces` spaces, or `pieces` streamed chat chunks): each wait is short, the whole reply slow.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HangServer:
    def __init__(self, healthy: bool = False) -> None:
        self.healthy = healthy
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.requests: list[str] = []
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self._conns.append(conn)
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\r\n\r\n" in buf:
                head, buf = buf.split(b"\r\n\r\n", 1)
                line = head.split(b"\r\n", 1)[0].decode("latin-1")
                self.requests.append(line)
                length = 0
                for h in head.split(b"\r\n")[1:]:
                    name, _, value = h.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                buf = buf[length:]  # the body (enough for our small requests)
                if self.healthy and line.startswith("GET ") and "/health" in line:
                    body = b'{"status":"ok"}'
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                        + str(len(body)).encode()
                        + b"\r\n\r\n"
                        + body
                    )
                # anything else: never answered

    def __enter__(self) -> "HangServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._conns:
            try:
                conn.close()
            except OSError:
                pass
        self.sock.close()


class _Served:
    """A ThreadingHTTPServer on a free loopback port, served from a thread inside `with`; its handler reaches
    this object as `self.server.owner`."""

    def _serve(self, handler: type, daemon_threads: bool = False) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = daemon_threads
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _request(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")


def _retrieve_result(queries: list[str]) -> dict:
    """A Search-R1 /retrieve reply: one document per query."""
    return {"result": [[{"document": {"id": f"{q}-1", "contents": f'"T"\n{q} text'}, "score": 1.0}] for q in queries]}


def _chat_completion(model: str, created: int = 0) -> dict:
    """An OpenAI chat completion whose reply is "ok"."""
    return {
        "id": "x",
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
    }


class _FlakyHandler(_QuietHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path.endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": "flaky", "object": "model", "owned_by": "x"}]})
        else:
            self._send(200, {"status": "ok"})

    def do_POST(self) -> None:  # noqa: N802
        request = self._request()
        if self.server.owner.count_post():
            self._send(503, {"error": "warming up"})
        elif self.path.endswith("/retrieve"):
            self._send(200, _retrieve_result(request["queries"]))
        else:
            self._send(200, _chat_completion("flaky", int(time.time())))


class FlakyServer(_Served):
    """503 for the first `failures` POSTs, then real answers: a Search-R1 /retrieve result or a chat completion."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.posts = 0
        self.lock = threading.Lock()
        self._serve(_FlakyHandler)

    def count_post(self) -> bool:
        """Counts a POST; whether it is one of the first `failures` (to be failed)."""
        with self.lock:
            self.posts += 1
            return self.posts <= self.failures


class _DripHandler(_QuietHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802
        drip = self.server.owner
        request = self._request()
        drip.posts += 1
        self.pieces_sent = 0
        try:
            if request.get("stream"):
                self._stream(drip.pieces, drip.every_s)
            else:
                self._drip(request, drip.pieces, drip.every_s)
        except OSError:  # the client gave up
            pass
        drip.replied(self.pieces_sent)

    def _drip(self, request, n, every) -> None:
        if self.path.endswith("/retrieve"):
            body = {
                "result": [[{"document": {"id": "d", "contents": '"T"\nx'}, "score": 1.0}] for _ in request["queries"]]
            }
        else:
            body = _chat_completion("drip")
        data = b" " * n + json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        for i in range(n):
            self.wfile.write(data[i : i + 1])
            self.wfile.flush()
            self.pieces_sent += 1
            time.sleep(every)
        self.wfile.write(data[n:])
        self.wfile.flush()

    def _stream(self, n, every) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for i in range(n):
            chunk = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "drip",
                "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
            self.pieces_sent += 1
            time.sleep(every)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


class DripServer(_Served):
    def __init__(self, pieces: int, every_s: float = 0.1) -> None:
        self.pieces, self.every_s = pieces, every_s
        self.posts = 0
        self.sent: list[int] = []  # per reply ended (whole or cut by the client): the pieces it sent
        self._ended = threading.Condition()
        self._serve(_DripHandler, daemon_threads=True)

    def replied(self, pieces_sent: int) -> None:
        with self._ended:
            self.sent.append(pieces_sent)
            self._ended.notify_all()

    def wait_for_replies(self, n: int, timeout_s: float = 60.0) -> list[int]:
        """Waits (a hang guard, not a measure) until `n` replies have ended; the pieces each sent."""
        with self._ended:
            self._ended.wait_for(lambda: len(self.sent) >= n, timeout=timeout_s)
            return list(self.sent)
