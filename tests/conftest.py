import os
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


# The slowest files, started first so that the two xdist workers finish together (measured: each takes one to
# six minutes; the rest of the suite is many short files that fill the gaps).
SLOW_FIRST = [
    "test_cli_pipeline.py",
    "test_models_e2e.py",
    "test_eval_cli.py",
    "test_e2e_embedded.py",
    "test_benchmarks.py",
    "test_resilience.py",
    "test_cli_retrieval.py",
    "test_eval_ray.py",
]


def pytest_collection_modifyitems(config, items):
    """Order the slowest files first (a stable sort: test order within a file is kept)."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))
