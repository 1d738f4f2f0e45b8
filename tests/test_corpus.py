import pytest
from conftest import SMALL_CORPUS

from pyrag_dsl.retrievers.corpus import CorpusError, iter_corpus, load_corpus, parse_line

pytestmark = pytest.mark.network_free


def test_small_corpus_loads():
    passages = load_corpus(SMALL_CORPUS)
    assert len(passages) == 26
    doc = passages[0].to_doc(1.5)
    assert (doc.id, doc.title, doc.score) == ("doc0", "Jed Hoyer", 1.5)
    assert doc.text.startswith("Jed Hoyer (born December 7, 1973)")


def test_title_text_rows_and_int_ids():
    p = parse_line('{"id": 7, "title": "T", "text": "body"}')
    assert (p.id, p.contents) == ("7", '"T"\nbody')


def test_bad_lines_are_reported_with_line_numbers(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes(
        b'{"id": "a", "contents": "ok"}\n'
        b"not json\n"
        b"\n"
        b'{"id": "a", "contents": "dup"}\n'
        b'["list"]\n'
        b'{"contents": "no id"}\n'
        b'{"id": "b"}\n'
        b'{"id": "c", "contents": "   "}\n'
        b'{"id": true, "contents": "x"}\n'
        b'{"id": "d", "contents": "\xff"}\n'
        b'{"id": "e", "contents": "fine"}\n'
    )
    with pytest.raises(CorpusError) as info:
        load_corpus(path)
    lines = [n for n, _ in info.value.problems]
    assert lines == [2, 4, 5, 6, 7, 8, 9, 10]
    assert "duplicate id 'a'" in dict(info.value.problems)[4]
    assert "line 2: not JSON" in str(info.value)
    assert [p.id for p in iter_corpus(path, skip_bad=True)] == ["a", "e"]


def test_missing_file_is_a_corpus_error(tmp_path):
    with pytest.raises(CorpusError):
        load_corpus(tmp_path / "nope.jsonl")
