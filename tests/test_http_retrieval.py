"""The Search-R1 protocol over a real server on loopback: round trip, batching, bad requests, client retries."""

import socket
import threading

import httpx
import pytest
from corpus import VALID_PROGRAMS
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from pyrag_dsl import execute, parse_program
from pyrag_dsl.grammar import ToolError
from pyrag_dsl.retrievers import HttpRetriever, RetrievalError, RetrieveTool
from pyrag_dsl.retrievers.server import BackgroundServer, create_app


def post(server, payload=None, content=None):
    return httpx.post(server.url + "/retrieve", json=payload, content=content, timeout=10)


def test_protocol_round_trip_with_scores(retrieval_server):
    r = post(retrieval_server, {"queries": ["When was Jed Hoyer born?"], "topk": 2, "return_scores": True})
    assert r.status_code == 200
    result = r.json()["result"]
    assert len(result) == 1 and len(result[0]) == 2
    hit = result[0][0]
    assert set(hit) == {"document", "score"}
    assert hit["document"]["id"] == "doc0"
    assert hit["document"]["contents"].startswith('"Jed Hoyer"\nJed Hoyer (born December 7, 1973)')
    assert result[0][0]["score"] >= result[0][1]["score"]


def test_return_scores_false_gives_bare_documents(retrieval_server):
    r = post(retrieval_server, {"queries": ["Eiffel Tower"], "topk": 1, "return_scores": False})
    hit = r.json()["result"][0][0]
    assert set(hit) == {"id", "contents"} and hit["contents"].startswith('"Eiffel Tower"')
    # default is return_scores false, as in Search-R1
    assert set(post(retrieval_server, {"queries": ["Eiffel Tower"], "topk": 1}).json()["result"][0][0]) == {
        "id",
        "contents",
    }


def test_client_batches_queries_in_one_request(retrieval_server):
    before = httpx.get(retrieval_server.url + "/health").json()["requests"]
    with HttpRetriever(retrieval_server.url) as client:
        results = client.search(["Jed Hoyer", "Mount Everest", "Marie Curie radioactivity"], 2)
        assert client.requests == 1
    assert [r[0].title for r in results] == ["Jed Hoyer", "Mount Everest", "Marie Curie"]
    assert httpx.get(retrieval_server.url + "/health").json()["requests"] == before + 1


def test_client_keeps_each_request_under_the_servers_document_cap(retrieval_server):
    from pyrag_dsl.retrievers.server import ServerLimits

    assert HttpRetriever().max_documents == ServerLimits().max_documents
    queries = ["Jed Hoyer", "Mount Everest", "Marie Curie", "Eiffel Tower", "Tokyo"]
    with HttpRetriever(retrieval_server.url, max_documents=6) as client:
        results = client.search(queries, 3)
        assert client.requests == 3  # 2 + 2 + 1 queries: 6 documents at most per request
    with HttpRetriever(retrieval_server.url) as whole:
        assert results == whole.search(queries, 3) and whole.requests == 1


def test_client_splits_contents_into_title_and_text(retrieval_server, bm25):
    with HttpRetriever(retrieval_server.url) as client:
        over_http = client.search(["Virginia Bruce actress"], 3)[0]
    assert over_http == bm25.search(["Virginia Bruce actress"], 3)[0]


@pytest.mark.parametrize(
    "payload, content, status, message",
    [
        (None, b"{not json", 400, "malformed JSON"),
        (None, b"[1, 2]", 400, "JSON object"),
        ({"topk": 3}, None, 422, "missing 'queries'"),
        ({"queries": []}, None, 422, "empty"),
        ({"queries": "just a string"}, None, 422, "list of strings"),
        ({"queries": [1, 2]}, None, 422, "list of strings"),
        ({"queries": ["ok", "  "]}, None, 422, "query 1 is empty"),
        ({"queries": ["x" * 5000]}, None, 422, "over 4096 characters"),
        ({"queries": ["q"] * 513}, None, 422, "too many queries"),
        ({"queries": ["q"], "topk": 0}, None, 422, "'topk'"),
        ({"queries": ["q"], "topk": 1001}, None, 422, "'topk'"),
        ({"queries": ["q"], "topk": "5"}, None, 422, "'topk'"),
        ({"queries": ["q"], "topk": True}, None, 422, "'topk'"),
        ({"queries": ["q"], "return_scores": "yes"}, None, 422, "return_scores"),
        ({"queries": ["q"], "extra": 1}, None, 422, "unknown field"),
    ],
)
def test_bad_requests_get_4xx_with_a_message(retrieval_server, payload, content, status, message):
    r = post(retrieval_server, payload, content)
    assert r.status_code == status
    assert message in r.json()["error"]


def test_health(retrieval_server):
    body = httpx.get(retrieval_server.url + "/health").json()
    assert body["status"] == "ok" and body["documents"] == 26


