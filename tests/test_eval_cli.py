"""`pyrag-dsl eval` as a real process: resume after SIGKILL (nothing missing, nothing twice), a changed
configuration refused on resume, `eval report` draws a PNG, and a small run on the embedded defaults."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SMALL_CORPUS
from eval_helpers import QA, handler, write_qa
from scripted_llm import ScriptedLLM, question_in

from pyrag_dsl.eval.summary import FIELDS

pytestmark = pytest.mark.slow(seconds=120)

ROOT = Path(__file__).parent.parent


def clean_env(tmp_path):
    env = {**os.environ, "PYRAG_DSL_CACHE": str(tmp_path / "cache")}
    for key in ("LLM_MODEL", "LLM_BASE_URL", "PLAN_LLM_MODEL", "PLAN_LLM_BASE_URL", "OUTPUT_DIR"):
        env.pop(key, None)
    return env


def cli(*args):
    return [sys.executable, "-m", "pyrag_dsl.cli", *map(str, args)]


@pytest.fixture(scope="module")
def tantivy_index(tmp_path_factory):
    from pyrag_dsl.retrievers.tantivy_bm25 import build_tantivy_index

    out = tmp_path_factory.mktemp("tantivy-cli") / "idx"
    build_tantivy_index(SMALL_CORPUS, out)
    return out


def many_questions(n):
    return [{**QA[i % len(QA)], "id": f"x{i:03d}"} for i in range(n)]


def test_resume_after_sigkill_no_item_missing_or_twice(tmp_path, tantivy_index):
    qa = write_qa(tmp_path / "qa.jsonl", many_questions(24))
    out = tmp_path / "run"
    with ScriptedLLM(handler, delay=0.15) as llm:
        args = cli(
            "eval",
            "--data",
            qa,
            "--method",
            "pyrag",
            "--out",
            out,
            "--llm-url",
            llm.url,
            "--llm-model",
            "scripted",
            "--index",
            tantivy_index,
            "--concurrency",
            "2",
        )
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env(tmp_path))
        records = out / "records.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if records.exists() and records.read_text().count("\n") >= 5:
                break
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        before = [json.loads(x)["id"] for x in records.read_text().splitlines() if x.strip().endswith("}")]
        assert 5 <= len(before) < 24
        with open(records, "a") as f:  # a torn last line, as a crash in the middle of a write leaves
            f.write('{"id": "x999", "question": "torn')
        again = subprocess.run(
            [*args, "--resume"], capture_output=True, text=True, timeout=300, env=clean_env(tmp_path)
        )
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        asked = [question_in(r["messages"][-1]["content"]) for r in llm.requests if r["role"] == "plan"]
    ids = [json.loads(x)["id"] for x in records.read_text().splitlines()]
    assert sorted(ids) == [f"x{i:03d}" for i in range(24)]  # nothing missing, nothing twice, torn line gone
    assert ids[: len(before)] == before  # recorded questions were kept, not redone
    assert len(asked) <= 24 + 2  # at most the questions in flight at the kill were asked twice
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"]["n"] == 24 and summary["complete"] is True
    assert summary["config"]["resumed"] and summary["config"]["data"]["sha256"]
    assert "EM" in again.stdout and "records:" in again.stdout


def test_sigterm_keeps_records_writes_a_partial_summary_and_resume_finishes(tmp_path, tantivy_index):
    qa = write_qa(tmp_path / "qa.jsonl", many_questions(12))
    out = tmp_path / "run"
    with ScriptedLLM(handler, delay=0.3) as llm:
        args = cli(
            "eval", "--data", qa, "--method", "vanilla", "--out", out, "--llm-url", llm.url, "--index", tantivy_index
        )
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(tmp_path))
        records = out / "records.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (records.exists() and records.read_text().count("\n") >= 2):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=60)
        assert proc.returncode == 143
        n = records.read_text().count("\n")
        summary = json.loads((out / "summary.json").read_text())
        assert summary["complete"] is False and summary["overall"]["n"] == n < 12
        assert "Partial run" in (out / "summary.md").read_text() and "--resume" in stdout.decode()
        again = subprocess.run(
            [*args, "--resume"], capture_output=True, text=True, timeout=120, env=clean_env(tmp_path)
        )
        assert again.returncode == 0, again.stderr[-2000:]
    ids = [json.loads(x)["id"] for x in records.read_text().splitlines()]
    assert sorted(ids) == [f"x{i:03d}" for i in range(12)]
    assert json.loads((out / "summary.json").read_text())["complete"] is True


def test_resume_refuses_another_configuration_and_existing_out(tmp_path, tantivy_index):
    qa = write_qa(tmp_path / "qa.jsonl", QA[:2])
    out = tmp_path / "run"
    env = clean_env(tmp_path)
    with ScriptedLLM(handler) as llm:
        base = ["eval", "--data", qa, "--out", out, "--llm-url", llm.url, "--index", tantivy_index]
        first = subprocess.run(cli(*base, "--method", "vanilla"), capture_output=True, text=True, env=env, timeout=120)
        assert first.returncode == 0, first.stderr[-2000:]
        again = subprocess.run(cli(*base, "--method", "vanilla"), capture_output=True, text=True, env=env, timeout=60)
        assert again.returncode == 2 and "--resume" in again.stderr
        other = subprocess.run(
            cli(*base, "--method", "vanilla", "--topk", "3", "--resume"),
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert other.returncode == 2 and "differs" in other.stderr and "settings" in other.stderr
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"id": "a", "question": "Q", "golden_answers": ["x"]}\n{"id": "b", "question": 5}\n')
        r = subprocess.run(
            cli("eval", "--data", bad, "--llm-url", llm.url), capture_output=True, text=True, env=env, timeout=60
        )
        assert r.returncode == 2 and f"{bad}:2" in r.stderr and "question" in r.stderr


def test_eval_report_table_and_png(tmp_path, tantivy_index):
    qa = write_qa(tmp_path / "hotpot-mini.jsonl", QA)
    env = clean_env(tmp_path)
    dirs = []
    with ScriptedLLM(handler) as llm:
        for method in ("pyrag", "vanilla", "direct"):
            out = tmp_path / f"run-{method}"
            r = subprocess.run(
                cli(
                    "eval",
                    "--data",
                    qa,
                    "--method",
                    method,
                    "--out",
                    out,
                    "--llm-url",
                    llm.url,
                    "--index",
                    tantivy_index,
                ),
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
            assert r.returncode == 0, r.stderr[-2000:]
            dirs.append(out)
    png = tmp_path / "report.png"
    r = subprocess.run(cli("eval", "report", *dirs, "--png", png), capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    for method in ("pyrag", "vanilla", "direct"):
        assert method in r.stdout
    assert "hotpot-mini" in r.stdout
    md = subprocess.run(
        cli("eval", "report", *dirs, "--markdown", "--no-plot"), capture_output=True, text=True, env=env, timeout=120
    )
    runs_md, _, paired_md = md.stdout.partition("\n\n")
    rows = [line for line in runs_md.splitlines() if line.startswith("| hotpot-mini |")]
    assert len(rows) == 3 and rows[0].startswith("| hotpot-mini | direct |")
    pairs = [line.split(" | ")[1:3] for line in paired_md.splitlines() if line.startswith("| hotpot-mini |")]
    assert pairs == [["direct", "pyrag"], ["direct", "vanilla"], ["pyrag", "vanilla"]]  # same data file: paired
    pyrag_row = next(x for x in rows if "| pyrag |" in x).split("|")
    assert pyrag_row[3].strip() == "6" and float(pyrag_row[4]) > 0  # n and EM
    missing = subprocess.run(cli("eval", "report", tmp_path / "nope"), capture_output=True, text=True, env=env)
    assert missing.returncode == 2 and "summary.json" in missing.stderr


@pytest.mark.model
def test_embedded_defaults_small_eval_summary_has_every_field(tmp_path):
    out = tmp_path / "e2e"
    r = subprocess.run(
        cli(
            "eval",
            "--data",
            "hotpotqa-dev300",
            "--limit",
            "2",
            "--method",
            "pyrag",
            "--out",
            out,
            "--model",
            "smollm2",
            "--topk",
            "2",
            "--boosted-topk",
            "4",
        ),  # the fastest embedded
        # model and short prompts: this checks the machinery, not the scores
        capture_output=True,
        text=True,
        timeout=900,
        env=clean_env(tmp_path),
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    overall = summary["overall"]
    assert set(FIELDS) <= set(overall) and overall["n"] == 2
    for key in (
        "em",
        "f1",
        "acc",
        "recall",
        "llm_calls",
        "retrievals",
        "repair_rate",
        "adaptive_retry_rate",
        "error_rate",
        "seconds_p50",
        "seconds_p95",
    ):
        assert overall[key] is not None, key
    assert overall["prompt_tokens"] is not None  # llama.cpp's server reports usage
    cfg = summary["config"]
    assert cfg["method"] == "pyrag" and cfg["llm"]["embedded"] is True and cfg["retriever"]["embedded"] is True
    assert cfg["llm"]["model"] == "smollm2" and cfg["embedded_server"]["gguf"].endswith(".gguf")
    assert cfg["settings_resolved"]["plan_grammar"] == "skeleton"  # as `pyrag-dsl run` decides for this server
    assert len(cfg["data"]["sha256"]) == 64 and cfg["package_version"]
    records = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert [x["id"] for x in records] == ["5a8c7595554299585d9e36b6", "5a85ea095542994775f606a8"]
    assert all(x["trace"] and (out / x["trace"]).is_file() for x in records if x["error"] is None)
    assert (out / "summary.md").read_text().startswith("# Eval: pyrag on hotpotqa-dev300")


def test_retry_errors_asks_failed_questions_again_and_replaces_their_records(tmp_path, tantivy_index):
    from eval_helpers import FAIL_MARK

    rows = [*QA[:2], {"id": "f1", "question": f"{FAIL_MARK} Who wrote it?", "golden_answers": ["x"]}]
    qa = write_qa(tmp_path / "qa.jsonl", rows)
    out = tmp_path / "run"

    def run(llm, *extra):
        return subprocess.run(
            cli(
                "eval",
                "--data",
                qa,
                "--method",
                "pyrag",
                "--out",
                out,
                "--llm-url",
                llm.url,
                "--llm-model",
                "scripted",
                "--index",
                tantivy_index,
                *extra,
            ),
            capture_output=True,
            text=True,
            timeout=300,
            env=clean_env(tmp_path),
        )

    def records():
        return [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]

    healed = {"on": False}

    def scripted(role, prompt, body):  # FAILME questions fail until the server is "healed"
        return handler(role, prompt.replace(FAIL_MARK, "Fixed") if healed["on"] else prompt, body)

    with ScriptedLLM(scripted) as llm:
        assert run(llm).returncode == 0
        assert [r["id"] for r in records() if r["error"]] == ["f1"]
        first = {r["id"]: r for r in records()}
        healed["on"] = True
        llm.requests.clear()
        bad = run(llm, "--retry-errors")
        assert bad.returncode == 2 and "--resume" in bad.stderr
        assert run(llm, "--resume").returncode == 0 and not llm.requests  # errors are kept by a plain resume
        again = run(llm, "--resume", "--retry-errors")
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
        assert "1 question with an error will be asked again" in again.stdout
        assert sum(r["role"] == "decompose" for r in llm.requests) == 1  # only the failed question
    after = records()
    assert sorted(r["id"] for r in after) == sorted(r["id"] for r in rows)  # nothing twice
    assert not any(r["error"] for r in after)
    assert {r["id"]: r for r in after if r["id"] != "f1"} == {k: v for k, v in first.items() if k != "f1"}
    assert json.loads((out / "summary.json").read_text())["overall"]["error_rate"] == 0


def test_resume_with_everything_recorded_starts_no_server(tmp_path, tantivy_index, monkeypatch, capsys):
    """`eval --resume` (e.g. at a smaller --limit, to summarise) when no question is left: the summary is rewritten
    from the records, and no session (embedded llama.cpp server, index, LLM client) is opened."""
    import pyrag_dsl.cli.eval_cmds as eval_cmds
    from pyrag_dsl.cli import main

    qa = write_qa(tmp_path / "qa.jsonl", QA[:4])
    out = tmp_path / "run"
    for key in ("LLM_MODEL", "LLM_BASE_URL", "PLAN_LLM_MODEL", "PLAN_LLM_BASE_URL", "OUTPUT_DIR"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PYRAG_DSL_CACHE", str(tmp_path / "cache"))
    with ScriptedLLM(handler) as llm:
        base = [
            "eval",
            "--data",
            str(qa),
            "--method",
            "vanilla",
            "--out",
            str(out),
            "--llm-url",
            llm.url,
            "--index",
            str(tantivy_index),
            "--limit",
            "3",
        ]
        assert main(base) == 0
        first = json.loads((out / "summary.json").read_text())
        asked = len(llm.requests)

        def no_session(*a, **kw):
            raise AssertionError("a session was opened")

        monkeypatch.setattr(eval_cmds, "open_session", no_session)
        capsys.readouterr()
        assert main([*base, "--resume"]) == 0
        assert "all 3 questions already recorded" in capsys.readouterr().out
        again = json.loads((out / "summary.json").read_text())
        assert again["overall"] == first["overall"] and again["complete"] is True
        assert again["config"]["settings_resolved"] == first["config"]["settings_resolved"]
        assert main([*base, "--resume", "--limit", "2"]) == 0
        assert json.loads((out / "summary.json").read_text())["overall"]["n"] == 2
        capsys.readouterr()
        assert main([*base, "--resume", "--limit", "4"]) != 0  # a question left: a session is needed
        assert "a session was opened" in capsys.readouterr().err
        assert len(llm.requests) == asked


@pytest.mark.parametrize(
    "args, message",
    [
        (("--sample", "0"), "--sample must be >= 1"),
        (("--limit", "0"), "--limit must be >= 1"),
        (("--shards", "3"), "needs --ray"),
        (("--split", "test"), "this is one file"),
    ],
)
def test_flags_that_would_do_nothing_are_usage_errors(tmp_path, args, message):
    data = tmp_path / "qa.jsonl"
    data.write_text('{"id": "1", "question": "q?", "golden_answers": ["a"]}\n')
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pyrag_dsl.cli",
            "eval",
            "--data",
            str(data),
            "--method",
            "direct",
            "--out",
            str(tmp_path / "out"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_questions_with_line_breakers_finish_resume_and_report(tmp_path, tantivy_index, monkeypatch):
    """A question holding U+2028/U+0085 (escaped in an ASCII data file) used to end the run with exit 3 and no
    summary.json, and --resume and eval report then refused the directory (records read with splitlines)."""
    from pyrag_dsl.cli import main

    rows = [
        {"id": "b1", "question": "Which city\u2028has the Eiffel\x85Tower?", "golden_answers": ["Paris"]},
        {"id": "b2", "question": "Capital\u2029of France?", "golden_answers": ["Paris\x0b"]},
    ]
    qa = write_qa(tmp_path / "qa.jsonl", rows)
    assert qa.read_text().isascii()
    out = tmp_path / "run"
    for key in ("LLM_MODEL", "LLM_BASE_URL", "PLAN_LLM_MODEL", "PLAN_LLM_BASE_URL", "OUTPUT_DIR"):
        monkeypatch.delenv(key, raising=False)
    with ScriptedLLM(handler) as llm:
        base = [
            "eval",
            "--data",
            str(qa),
            "--method",
            "direct",
            "--out",
            str(out),
            "--llm-url",
            llm.url,
            "--index",
            str(tantivy_index),
        ]
        assert main(base) == 0
        assert main([*base, "--resume"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["overall"]["n"] == 2 and summary["overall"]["em"] == 1.0
    assert len((out / "records.jsonl").read_text(encoding="utf-8").splitlines()) == 2
    assert main(["eval", "report", str(out), "--no-plot", "--markdown"]) == 0
