import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pyrag_dsl import Doc, Docs

sys.path.insert(0, str(Path(__file__).parent))


def pytest_configure(config):
    """CI sets PYRAG_DSL_EXPECT_INSTALLED=1: the tests must then run against the installed wheel, not the checkout."""
    if os.environ.get("PYRAG_DSL_EXPECT_INSTALLED") == "1":
        import pyrag_dsl

        source = Path(__file__).resolve().parent.parent / "pyrag_dsl"
        if Path(pyrag_dsl.__file__).resolve().parent == source:
            raise pytest.UsageError(
                f"PYRAG_DSL_EXPECT_INSTALLED=1 but pyrag_dsl was imported from the checkout "
                f"({source}); run pytest from tests/ after a non-editable install"
            )


class RecordingTools:
    """Fake retrieve/answer that record every call (a unit-test fake, never a product default)."""

    def __init__(self, answers: dict[str, str] | None = None) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.answers = answers or {}

    def retrieve(self, query: str, topk: int) -> Docs:
        self.calls.append(("retrieve", {"query": query, "topk": topk}))
        return Docs(
            tuple(
                Doc(id=f"{query}#{i}", title=f"T{i}", text=f"passage {i} for {query}", score=1.0 / (i + 1))
                for i in range(topk)
            )
        )

    def answer(self, query: str, docs: Docs | None) -> str:
        self.calls.append(("answer", {"query": query, "docs": None if docs is None else len(docs)}))
        for key, value in self.answers.items():
            if key in query:
                return value
        return f"A({query[:20]})"

    def as_dict(self) -> dict:
        return {"retrieve": self.retrieve, "answer": self.answer}


@pytest.fixture
def tools() -> RecordingTools:
    return RecordingTools()


DATA = Path(__file__).parent / "data"
SMALL_CORPUS = DATA / "small-corpus.jsonl"


@pytest.fixture(scope="session")
def bm25_index(tmp_path_factory):
    """A real Lucene index of the 20-passage test corpus."""
    from pyrag_dsl.retrievers.bm25 import build_bm25_index

    out = tmp_path_factory.mktemp("bm25")
    build_bm25_index(SMALL_CORPUS, out, threads=2)
    return out


@pytest.fixture(scope="session")
def bm25(bm25_index):
    from pyrag_dsl.retrievers import open_index

    retriever = open_index(bm25_index)
    yield retriever
    retriever.close()


@pytest.fixture(scope="session")
def retrieval_server(bm25):
    """Our retrieval server over the real Lucene index, on a free loopback port."""
    from pyrag_dsl.retrievers.server import BackgroundServer, create_app

    with BackgroundServer(create_app(bm25, name="small")) as server:
        yield server


# -- markers (registered in pyproject.toml) -------------------------------------------------------------------
def _module_marks(item) -> list:
    marks = getattr(item.module, "pytestmark", [])
    return marks if isinstance(marks, list) else [marks]


def _slow_seconds(items) -> dict[Path, float]:
    """Per file: the seconds its `slow(seconds=...)` marks say it takes (the module's mark once, plus each
    test's own), 0 for a file with none."""
    weight: dict[Path, float] = {}
    seen_modules: set[Path] = set()
    for item in items:
        path = item.path
        weight.setdefault(path, 0.0)
        if path not in seen_modules:
            seen_modules.add(path)
            weight[path] += sum(m.kwargs.get("seconds", 1) for m in _module_marks(item) if m.name == "slow")
        weight[path] += sum(m.kwargs.get("seconds", 1) for m in item.own_markers if m.name == "slow")
    return weight


def pytest_collection_modifyitems(config, items):
    """The slowest files first, by their `slow` marks, so that the two xdist workers (`--dist loadfile`) finish
    together: the rest of the suite is many short files that fill the gaps. A stable sort: files with equal
    weight, and the tests within a file, keep their order."""
    weight = _slow_seconds(items)
    items.sort(key=lambda item: -weight[item.path])


class MarkerViolation(RuntimeError):
    """A test did what its markers say it does not (the test fails)."""


@pytest.fixture(autouse=True)
def markers_are_true(request, monkeypatch):
    """Makes the markers unable to lie where that is cheap. `network_free`: creating an internet socket
    (AF_INET/AF_INET6, loopback included), resolving a name or starting a process (which could open one) raises;
    the test fails even when the code under test swallowed the error. Without `model` no llama.cpp server
    process, without `browser` no chromium, may be started from the test's process, and the `browser`
    fixture may not be used."""
    violations: list[str] = []

    def refuse(what: str):
        violations.append(what)
        raise MarkerViolation(f"{request.node.nodeid}: {what}")

    node = request.node
    if "browser" in request.fixturenames and node.get_closest_marker("browser") is None:
        pytest.fail("uses the browser fixture without the browser marker", pytrace=False)
    network_free = node.get_closest_marker("network_free") is not None
    real_popen = subprocess.Popen.__init__

    def popen(self, args, *rest, **kwargs):
        text = " ".join(map(str, args)) if isinstance(args, (list, tuple)) else str(args)
        if network_free:
            refuse(f"starts a process although marked network_free: {text[:200]}")
        if "llama_cpp.server" in text and node.get_closest_marker("model") is None:
            refuse(f"starts a llama.cpp server without the model marker: {text[:200]}")
        if "chromium" in text and node.get_closest_marker("browser") is None:
            refuse(f"starts chromium without the browser marker: {text[:200]}")
        real_popen(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", popen)
    if network_free:
        real_socket = socket.socket.__init__

        def new_socket(self, family=-1, type=-1, proto=-1, fileno=None):
            if fileno is None and family in (-1, socket.AF_INET, socket.AF_INET6):
                refuse("opens an internet socket although marked network_free")
            real_socket(self, family, type, proto, fileno)

        monkeypatch.setattr(socket.socket, "__init__", new_socket)
        for name in ("create_connection", "getaddrinfo", "gethostbyname"):
            monkeypatch.setattr(
                socket, name, lambda *a, _name=name, **k: refuse(f"calls socket.{_name} although marked network_free")
            )
    yield
    if violations:
        pytest.fail(f"marker violated: {violations[0]}", pytrace=False)
