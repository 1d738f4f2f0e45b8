"""QA data loading: the built-in HotpotQA set, row shapes, typed errors with line numbers, selection."""

import datetime
import json

import pytest

from pyrag_dsl.eval.data import DataError, load_questions, row_from_dict, select


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_builtin_hotpotqa_dev300():
    qa = load_questions("hotpotqa-dev300")
    assert len(qa.rows) == 300 and qa.total == 300
    first = qa.rows[0]
    assert first.id == "5a8c7595554299585d9e36b6"
    assert first.golden_answers == ("Chief of Protocol",)
    assert first.supporting_titles == ("Shirley Temple", "Kiss and Tell (1945 film)")
    assert len(qa.sha256) == 64 and qa.path.endswith("hotpotqa-dev300.qa.jsonl")
    assert qa.describe()["rows_selected"] == 300


def test_limit_and_seeded_sample_are_deterministic():
    a = load_questions("hotpotqa-dev300", sample=10, seed=3)
    b = load_questions("hotpotqa-dev300", sample=10, seed=3)
    c = load_questions("hotpotqa-dev300", sample=10, seed=4)
    assert [r.id for r in a.rows] == [r.id for r in b.rows] != [r.id for r in c.rows]
    full = [r.id for r in load_questions("hotpotqa-dev300").rows]
    assert [r.id for r in a.rows] == sorted((r.id for r in a.rows), key=full.index)  # file order kept
    assert [r.id for r in load_questions("hotpotqa-dev300", limit=5).rows] == full[:5]
    assert len(select(a.rows, limit=3)) == 3


def test_row_shapes_flashrag_hotpot_search_r1():
    r = row_from_dict(
        {
            "id": 7,
            "question": " Q? ",
            "golden_answers": ["a", 1],
            "metadata": {"type": "bridge", "supporting_facts": {"title": ["T1", "T2", "T1"], "sent_id": [0, 1, 2]}},
        },
        "f:1",
        0,
    )
    assert (r.id, r.question, r.golden_answers, r.type, r.supporting_titles) == (
        "7",
        "Q?",
        ("a", "1"),
        "bridge",
        ("T1", "T2"),
    )
    r = row_from_dict(
        {"_id": "x", "question": "Q", "answer": "yes", "type": "comparison", "supporting_facts": [["A", 0], ["B", 3]]},
        "f:1",
        0,
    )
    assert (r.id, r.golden_answers, r.type, r.supporting_titles) == ("x", ("yes",), "comparison", ("A", "B"))
    r = row_from_dict({"question": "Q", "golden_answers": {"target": ["t"]}}, "f:1", 4)
    assert (r.id, r.golden_answers) == ("row4", ("t",))


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"id": "a", "question": "Q"', "not JSON"),
        ('["not", "an", "object"]', "must be a JSON object"),
        ('{"id": "a", "golden_answers": ["x"]}', "missing or empty 'question'"),
        ('{"id": "a", "question": "Q"}', "missing 'golden_answers'"),
        ('{"id": "a", "question": "Q", "golden_answers": []}', "non-empty list of strings"),
        ('{"id": "a", "question": "Q", "golden_answers": [null]}', "non-empty list of strings"),
        ('{"id": true, "question": "Q", "golden_answers": ["x"]}', "'id' must be"),
    ],
)
def test_bad_rows_name_the_line(tmp_path, line, message):
    good = json.dumps({"id": "g", "question": "Q", "golden_answers": ["x"]})
    path = write(tmp_path / "d.jsonl", [good, "", line])
    with pytest.raises(DataError) as e:
        load_questions(str(path))
    assert e.value.where == f"{path}:3"
    assert message in str(e.value)


def test_file_errors(tmp_path):
    with pytest.raises(DataError, match="no such file.*built-in data set: hotpotqa-dev300"):
        load_questions(str(tmp_path / "missing.jsonl"))
    empty = write(tmp_path / "empty.jsonl", [""])
    with pytest.raises(DataError, match="no rows"):
        load_questions(str(empty))
    dup = write(tmp_path / "dup.jsonl", [json.dumps({"id": "a", "question": "Q", "golden_answers": ["x"]})] * 2)
    with pytest.raises(DataError, match="duplicate id 'a'"):
        load_questions(str(dup))
    (tmp_path / "latin1.jsonl").write_bytes(b'{"question": "caf\xe9"}\n')
    with pytest.raises(DataError, match="not UTF-8"):
        load_questions(str(tmp_path / "latin1.jsonl"))


