"""The retrieval server against hostile clients, on loopback: responses bounded in documents, searches bounded
in number, connections capped, and connections that never finish their request closed by the request timeout
while /health keeps answering. Every cap and timeout is read from the ServerLimits the server runs with."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

import httpx
import pytest

from pyrag_dsl.documents import Doc
from pyrag_dsl.retrievers.server import BackgroundServer, ServerLimits, create_app

TIMEOUT_S = 1.0  # request timeout of the servers below: short, so that the tests are quick
WAIT_S = 30 * TIMEOUT_S  # bound on every wait: a loop that polls stops by itself


class Wide:
    """A retriever that returns `topk` documents for every query (the test corpus has only 26)."""

    def __init__(self) -> None:
        self.calls = 0

    def search(self, queries, topk):
        self.calls += 1
        return [[Doc(id=f"{q}-{i}", title="T", text="x" * 20, score=1.0) for i in range(topk)] for q in queries]

    def close(self) -> None:
        pass


class Gated(Wide):
    """Each search waits until `gate` is set (bounded), so that searches pile up."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def search(self, queries, topk):
        self.gate.wait(WAIT_S)
        return super().search(queries, topk)


def serve(retriever, **limits) -> tuple[BackgroundServer, ServerLimits]:
    settings = ServerLimits(**limits)
    return BackgroundServer(create_app(retriever, settings)), settings


def retrieve(server: BackgroundServer, queries: list[str], topk: int) -> httpx.Response:
    return httpx.post(server.url + "/retrieve", json={"queries": queries, "topk": topk}, timeout=WAIT_S)


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)


def half_sent_body(server: BackgroundServer) -> socket.socket:
    """A connection that announces a 1000-byte body and sends 500 bytes of it."""
    sock = socket.create_connection((server.host, server.port), timeout=WAIT_S)
    sock.sendall(
        b"POST /retrieve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        + b" " * 500
    )
    return sock


