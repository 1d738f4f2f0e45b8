"""`pyrag-dsl serve-retriever` against hostile requests, on loopback, as started from the command line:
every bad request gets a 4xx JSON error, and a huge body is refused while it is still arriving."""

import json
import select
import socket
import subprocess
import sys
import time

import httpx
import pytest
from ops_helpers import cli, env, tantivy_index  # noqa: F401
from test_http_retrieval import _free_port

CAP = 4_000_000  # ServerLimits.max_body_bytes
MAX_DOCUMENTS = 100  # --max-documents of the server below
REQUEST_TIMEOUT_S = 2.0  # --request-timeout of the server below


@pytest.fixture(scope="module")
def server(tantivy_index):
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pyrag_dsl.cli",
            "serve-retriever",
            "--index",
            str(tantivy_index),
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--max-documents",
            str(MAX_DOCUMENTS),
            "--request-timeout",
            str(REQUEST_TIMEOUT_S),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url + "/health", timeout=1)
            break
        except httpx.TransportError:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.2)
    yield port
    proc.terminate()
    _, err = proc.communicate(timeout=20)
    assert "Traceback" not in err, err  # no request made the server log a traceback


def _post(port, body: bytes, headers=None):
    return httpx.post(
        f"http://127.0.0.1:{port}/retrieve",
        content=body,
        headers={"content-type": "application/json", **(headers or {})},
        timeout=30,
    )


def _json_4xx(r, status=None):
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:200])
    if status is not None:
        assert r.status_code == status
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def test_lone_surrogate_is_a_4xx_json_error(server):
    body = _json_4xx(_post(server, b'{"queries": ["Tokyo \\ud800 capital"], "topk": 1}'), 422)
    assert "query 0" in body["error"] and "surrogate" in body["error"]
    ok = _post(server, b'{"queries": ["Tokyo \\ud83d\\uddfc capital"], "topk": 1}')  # a valid pair still works
    assert ok.status_code == 200 and ok.json()["result"][0]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 200_000 + b"]" * 200_000,
        b'{"queries": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"topk": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_000 + b', "queries": ["x"]}',
    ],
)
def test_deeply_nested_json_is_a_4xx_json_error(server, body):
    assert "error" in _json_4xx(_post(server, body), 400)


@pytest.mark.parametrize(
    "body, status",
    [
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (b'{"queries": "x"}', 422),
        (b'{"queries": ["x"], "topk": 0}', 422),
        (b'{"queries": ["x"], "extra": 1}', 422),
        (b"", 400),
        (b"\xff\xfe", 400),
    ],
)
def test_bad_bodies_get_json_errors(server, body, status):
    assert "error" in _json_4xx(_post(server, body), status)


def test_wrong_method_and_path_are_json(server):
    _json_4xx(httpx.get(f"http://127.0.0.1:{server}/retrieve", timeout=10), 405)
    _json_4xx(httpx.get(f"http://127.0.0.1:{server}/nope", timeout=10), 404)


def _send_until_answered(port, head: bytes, chunks, limit: int):
    """Send head and then chunks until the server answers; returns (bytes of body sent, response)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sent = 0
    try:
        sock.sendall(head)
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered: stop sending
            try:
                sock.settimeout(2)
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                break
            sent += len(chunk)
            assert sent <= limit
        sock.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < 10:
            part = sock.recv(65536)
            if not part:
                break
            data += part
    finally:
        sock.close()
    return sent, data


def test_50_mb_body_with_content_length_is_refused_before_it_is_read(server):
    size = 50_000_000
    head = (
        f"POST /retrieve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    ).encode()
    sent, data = _send_until_answered(server, head, (b"[" * 1_000_000 for _ in range(50)), size)
    assert data.startswith(b"HTTP/1.1 413"), data[:200]
    assert sent < size  # refused long before the end of the body
    assert b'"error"' in data


def test_50_mb_chunked_body_is_refused_at_the_cap(server):
    head = b"POST /retrieve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    piece = b"[" * 1_000_000
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    sent, data = _send_until_answered(server, head, (chunk for _ in range(50)), 50 * len(chunk))
    assert data.startswith(b"HTTP/1.1 413"), data[:200]
    assert sent < 50 * len(chunk) and b"over 4000000 bytes" in data


def test_document_cap_flag_is_enforced(server):
    ok = _post(server, json.dumps({"queries": ["Tokyo"] * 2, "topk": MAX_DOCUMENTS // 2}).encode())
    assert ok.status_code == 200
    body = _json_4xx(_post(server, json.dumps({"queries": ["Tokyo"] * 3, "topk": MAX_DOCUMENTS // 2}).encode()), 422)
    assert f"max_documents {MAX_DOCUMENTS}" in body["error"]
    assert httpx.get(f"http://127.0.0.1:{server}/health", timeout=10).json()["limits"]["max_documents"] == MAX_DOCUMENTS


def test_request_timeout_flag_closes_a_half_sent_body_with_408(server):
    with socket.create_connection(("127.0.0.1", server), timeout=30 * REQUEST_TIMEOUT_S) as sock:
        sock.sendall(b'POST /retrieve HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"queries": ')
        assert httpx.get(f"http://127.0.0.1:{server}/health", timeout=10).status_code == 200
        data = b""
        while part := sock.recv(65536):  # until the server closes the connection (socket timeout otherwise)
            data += part
    assert data.startswith(b"HTTP/1.1 408 "), data[:200]


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--max-documents", "0", "--max-documents must be at least 1, got 0"),
        ("--max-connections", "-1", "--max-connections must be at least 1, got -1"),
        ("--request-timeout", "nan", "--request-timeout must be seconds from 0 to 86400, got nan"),
        ("--request-timeout", "0", "--request-timeout must be seconds from 0 to 86400, got 0.0"),
        ("--max-topk", "1001", "--max-topk: must be an integer from 1 to 1000, got 1001"),
    ],
)
def test_bad_limit_flags_are_one_line_usage_errors(flag, value, message):
    r = cli("serve-retriever", flag, value)
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: {message}"


def test_help_lists_the_limit_flags():
    out = cli("serve-retriever", "--help").stdout
    for flag in (
        "--max-queries",
        "--max-topk",
        "--max-documents",
        "--max-pending-searches",
        "--max-connections",
        "--request-timeout",
    ):
        assert flag in out


def test_port_out_of_range_is_a_one_line_usage_error():
    r = cli("serve-retriever", "--port", "70000")
    assert r.returncode == 2
    assert r.stderr.strip() == "error: --port must be from 0 to 65535, got 70000"