def _flaky_app(fail_first: int, inner):
    app = FastAPI()
    state = {"n": 0}

    @app.post("/retrieve")
    async def retrieve(payload: dict):
        state["n"] += 1
        if state["n"] <= fail_first:
            return JSONResponse({"error": "warming up"}, status_code=503)
        return {
            "result": [
                [{"document": {"id": d.id, "contents": f'"{d.title}"\n{d.text}'}, "score": d.score} for d in hits]
                for hits in inner.search(payload["queries"], payload["topk"])
            ]
        }

    return app, state


def test_client_retries_until_the_server_recovers(bm25):
    app, state = _flaky_app(2, bm25)
    with BackgroundServer(app) as server, HttpRetriever(server.url, retries=3, backoff=0.01) as client:
        hits = client.search(["Jed Hoyer"], 1)
    assert hits[0][0].title == "Jed Hoyer"
    assert state["n"] == 3 and client.requests == 3


def test_client_gives_up_with_a_typed_error(bm25):
    app, state = _flaky_app(100, bm25)
    with BackgroundServer(app) as server, HttpRetriever(server.url, retries=2, backoff=0.01) as client:
        with pytest.raises(RetrievalError) as info:
            client.search(["q"], 1)
    assert state["n"] == 3
    assert info.value.source == server.url + "/retrieve"
    assert "server error 503" in info.value.cause and "after 3 attempts" in info.value.cause


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nothing_listening_is_a_typed_error():
    url = f"http://127.0.0.1:{_free_port()}"
    with HttpRetriever(url, retries=1, backoff=0.01) as client, pytest.raises(RetrievalError) as info:
        client.search(["q"], 1)
    assert url in str(info.value) and "cannot connect" in info.value.cause


def test_4xx_is_not_retried(retrieval_server):
    with HttpRetriever(retrieval_server.url, retries=3, backoff=0.01) as client:
        with pytest.raises(RetrievalError, match="request refused \\(422\\)"):
            client.search(["q"], 5000)
        assert client.requests == 1


@pytest.mark.parametrize(
    "body",
    [
        "not json at all",
        {"no_result": 1},
        {"result": [[{"weird": 1}]]},
        {"result": [[], []]},
        {"result": ["x"]},
        {"result": [[{"document": {"id": "1", "contents": "c"}, "score": "high"}]]},
    ],
)
def test_garbage_answers_are_typed_errors(body):
    app = FastAPI()

    @app.post("/retrieve")
    async def retrieve():
        return PlainTextResponse(body) if isinstance(body, str) else JSONResponse(body)

    with BackgroundServer(app) as server, HttpRetriever(server.url, retries=0) as client:
        with pytest.raises(RetrievalError):
            client.search(["q"], 1)


def test_slow_search_does_not_block_other_requests():
    """/health answers while a search is held inside the backend (a server that served one request at a time
    would leave the health check waiting until its timeout)."""
    entered, release = threading.Event(), threading.Event()
    replies = []

    class Held:
        def search(self, queries, topk):
            entered.set()
            release.wait(30)
            return [[] for _ in queries]

        def close(self):
            pass

    with BackgroundServer(create_app(Held())) as server:
        post = lambda: replies.append(httpx.post(server.url + "/retrieve", json={"queries": ["q"]}, timeout=60))  # noqa: E731
        t = threading.Thread(target=post)
        t.start()
        try:
            assert entered.wait(30)  # the search is in the backend now, and stays there
            assert httpx.get(server.url + "/health", timeout=10).status_code == 200
            assert not replies  # answered while the search was still held
        finally:
            release.set()
            t.join(timeout=60)
    assert [r.status_code for r in replies] == [200]


def test_backend_failure_is_503_not_500():
    class Broken:
        def search(self, queries, topk):
            raise RetrievalError("idx", "disk gone")

        def close(self):
            pass

    with BackgroundServer(create_app(Broken())) as server:
        r = httpx.post(server.url + "/retrieve", json={"queries": ["q"]})
    assert r.status_code == 503 and "disk gone" in r.json()["error"]


def test_engine_runs_a_program_over_http(retrieval_server):
    answers = []

    def answer(query, docs):
        answers.append((query, [d.title for d in docs] if docs else None))
        return "x"

    with HttpRetriever(retrieval_server.url) as client:
        result = execute(
            parse_program(VALID_PROGRAMS["jed_hoyer"]),
            {"retrieve": RetrieveTool(client), "answer": answer},
            settings={"topk": 2},
        )
    assert result.ok
    assert answers[0][1][0] == "Jed Hoyer" and answers[1][1][0] == "John W. Henry"
    assert result.trace[0].output[0]["title"] == "Jed Hoyer"


def test_engine_turns_a_down_server_into_a_tool_error():
    url = f"http://127.0.0.1:{_free_port()}"
    with HttpRetriever(url, retries=0) as client:
        result = execute(
            parse_program(VALID_PROGRAMS["jed_hoyer"]),
            {"retrieve": RetrieveTool(client), "answer": lambda query, docs: "x"},
        )
    assert isinstance(result.error, ToolError)
    assert "RetrievalError" in result.error.message and url in result.error.message