def read_to_end(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (socket.timeout if it never does)."""
    data = b""
    while part := sock.recv(65536):
        data += part
    return data


def test_response_over_the_document_cap_is_422_naming_the_cap():
    retriever = Wide()
    server, limits = serve(retriever)
    with server:
        r = retrieve(server, ["q"] * limits.max_queries, limits.max_topk)  # 512 x 1000: 416 MB before the cap
        assert r.status_code == 422
        assert f"max_documents {limits.max_documents}" in r.json()["error"]
        assert retriever.calls == 0  # refused before any search

        topk = 1000
        at_cap = retrieve(server, ["q"] * (limits.max_documents // topk), topk)
        assert at_cap.status_code == 200
        assert sum(len(row) for row in at_cap.json()["result"]) == limits.max_documents


def test_cap_on_documents_comes_from_the_settings():
    server, limits = serve(Wide(), max_documents=10)
    with server:
        assert retrieve(server, ["a", "b"], 5).status_code == 200  # 10 documents: at the cap
        r = retrieve(server, ["a", "b", "c"], 4)  # 12
        assert r.status_code == 422 and "3 queries x topk 4 = 12 > max_documents 10" in r.json()["error"]
        assert httpx.get(server.url + "/health").json()["limits"]["max_documents"] == limits.max_documents


def test_query_count_and_topk_caps_come_from_the_settings():
    server, limits = serve(Wide(), max_queries=3, max_topk=7)
    with server:
        assert retrieve(server, ["a", "b", "c"], 7).status_code == 200
        r = retrieve(server, ["q"] * (limits.max_queries + 1), 1)
        assert r.status_code == 422 and "too many queries: 4 > 3" in r.json()["error"]
        r = retrieve(server, ["q"], limits.max_topk + 1)
        assert r.status_code == 422 and "from 1 to 7" in r.json()["error"]


def test_normal_request_still_works(retrieval_server):
    r = retrieve(retrieval_server, ["Jed Hoyer", "Eiffel Tower"], 2)
    assert r.status_code == 200
    assert [row[0]["contents"].split("\n")[0] for row in r.json()["result"]] == ['"Jed Hoyer"', '"Eiffel Tower"']


def test_half_sent_bodies_are_closed_with_408_while_health_answers():
    server, limits = serve(Wide(), max_connections=12, request_timeout_s=TIMEOUT_S)
    with server:
        holders = [half_sent_body(server) for _ in range(limits.max_connections - 2)]
        try:
            wait_until(lambda: server.connections >= len(holders), "the half-sent bodies to be accepted")
            health = httpx.get(server.url + "/health", timeout=WAIT_S)
            assert health.status_code == 200 and health.json()["status"] == "ok"
            wait_until(lambda: server.connections == 0, "the request timeout to close the half-open connections")
            for sock in holders:
                data = read_to_end(sock)
                assert data.startswith(b"HTTP/1.1 408 "), data[:100]
                assert json.loads(data.split(b"\r\n\r\n", 1)[1])["error"].startswith("request timeout")
            assert retrieve(server, ["q"], 1).status_code == 200  # and the server goes on serving
        finally:
            for sock in holders:
                sock.close()


@pytest.mark.parametrize(
    "sent, answer",
    [
        (b"POST /retrieve HTTP/1.1\r\nHost: x\r\nContent-Le", b"HTTP/1.1 408 "),  # headers begun: 408
        (b"", b""),  # nothing sent: closed silently, as an idle keep-alive connection
    ],
)
def test_connections_that_never_finish_their_headers_are_closed(sent, answer):
    server, _ = serve(Wide(), request_timeout_s=TIMEOUT_S)
    with server:
        with socket.create_connection((server.host, server.port), timeout=WAIT_S) as sock:
            sock.sendall(sent)
            wait_until(lambda: server.connections == 1, "the connection to be accepted")
            wait_until(lambda: server.connections == 0, "the request timeout to close the connection")
            data = read_to_end(sock)
            assert data.startswith(answer) and (answer or data == b"")


def test_a_keep_alive_connection_that_sends_half_its_next_request_is_closed():
    server, _ = serve(Wide(), request_timeout_s=TIMEOUT_S)
    with server:
        with socket.create_connection((server.host, server.port), timeout=WAIT_S) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /heal")
            wait_until(lambda: server.connections == 1, "the connection to be accepted")
            wait_until(lambda: server.connections == 0, "the request timeout to close the connection")
            data = read_to_end(sock)
    first, _, rest = data.partition(b"HTTP/1.1 408 ")
    assert first.startswith(b"HTTP/1.1 200 ") and rest  # the first request answered, the second timed out


def test_connection_cap_answers_503_until_the_timeout_frees_the_slots():
    server, limits = serve(Wide(), max_connections=6, request_timeout_s=TIMEOUT_S)
    with server:
        holders = [half_sent_body(server) for _ in range(limits.max_connections - 1)]
        try:
            wait_until(lambda: server.connections >= len(holders), "the holders to be accepted")
            refused = httpx.get(server.url + "/health", timeout=WAIT_S)  # the max_connections-th connection
            assert refused.status_code == 503  # uvicorn's limit_concurrency: answered at once, not queued
            wait_until(lambda: server.connections == 0, "the request timeout to close the holders")
            assert httpx.get(server.url + "/health", timeout=WAIT_S).status_code == 200
        finally:
            for sock in holders:
                sock.close()


def test_a_long_search_is_not_cut_by_the_request_timeout():
    retriever = Gated()
    server, _ = serve(retriever, request_timeout_s=TIMEOUT_S)
    with server:
        done: list[httpx.Response] = []
        t = threading.Thread(target=lambda: done.append(retrieve(server, ["q"], 2)))
        t.start()
        health = lambda: httpx.get(server.url + "/health", timeout=WAIT_S).json()  # noqa: E731
        wait_until(lambda: health()["pending_searches"] == 1, "the search to start")
        time.sleep(3 * TIMEOUT_S)  # the deadline passes while the request is answered
        retriever.gate.set()
        t.join(WAIT_S)
        assert done and done[0].status_code == 200 and len(done[0].json()["result"][0]) == 2


def test_searches_past_the_pending_cap_get_503_and_health_answers():
    retriever = Gated()
    server, limits = serve(retriever, max_pending_searches=2)
    with server:
        results: list[int] = []
        threads = [
            threading.Thread(target=lambda: results.append(retrieve(server, ["q"], 1).status_code))
            for _ in range(limits.max_pending_searches)
        ]
        try:
            for t in threads:
                t.start()
            health = lambda: httpx.get(server.url + "/health", timeout=WAIT_S)  # noqa: E731
            wait_until(
                lambda: health().json()["pending_searches"] == limits.max_pending_searches, "the searches to queue"
            )
            busy = retrieve(server, ["q"], 1)
            assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
            assert f"max_pending_searches {limits.max_pending_searches}" in busy.json()["error"]
            assert health().status_code == 200
        finally:
            retriever.gate.set()
            for t in threads:
                t.join(WAIT_S)
        assert results == [200] * limits.max_pending_searches
        assert health().json()["pending_searches"] == 0


def test_a_client_that_does_not_read_its_response_is_cut_off():
    class Long(Wide):
        def search(self, queries, topk):
            return [[Doc(id=str(i), title="", text="y" * 1000, score=None) for i in range(topk)] for _ in queries]

    server, _ = serve(Long(), request_timeout_s=TIMEOUT_S)  # 20 x 1000 x 1 KB: a 20 MB response
    with server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(WAIT_S)
        try:
            sock.connect((server.host, server.port))
            body = json.dumps({"queries": ["q"] * 20, "topk": 1000}).encode()
            sock.sendall(
                b"POST /retrieve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            wait_until(lambda: server.connections == 1, "the connection to be accepted")
            wait_until(lambda: server.connections == 0, "the server to drop the connection it could not write to")
            received = 0
            with contextlib.suppress(ConnectionResetError):  # aborted: what was still unsent is dropped
                while part := sock.recv(1 << 20):
                    received += len(part)
            assert received < 20_000_000
        finally:
            sock.close()
