import pytest

from pyrag_dsl.retrievers import RetrievalError, open_index, read_meta

pytestmark = pytest.mark.network_free


@pytest.mark.parametrize(
    "query, top_title",
    [
        ("When was Jed Hoyer born?", "Jed Hoyer"),
        ("Dutch programmer Guido", "Guido van Rossum"),
        ("highest mountain in Japan", "Mount Fuji"),
        ("Who starred as Corliss Archer in Kiss and Tell?", "Kiss and Tell (1945 film)"),
        ("theory of relativity physicist", "Albert Einstein"),
    ],
)
def test_known_top_hits(bm25, query, top_title):
    hits = bm25.search([query], 3)[0]
    assert hits[0].title == top_title
    assert 1 <= len(hits) <= 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_batch_equals_single(bm25):
    queries = ["Jed Hoyer", "Eiffel Tower Paris", "Amazon river discharge"]
    batched = bm25.search(queries, 4)
    single = [bm25.search([q], 4)[0] for q in queries]
    assert batched == single


def test_topk_larger_than_corpus_and_odd_queries(bm25):
    assert len(bm25.search(["baseball"], 100)[0]) <= 26
    assert bm25.search(["a:b (c AND"], 3)  # Lucene query syntax is not interpreted
    assert bm25.search(["zzzzqqq"], 3) == [[]]


def test_metadata(bm25_index, bm25):
    meta = read_meta(bm25_index)
    assert meta["kind"] == "bm25" and meta["documents"] == 26 and len(meta["corpus_sha256"]) == 64
    assert len(bm25) == 26


def test_bad_index_dirs(tmp_path):
    with pytest.raises(RetrievalError, match="no such index"):
        open_index(tmp_path / "missing")
    with pytest.raises(RetrievalError, match="not a pyrag-dsl index"):
        open_index(tmp_path)
