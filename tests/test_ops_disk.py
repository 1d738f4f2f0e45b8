"""A write that fails for real (a full tmpfs where the machine allows mounting one; otherwise a directory
made read-only): the answer is still printed, the error names the file in one line, no temp file stays,
earlier results are kept, and the exit code is the runtime-failure code 3 (not the usage code 2)."""

import errno
import json
import os
import subprocess

import pytest
from corpus import JED_HOYER
from ops_helpers import cli, tantivy_index  # noqa: F401
from scripted_llm import ScriptedLLM
from test_pipeline import QUESTION, default_handler


class FailingDisk:
    """A directory whose writes can be made to fail on demand: `break_now()`."""

    def __init__(self, root):
        self.root = root
        self.kind = "readonly"
        if os.geteuid() == 0:
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(root)], capture_output=True)
            if r.returncode == 0:
                self.kind = "tmpfs"

    def break_now(self) -> None:
        if self.kind == "tmpfs":  # fill it: the next write gets ENOSPC
            with open(self.root / "filler", "wb", buffering=0) as f:
                try:
                    while True:
                        f.write(b"\0" * 4096)
                except OSError as e:
                    assert e.errno == errno.ENOSPC
        else:  # not root: permissions hold, so a read-only tree refuses new files
            for d, dirs, _ in os.walk(self.root):
                os.chmod(d, 0o555)

    def close(self) -> None:
        if self.kind == "tmpfs":
            subprocess.run(["umount", "-l", str(self.root)], capture_output=True)
        else:
            for d, dirs, _ in os.walk(self.root):
                os.chmod(d, 0o755)


@pytest.fixture
def disk(tmp_path):
    root = tmp_path / "disk"
    root.mkdir()
    d = FailingDisk(root)
    yield d
    d.close()


def _temp_files(root):
    return [p for p in root.rglob("*") if ".tmp" in p.name]


def test_disk_full_before_question_2(disk, tantivy_index, tmp_path):
    base = default_handler()
    seen = {"n": 0}

    def handler(role, prompt, body):
        if role == "decompose":
            seen["n"] += 1
            if seen["n"] == 2:
                disk.break_now()  # question 1 is written; question 2 will not fit
        return base(role, prompt, body)

    questions = tmp_path / "q.txt"
    questions.write_text(f"{QUESTION}\n{QUESTION}\n")
    with ScriptedLLM(handler) as llm:
        r = cli(
            "run",
            str(questions),
            "--llm-url",
            llm.url,
            "--index",
            str(tantivy_index),
            "--output-dir",
            str(disk.root / "out"),
        )
    assert r.returncode == 3, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "question 2: cannot write " in errors[0], r.stderr
    (run_dir,) = [p for p in (disk.root / "out").iterdir()]
    assert str(run_dir / "2") in errors[0]
    assert ("No space left on device" if disk.kind == "tmpfs" else "Permission denied") in errors[0]
    assert "Traceback" not in r.stderr
    assert r.stdout.count("→ John William Henry II") == 2  # both answers printed, the unsaved one too
    first = json.loads((run_dir / "1" / "result.json").read_text())
    assert first["final_answer"] == "John William Henry II"  # the finished question is intact
    assert not (run_dir / "2" / "result.json").exists()
    assert _temp_files(disk.root) == []


def test_disk_full_json_lines_still_carry_the_answer(disk, tantivy_index):
    (disk.root / "out").mkdir()
    disk.break_now()
    with ScriptedLLM(default_handler()) as llm:
        r = cli(
            "run",
            "-",
            "--json",
            "--llm-url",
            llm.url,
            "--index",
            str(tantivy_index),
            "--output-dir",
            str(disk.root / "out"),
            stdin=QUESTION + "\n",
        )
    if disk.kind == "readonly":  # the run directory itself cannot be created: nothing ran, one line
        assert r.returncode == 3 and "Traceback" not in r.stderr and str(disk.root / "out") in r.stderr
        return
    assert r.returncode == 3, r.stderr
    (row,) = [json.loads(line) for line in r.stdout.splitlines()]
    assert row["final_answer"] == "John William Henry II" and row["output"] is None
    assert "question 1: cannot write " in r.stderr and "No space left on device" in r.stderr
    assert _temp_files(disk.root) == []


def test_exec_trace_on_a_full_disk(disk, tantivy_index, tmp_path):
    program = tmp_path / "p.py"
    program.write_text(JED_HOYER)
    disk.break_now()
    trace = disk.root / "t.jsonl"
    with ScriptedLLM(default_handler()) as llm:
        r = cli("exec", str(program), "--trace", str(trace), "--llm-url", llm.url, "--index", str(tantivy_index))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "final_answer" in r.stdout and "John William Henry II" in r.stdout  # the answer, printed anyway
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert f"cannot write {trace}" in line
    assert not trace.exists() and _temp_files(disk.root) == []
