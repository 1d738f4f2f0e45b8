"""`eval report`'s paired comparison: counts per question, the sign test, and which runs are paired."""

import json

import pytest

from pyrag_dsl.cli import main
from pyrag_dsl.eval.report import load_runs, paired, sign_test

pytestmark = pytest.mark.network_free


def run_dir(tmp_path, name, method, ems, sha="a" * 64, model="m"):
    d = tmp_path / name
    d.mkdir()
    recs = [
        {"id": f"q{i}", "metrics": {"em": em, "f1": em / 2, "recall": None}}
        for i, em in enumerate(ems)
        if em is not None
    ]
    (d / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    overall = {"n": len(recs), "em": sum(r["metrics"]["em"] for r in recs) / len(recs)}
    (d / "summary.json").write_text(
        json.dumps(
            {
                "overall": overall,
                "complete": True,
                "config": {"method": method, "data": {"source": "qa.jsonl", "sha256": sha}, "llm": {"model": model}},
            }
        )
    )
    return d


@pytest.mark.parametrize(
    "wins,losses,p", [(6, 2, 37 / 128), (0, 0, 1.0), (10, 0, 2 / 1024), (3, 3, 1.0), (1, 0, 1.0), (0, 12, 2 / 4096)]
)
def test_sign_test_hand_checked(wins, losses, p):
    assert sign_test(wins, losses) == pytest.approx(p)


def test_pairs_count_only_the_questions_both_recorded(tmp_path):
    a = run_dir(tmp_path, "a", "pyrag", [1, 1, 1, 0, 0, 1, None])
    b = run_dir(tmp_path, "b", "vanilla", [0, 1, 0, 0, 1, 0, 1])
    other = run_dir(tmp_path, "c", "direct", [1, 1, 1, 1, 1, 1, 1], sha="b" * 64)  # another data file
    pairs = paired(load_runs([str(a), str(b), str(other)]))
    assert len(pairs) == 1
    p = pairs[0]
    assert (p.a, p.b, p.n, p.a_better, p.b_better) == ("pyrag", "vanilla", 6, 3, 1)
    assert p.p_value == pytest.approx(sign_test(3, 1)) == pytest.approx(0.625)
    f1 = paired(load_runs([str(a), str(b)]), metric="f1")[0]
    assert (f1.a_better, f1.b_better) == (3, 1)
    assert paired(load_runs([str(a), str(b)]), metric="recall") == []  # no recall recorded: nothing to pair


def test_runs_of_two_models_are_named_by_model(tmp_path):
    a = run_dir(tmp_path, "a", "pyrag", [1, 0], model="small")
    b = run_dir(tmp_path, "b", "pyrag", [1, 1], model="large")
    p = paired(load_runs([str(a), str(b)]))[0]
    assert {p.a, p.b} == {"pyrag [small]", "pyrag [large]"} and p.n == 2


def test_report_prints_the_paired_table(tmp_path, capsys):
    a = run_dir(tmp_path, "a", "pyrag", [1] * 12)
    b = run_dir(tmp_path, "b", "vanilla", [0] * 12)
    assert main(["eval", "report", str(a), str(b), "--markdown", "--no-plot"]) == 0
    out = capsys.readouterr().out
    assert "| qa | pyrag | vanilla | 12 | 12 | 0 | <0.001 |" in out
    assert main(["eval", "report", str(a), str(b), "--no-plot"]) == 0
    assert "sign test" in capsys.readouterr().out


@pytest.mark.parametrize(
    "summary, key",
    [
        ([1, 2], "the file must be an object, got [1, 2]"),
        ({"overall": [], "config": {}}, "overall must be an object, got []"),
        ({"overall": {"em": "high"}, "config": {}}, "overall.em must be a number, got 'high'"),
        ({"overall": {"em": {"x": 1}}, "config": {}}, "overall.em must be a number, got {'x': 1}"),
        ({"overall": {"n": 3}, "config": []}, "config must be an object, got []"),
        ({"overall": {"n": 3}, "config": {"data": "qa.jsonl"}}, "config.data must be an object, got 'qa.jsonl'"),
        ({"overall": {"n": 3}, "config": {"llm": ["m"]}}, "config.llm must be an object, got ['m']"),
        ('{"overall": {"em": NaN}}', "NaN is not a number JSON allows"),
        ('{"overall": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested deeper than 100 levels"),
    ],
)
def test_a_summary_of_the_wrong_shape_is_exit_2_naming_file_and_key(tmp_path, capsys, summary, key):
    d = run_dir(tmp_path, "a", "pyrag", [1, 0])
    (d / "summary.json").write_text(summary if isinstance(summary, str) else json.dumps(summary))
    assert main(["eval", "report", str(d), "--no-plot"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [f"error: {d / 'summary.json'}: not an eval summary ({key})"], err


def test_records_with_non_numeric_metrics_are_not_paired(tmp_path):
    a = run_dir(tmp_path, "a", "pyrag", [1, 1, 0])
    b = run_dir(tmp_path, "b", "vanilla", [0, 1, 0])
    with open(b / "records.jsonl", "a") as f:
        f.write(json.dumps({"id": "q9", "metrics": {"em": "yes"}}) + "\n" + json.dumps({"id": ["q8"]}) + "\n")
    with open(a / "records.jsonl", "a") as f:
        f.write(json.dumps({"id": "q9", "metrics": {"em": 1}}) + "\n")
    p = paired(load_runs([str(a), str(b)]))[0]
    assert (p.n, p.a_better, p.b_better) == (3, 1, 0)
