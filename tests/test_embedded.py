"""The embedded default corpus: indexed on first use into the cache, then reused."""

import json

import pytest

from pyrag_dsl.retrievers import embedded, read_meta

pytestmark = pytest.mark.slow(seconds=10)


@pytest.mark.parametrize("kind", ["tantivy", "bm25"])
def test_embedded_index_builds_once_and_answers(tmp_path, monkeypatch, kind):
    monkeypatch.setenv("PYRAG_DSL_CACHE", str(tmp_path))
    path = embedded.embedded_index(kind)
    meta = read_meta(path)
    assert meta["documents"] == 2964 + 5 and meta["kind"] == kind
    assert embedded.embedded_index(kind) == path  # second call: no rebuild
    assert meta == read_meta(path)
    retriever = embedded.embedded_retriever(kind)
    assert retriever.search(["When was Jed Hoyer born?"], 1)[0][0].title == "Jed Hoyer"
    assert retriever.search(["When was John William Henry II born?"], 1)[0][0].title == "John W. Henry"
    # the first HotpotQA question: its supporting passages are in the embedded corpus
    first = json.loads(embedded.QUESTIONS_FILE.read_text().splitlines()[0])
    titles = {d.title for d in retriever.search([first["question"]], 10)[0]}
    assert set(first["supporting_titles"]) & titles
    retriever.close()


def test_attribution_ships_with_the_data():
    text = (embedded.DATA_DIR / "PROVENANCE.md").read_text()
    assert "CC BY-SA 4.0" in text and "HotpotQA" in text
