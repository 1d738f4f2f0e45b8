import pytest
from conftest import SMALL_CORPUS

from pyrag_dsl.retrievers import RetrievalError, open_index, read_meta
from pyrag_dsl.retrievers.tantivy_bm25 import build_tantivy_index

pytestmark = pytest.mark.network_free


@pytest.fixture(scope="module")
def tantivy_index(tmp_path_factory):
    out = tmp_path_factory.mktemp("tantivy")
    build_tantivy_index(SMALL_CORPUS, out)
    return out


@pytest.mark.parametrize(
    "query, top_title",
    [
        ("When was Jed Hoyer born?", "Jed Hoyer"),
        ("highest mountain in Japan", "Mount Fuji"),
        ("Who starred as Corliss Archer in Kiss and Tell?", "Kiss and Tell (1945 film)"),
    ],
)
def test_known_top_hits(tantivy_index, query, top_title):
    hits = open_index(tantivy_index).search([query], 3)[0]
    assert hits[0].title == top_title
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_batch_equals_single_and_odd_queries(tantivy_index):
    r = open_index(tantivy_index)
    queries = ["Jed Hoyer", "Eiffel Tower Paris", "Amazon river discharge", "a:b (c AND", "Nile"]
    assert r.search(queries, 4) == [r.search([q], 4)[0] for q in queries]
    assert r.search(["zzzzqqq"], 3) == [[]]
    assert read_meta(tantivy_index)["kind"] == "tantivy" and len(r) == 26
    r.close()


def test_bad_lines_leave_nothing_behind(tmp_path):
    from pyrag_dsl.retrievers import CorpusError

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "1", "contents": "ok"}\nbroken\n')
    with pytest.raises(CorpusError):
        build_tantivy_index(corpus, tmp_path / "idx")
    assert not (tmp_path / "idx").exists()
    with pytest.raises(RetrievalError):
        open_index(tmp_path / "idx")
