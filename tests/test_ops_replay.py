"""Replay as the debugging tool docs/trace.md promises: `exec --trace` traces replay, a failing live
replay exits non-zero, what-if flags are honoured with --live and refused without, one step numbering,
and the recorded limits and language are the ones replay uses."""

import json
import re

import pytest
from corpus import JED_HOYER
from ops_helpers import cli, tantivy_index  # noqa: F401
from scripted_llm import ScriptedLLM
from test_pipeline import QUESTION, default_handler, fenced

pytestmark = pytest.mark.slow(seconds=32)


@pytest.fixture(scope="module")
def recorded(tantivy_index, tmp_path_factory):
    """A trace written by `pyrag-dsl run` with the scripted LLM."""
    out = tmp_path_factory.mktemp("run")
    with ScriptedLLM(default_handler()) as llm:
        r = cli(
            "run",
            "-",
            "--llm-url",
            llm.url,
            "--index",
            str(tantivy_index),
            "--output-dir",
            str(out),
            stdin=QUESTION + "\n",
        )
    assert r.returncode == 0, r.stderr
    (run_dir,) = list(out.iterdir())
    return run_dir / "1" / "trace.jsonl"


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_exec_trace_is_replayable(tantivy_index, tmp_path):
    program = tmp_path / "p.py"
    program.write_text(JED_HOYER)
    trace = tmp_path / "t.jsonl"
    with ScriptedLLM(default_handler()) as llm:
        r = cli("exec", str(program), "--trace", str(trace), "--llm-url", llm.url, "--index", str(tantivy_index))
    assert r.returncode == 0, r.stderr
    header = _rows(trace)[0]
    assert header["settings"]["limits"]["max_tool_calls"] == 100 and header["settings"]["language"]["nodes"] == []
    replay = cli("replay", str(trace))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "replay OK" in replay.stdout and "'John William Henry II'" in replay.stdout


def test_live_replay_with_a_failing_llm_exits_non_zero(recorded, tantivy_index):
    def broken(role, prompt, body):
        raise RuntimeError("the model is down")

    with ScriptedLLM(broken) as llm:
        r = cli("replay", str(recorded), "--live", "--llm-url", llm.url, "--index", str(tantivy_index))
    assert r.returncode == 3, r.stdout + r.stderr
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert line.startswith("error: the live replay failed: ToolError:") and "LLMError" in line
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "flags", [("--topk", "10"), ("--policy", "reference"), ("--parallel",), ("--llm-url", "http://127.0.0.1:9/v1")]
)
def test_what_if_flags_need_live(recorded, flags):
    r = cli("replay", str(recorded), *flags)
    assert r.returncode == 2
    assert r.stderr.strip().startswith(f"error: {flags[0]} need --live")


def test_max_repairs_is_refused(recorded):
    r = cli("replay", str(recorded), "--max-repairs", "2")
    assert r.returncode == 2 and "--max-repairs does not apply to replay" in r.stderr


def test_what_if_replay_honours_topk_policy_parallel(recorded, tantivy_index):
    with ScriptedLLM(default_handler()) as llm:
        r = cli(
            "replay",
            str(recorded),
            "--live",
            "--llm-url",
            llm.url,
            "--index",
            str(tantivy_index),
            "--topk",
            "10",
            "--policy",
            "reference",
            "--parallel",
        )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Differences" in r.stdout
    # the retrievals went out with top-k 10: the recorded ones had 5
    assert re.search(r"│ *\d+ *│ inputs *│ .*'topk': 5.*│ .*'topk': 10", r.stdout), r.stdout


def test_one_step_numbering(recorded, tmp_path):
    lines = recorded.read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    i, answer = next((i, r) for i, r in enumerate(rows) if r.get("kind") == "answer" and r["target"] == "jed_birth")
    step = answer["step"]
    lines[i] = json.dumps({**answer, "target": "jed_bday"})  # a recorded step that the replay will not match
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("\n".join(lines) + "\n")
    r = cli("replay", str(tampered))
    assert r.returncode == 1, r.stdout + r.stderr
    diff = r.stdout[r.stdout.index("Differences") :]
    assert re.search(rf"│ *{step} *│ target *│ jed_bday *│ jed_birth", diff), diff  # the recorded step number
    steps = r.stdout[r.stdout.index("Recorded steps") : r.stdout.index("Differences")]
    assert re.search(rf"│ *{step} *│ *\d+ *│ answer\('When was Jed Hoyer born\?'", steps), steps  # the step table
    one = cli("replay", str(tampered), "--step", str(step))
    assert one.returncode == 0 and '"target": "jed_bday"' in one.stdout and f'"step": {step}' in one.stdout

    synth = next(r for r in rows[1:] if r.get("kind") == "answer" and r["inputs"]["query"].startswith("Given:"))
    broken = tmp_path / "broken.jsonl"
    broken.write_text(recorded.read_text().replace('"output":"December 7, 1973"', '"output":"1999"'))
    r = cli("replay", str(broken))  # the synthesis query changes, so its recorded output is missing
    assert r.returncode == 1
    assert re.search(rf"│ *{synth['step']} *│ kind *│ answer *│ error", r.stdout), r.stdout


def test_replay_uses_the_recorded_limits(recorded, tmp_path):
    rows = recorded.read_text().splitlines()
    header = json.loads(rows[0])
    header["settings"]["limits"]["max_tool_calls"] = 2
    strict = tmp_path / "strict.jsonl"
    strict.write_text("\n".join([json.dumps(header)] + rows[1:]) + "\n")
    r = cli("replay", str(strict))
    assert r.returncode == 2 and "LimitExceeded" in r.stderr and "Traceback" not in r.stderr
    header["settings"]["language"]["nodes"] = ["warp_drive"]
    strict.write_text("\n".join([json.dumps(header)] + rows[1:]) + "\n")
    r = cli("replay", str(strict))
    assert r.returncode == 2 and "node kind 'warp_drive'" in r.stderr


def test_replay_uses_the_recorded_language(tantivy_index, tmp_path):
    """A run whose language enables text_concat (`+`) replays: the header records the node kind."""
    from test_pipeline import make_pipeline

    from pyrag_dsl.grammar import DEFAULT_LANGUAGE
    from pyrag_dsl.grammar.extensions import TEXT_CONCAT
    from pyrag_dsl.pipeline.outputs import new_run_dir, write_result
    from pyrag_dsl.retrievers import open_index

    program = JED_HOYER.replace(
        'final_answer = answer(\n    f"Given: Jed Hoyer was born {jed_birth}, "',
        'facts = "Given: Jed Hoyer was born " + jed_birth\nfinal_answer = answer(\n    f"{facts}, "',
    )
    retriever = open_index(tantivy_index)
    try:
        with ScriptedLLM(default_handler([fenced(program)])) as llm:
            result = make_pipeline(llm.url, retriever, language=DEFAULT_LANGUAGE.with_node(TEXT_CONCAT)).run(QUESTION)
    finally:
        retriever.close()
    assert result.ok and "+" in result.generated_code, result.error
    out = write_result(new_run_dir(tmp_path), 1, result)
    assert _rows(out / "trace.jsonl")[0]["settings"]["language"]["nodes"] == ["text_concat"]
    r = cli("replay", str(out / "trace.jsonl"))
    assert r.returncode == 0 and "replay OK" in r.stdout, r.stdout + r.stderr
