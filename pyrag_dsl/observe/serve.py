"""`pyrag-dsl serve-ui DIR`: the `view` pages of the runs under one directory, over HTTP on loopback.

Read-only (GET and HEAD only), nothing outside DIR (every path is resolved, symlinks included, and must stay
inside it), and only for a Host header naming this loopback server (a web page elsewhere cannot reach it
through DNS rebinding). Each page is rendered when asked for, from the files as they are then.
"""

from __future__ import annotations

import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from . import view

MAX_DEPTH = 3  # how deep the index looks for runs under DIR


def _kind(d: Path) -> str | None:
    try:
        if (d / "trace.jsonl").is_file() or (d / "result.json").is_file():
            return "question"
        if any(d.glob(view.RECORD_GLOB)) or (d / "summary.json").is_file():
            return "eval"
        if any(x.is_dir() and x.name.isdigit() for x in d.iterdir()):
            return "run"
    except OSError:
        return None
    return None


def index(root: Path) -> list[dict[str, str]]:
    """What under `root` can be viewed: runs, evals, and questions that are not inside a listed run/eval."""
    out: list[dict[str, str]] = []

    def walk(d: Path, depth: int) -> None:
        kind = _kind(d)
        if kind is not None:
            out.append({"path": d.relative_to(root).as_posix() or ".", "kind": kind})
            if kind != "run" or depth >= MAX_DEPTH:
                return
        if depth >= MAX_DEPTH:
            return
        try:
            subdirs = sorted(x for x in d.iterdir() if x.is_dir() and not x.is_symlink() and not x.name.startswith("."))
        except OSError:
            return
        for x in subdirs:
            if kind == "run" and x.name.isdigit():
                continue  # the run's questions are in its own table
            walk(x, depth + 1)

    walk(root, 0)
    return out


class _Handler(BaseHTTPRequestHandler):
    server_version = "pyrag-dsl-serve-ui"
    root: Path
    hosts: set[str]

    def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per request is noise here
        pass

    def _send(self, status: int, body: str, ctype: str = "text/html; charset=utf-8", csp: str | None = None) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", csp or "default-src 'none'")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _page(self, payload: dict[str, Any], questions: list[dict[str, Any]] | None = None) -> None:
        js, css = view._assets()
        self._send(200, view.render_html(payload, questions), csp=view.content_security_policy(js, css))

    def do_GET(self) -> None:  # noqa: N802
        if self.headers.get("Host", "").lower() not in self.hosts:
            return self._send(HTTPStatus.FORBIDDEN, "forbidden host\n", "text/plain; charset=utf-8")
        path = unquote(urlsplit(self.path).path)
        if path == "/":
            return self._page({"kind": "index", "source": str(self.root), "rows": index(self.root)})
        if not path.startswith("/view/"):
            return self._send(HTTPStatus.NOT_FOUND, "not found\n", "text/plain; charset=utf-8")
        rel = path[len("/view/") :]
        target = view._inside(self.root, rel or ".")
        if target is None or "\\" in rel:
            return self._send(HTTPStatus.FORBIDDEN, "outside the served directory\n", "text/plain; charset=utf-8")
        try:
            payload, questions = view.load(target)
        except view.ViewError as e:
            return self._send(HTTPStatus.NOT_FOUND, f"{e}\n", "text/plain; charset=utf-8")
        self._page(payload, questions)

    do_HEAD = do_GET


def make_server(root: str | Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    root_path = Path(root).resolve()
    if not root_path.is_dir():
        raise NotADirectoryError(str(root))
    server = ThreadingHTTPServer((host, port), type("Handler", (_Handler,), {"root": root_path}))
    bound = server.server_address[1]
    names = {"127.0.0.1", "localhost", "[::1]", host}
    server.RequestHandlerClass.hosts = {f"{n}:{bound}".lower() for n in names}  # type: ignore[attr-defined]
    return server


def serve_in_thread(root: str | Path, host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start a server in a daemon thread; returns it and its base URL (tests, notebooks)."""
    server = make_server(root, host, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}"


__all__ = ["index", "make_server", "serve_in_thread"]
