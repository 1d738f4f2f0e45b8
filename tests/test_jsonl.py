"""config.jsonl, the one JSON reader and JSON Lines reader/writer, and every file that goes through it: any
string round-trips (U+2028, U+2029, U+0085 and the other str.splitlines() breakers included), a BOM is
dropped, nesting is bounded before parsing, NaN and Infinity are refused."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrag_dsl.config import jsonl

pytestmark = pytest.mark.network_free

# Every character str.splitlines() breaks on; JSON allows the last three raw inside strings.
BREAKERS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
any_text = st.text(alphabet=st.characters(exclude_categories=()) | st.sampled_from(BREAKERS + "\ufeff"), max_size=60)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.dictionaries(
            any_text, any_text | st.integers() | st.floats(allow_nan=False, allow_infinity=False), max_size=4
        ),
        max_size=5,
    )
)
def test_any_strings_round_trip_through_the_writer_and_the_reader(rows):
    text = "".join(jsonl.dumps(r) + "\n" for r in rows)
    assert [jsonl.loads(line) for _, line in jsonl.lines(text)] == [r for r in rows]
    assert len(text.splitlines()) == len(rows)  # any line splitter reads the file back row by row


@settings(max_examples=200, deadline=None)
@given(any_text)
def test_a_raw_breaker_inside_a_string_does_not_split_a_row(s):
    raw = json.dumps({"q": s}, ensure_ascii=False)  # another writer: breakers left raw
    (only,) = list(jsonl.lines("\ufeff" + raw + "\n\n"))
    assert only == (1, raw) and jsonl.loads(only[1]) == {"q": s}


@pytest.mark.parametrize(
    "text, message",
    [
        ("[" * 100_000 + "]" * 100_000, "nested deeper than 100 levels"),
        ("[" * 3000 + "]", "nested deeper than 100 levels"),
        ('{"a": ' * 101 + "1" + "}" * 101, "nested deeper than 100 levels"),
        ("[NaN]", "NaN is not a number JSON allows"),
        ('{"topk": Infinity}', "Infinity is not a number JSON allows"),
        ("-Infinity", "-Infinity is not a number JSON allows"),
        ("[1e999]", "number 1e999 is out of range"),
        ("1" * 5000, "not JSON this program reads"),
        ('{"a": 1', "not JSON (Expecting"),
    ],
)
def test_refusals_are_one_short_line(text, message):
    with pytest.raises(jsonl.JsonError) as info:
        jsonl.loads(text)
    assert message in str(info.value) and "\n" not in str(info.value) and len(str(info.value)) < 200


def test_depth_ignores_brackets_inside_strings_and_allows_the_bound():
    assert jsonl.loads(json.dumps({"s": "[" * 500})) == {"s": "[" * 500}
    deep = "[" * 100 + "]" * 100
    assert jsonl.depth(deep) == 100 and jsonl.value_depth(jsonl.loads(deep)) == 100
    assert jsonl.depth('["\\"[[[", [1]]') == 2
    assert jsonl.loads("\ufeff[1]") == [1]


def test_the_writer_never_writes_what_the_reader_refuses():
    text = jsonl.dumps({"score": float("nan"), "big": float("inf"), "s": "\ud800\u2028", "n": [1.5]})
    assert jsonl.loads(text) == {"score": None, "big": None, "s": "\ud800\u2028", "n": [1.5]}
    text.encode("utf-8")  # a lone surrogate is written escaped
    assert "\u2028" not in text and "\\u2028" in text


# -- every reader and writer of the project ---------------------------------------------------------------


def _record(question):
    return {"id": "q1", "question": question, "gold": [question], "metrics": {"em": 1.0}, "error": None}


@settings(max_examples=50, deadline=None)
@given(any_text)
def test_eval_records_round_trip_any_question(tmp_path_factory, question):
    from pyrag_dsl.eval.records import RecordWriter, drop_error_records, read_records

    out = tmp_path_factory.mktemp("run")
    writer = RecordWriter(out / "records.jsonl")
    writer.write(_record(question))
    writer.write({**_record("x"), "id": "q2", "error": {"type": "LLMError"}})
    writer.close()
    assert drop_error_records(out) == 1
    assert read_records(out) == [_record(question)]


def test_eval_records_written_raw_by_another_writer_read_back(tmp_path):
    from pyrag_dsl.eval.records import read_records

    (tmp_path / "records.jsonl").write_text(
        json.dumps(_record("a\u2028b\x85c"), ensure_ascii=False) + "\n", encoding="utf-8"
    )
    assert read_records(tmp_path) == [_record("a\u2028b\x85c")]


def test_eval_data_with_raw_breakers_and_a_bom_loads(tmp_path):
    from pyrag_dsl.eval.data import load_questions

    rows = [
        {"id": "a", "question": "Who\u2028is\x85she\u2029?", "golden_answers": ["x\x0cy"]},
        {"id": "b", "question": "Q2", "golden_answers": ["z"]},
    ]
    path = tmp_path / "qa.jsonl"
    path.write_text("\ufeff" + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    qa = load_questions(str(path))
    assert [(r.id, r.question, r.golden_answers) for r in qa.rows] == [
        ("a", "Who\u2028is\x85she\u2029?", ("x\x0cy",)),
        ("b", "Q2", ("z",)),
    ]


def test_rl_sources_read_raw_breakers(tmp_path):
    from pyrag_dsl.rl.sources import read_qa, read_records

    qa = tmp_path / "qa.jsonl"
    qa.write_text(
        "\ufeff"
        + json.dumps({"id": "1", "question": "a\u2028b", "golden_answers": ["c\x85d"]}, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    (item,) = read_qa(qa)
    assert (item.question, item.golds, item.origin) == ("a\u2028b", ["c\x85d"], f"{qa}:1")
    trace = tmp_path / "trace.jsonl"
    trace.write_text(
        json.dumps({"schema": "pyrag-dsl-trace", "version": 1})
        + "\n"
        + json.dumps(
            {"kind": "answer", "target": "final_answer", "inputs": {"query": "Given: x\u2028y", "docs": None}},
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    records = tmp_path / "records.jsonl"
    records.write_text(
        json.dumps(
            {"id": "1", "question": "a\u2028b", "gold": ["c"], "method": "pyrag", "trace": "trace.jsonl"},
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    (rec,), skipped = read_records(records)
    assert (rec.question, rec.synthesis_query, skipped) == ("a\u2028b", "Given: x\u2028y", 0)


@pytest.mark.parametrize("bom", ["", "\ufeff"])
def test_run_reads_a_jsonl_questions_file_whole(tmp_path, bom):
    from pyrag_dsl.cli.pipeline_cmds import read_questions

    path = tmp_path / "q.jsonl"
    rows = [{"question": "Who\u2028wrote\x85it?"}, {"question": "Second\u2029one"}]
    path.write_text(bom + "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert read_questions(str(path)) == ["Who\u2028wrote\x85it?", "Second\u2029one"]
    plain = tmp_path / "q.txt"
    plain.write_text(bom + "First question?\r\nSecond question?\n", encoding="utf-8")
    assert read_questions(str(plain)) == ["First question?", "Second question?"]


def test_every_reader_of_json_lines_in_the_package_uses_config_jsonl():
    """One reader: outside config/jsonl.py, JSON is parsed directly only where the text is one document this
    list names (with why), and no module splits file text into lines with str.splitlines(), which breaks at
    U+2028/U+2029/U+0085 inside JSON strings. A new direct parser fails here until it is weighed."""
    import re
    from pathlib import Path

    import pyrag_dsl

    one_document = {
        "config/jsonl.py": "the reader itself",
        "agents/cpu.py": "the AMX probe's own output",
        "agents/small_model.py": "the package's own example file",
        "agents/decompose.py": "an LLM reply; RecursionError is a bad reply",
        "retrievers/bm25.py": "raw passages stored in our own index",
        "retrievers/index_meta.py": "our own index metadata",
        "retrievers/http_client.py": "an HTTP response body",
        "retrievers/server.py": "an HTTP request body, size-capped",
        "rl/merge.py": "a LoRA adapter's config",
    }
    root = Path(pyrag_dsl.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        src = path.read_text(encoding="utf-8")
        if rel not in one_document and re.search(r"\b(json|orjson)\.loads\(", src):
            offenders.append(f"{rel}: json.loads")
        for m in re.finditer(r"^.*\.read_text\([^)]*\)\.splitlines\(\).*$", src, re.M):
            offenders.append(f"{rel}: {m.group(0).strip()[:80]}")
    assert offenders == []