def test_directory_with_splits_and_parquet(tmp_path):
    rows = [
        {"id": f"q{i}", "question": f"Question {i}?", "golden_answers": [f"a{i}"], "metadata": {"type": "bridge"}}
        for i in range(4)
    ]
    write(tmp_path / "dev.jsonl", [json.dumps(r) for r in rows[:2]])
    import datasets

    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "test.parquet"))
    assert [r.id for r in load_questions(str(tmp_path)).rows] == ["q0", "q1"]  # dev first
    qa = load_questions(str(tmp_path), split="test")
    assert [r.id for r in qa.rows] == ["q0", "q1", "q2", "q3"] and qa.rows[2].type == "bridge"
    assert qa.path.endswith("test.parquet")
    with pytest.raises(DataError, match="no train.jsonl"):
        load_questions(str(tmp_path), split="train")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="cannot read parquet"):
        load_questions(str(bad))


def test_trace_directory_names_are_safe_and_never_shared():
    from pyrag_dsl.eval.records import safe_name

    ids = [
        "a/b",
        "a_b",
        "a b",
        "../../etc/passwd",
        ".",
        "..",
        "",
        "x" * 150,
        "x" * 149 + "y",
        "caf\u00e9",
        "cafe_",
        "5a8c7595554299585d9e36b6",
    ]
    names = [safe_name(i) for i in ids]
    assert len(set(names)) == len(ids)  # no two ids share a directory
    assert all(n and len(n) <= 113 and "/" not in n and n.strip("._") for n in names)
    assert safe_name("a_b") == "a_b" and safe_name("5a8c7595554299585d9e36b6") == "5a8c7595554299585d9e36b6"
    assert safe_name("a/b") == safe_name("a/b")  # stable: a resumed run finds its directory again


# -- hostile data: exit 2 with one line naming the file and row ---------------------------------------------
@pytest.mark.parametrize(
    "line, message",
    [
        ('{"id": "a", "question": "Q", "golden_answers": [NaN]}', "NaN is not a number JSON allows"),
        ('{"id": "a", "question": "Q", "golden_answers": [Infinity]}', "Infinity is not a number JSON allows"),
        ('{"id": "a", "question": "Q", "golden_answers": [1e999]}', "number 1e999 is out of range"),
        (
            '{"id": "a", "question": "Q", "golden_answers": ["x"], "m": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "nested deeper than 100 levels",
        ),
        (
            json.dumps({"id": "a", "question": "Q" * 4001, "golden_answers": ["x"]}),
            "the question has 4,001 characters, over the 4,000-character limit",
        ),
    ],
)
def test_hostile_rows_name_the_line(tmp_path, line, message):
    good = json.dumps({"id": "g", "question": "Q" * 4000, "golden_answers": ["x"]})  # at the cap: accepted
    path = write(tmp_path / "d.jsonl", [good, line])
    with pytest.raises(DataError) as e:
        load_questions(str(path))
    assert e.value.where == f"{path}:2" and message in str(e.value) and len(str(e.value)) < 300


def test_a_json_list_file_is_bounded_too(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[{"id": "a", "question": "Q", "golden_answers": [NaN]}]')
    with pytest.raises(DataError, match="NaN is not a number JSON allows"):
        load_questions(str(path))


@pytest.mark.parametrize(
    "column, values, message",
    [
        ("id", [b"\xff\x00bytes", b"y"], "'id' must be a non-empty string or an integer, got b'\\xff\\x00bytes'"),
        (
            "golden_answers",
            [[b"Paris"], [b"x"]],
            "'golden_answers' must be a non-empty list of strings, got [b'Paris']",
        ),
        (
            "golden_answers",
            [[datetime.date(1973, 12, 7)], [datetime.date(2000, 1, 1)]],
            "must be a non-empty list of strings, got [datetime.date(1973, 12, 7)]",
        ),
        ("golden_answers", [[float("nan")], [1.0]], "must be a non-empty list of strings, got [nan]"),
    ],
)
def test_parquet_values_of_any_type_are_named_not_crashed_on(tmp_path, column, values, message):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = {"id": ["a", "b"], "question": ["Q1?", "Q2?"], "golden_answers": [["x"], ["y"]]}
    rows[column] = values
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table(rows), str(path))
    with pytest.raises(DataError) as e:
        load_questions(str(path))
    assert e.value.where == f"{path}: row 1" and message in str(e.value), str(e.value)


def test_eval_cli_refuses_bad_data_with_exit_2(tmp_path):
    from ops_helpers import cli

    path = write(tmp_path / "d.jsonl", ['{"id": "a", "question": "Q", "golden_answers": [NaN]}'])
    r = cli("eval", "--data", str(path), "--out", str(tmp_path / "out"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip().splitlines() == [f"error: {path}:1: NaN is not a number JSON allows"]
