import json
import subprocess
import sys
from pathlib import Path

import lark
import pytest
from corpus import JED_HOYER

EXAMPLES = Path(__file__).parent.parent / "examples"


def cli(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "pyrag_dsl.cli", *args], capture_output=True, text=True, input=stdin, timeout=60
    )


def test_check_valid_program(tmp_path):
    path = tmp_path / "p.py"
    path.write_text(JED_HOYER)
    out = cli("check", str(path))
    assert out.returncode == 0, out.stderr
    assert "OK" in out.stdout and "5 statements, 5 tool calls" in out.stdout


def test_check_invalid_program_prints_every_error_with_caret():
    out = cli("check", str(EXAMPLES / "invalid.py"))
    assert out.returncode == 1
    text = out.stdout
    assert "invalid.py:2:53: DisallowedConstruct: attribute access (x.y) is not allowed" in text
    assert "invalid.py:3:27: UndefinedName" in text and "hint: Did you mean 'director'?" in text
    assert "invalid.py:4:26: TypeMismatch" in text
    caret_lines = [line for line in text.splitlines() if line.strip().startswith("|") and "^" in line]
    assert len(caret_lines) == 3
    assert "3 errors" in text


def test_check_json():
    out = cli("check", "--json", str(EXAMPLES / "invalid.py"))
    assert out.returncode == 1
    errors = json.loads(out.stdout)
    assert [e["type"] for e in errors] == ["DisallowedConstruct", "UndefinedName", "TypeMismatch"]
    for e in errors:
        assert {"type", "message", "line", "col", "end_line", "end_col"} <= e.keys()
    assert (errors[1]["line"], errors[1]["col"], errors[1]["end_col"]) == (3, 27, 34)


def test_check_json_valid_is_empty_list():
    out = cli("check", "--json", "-", stdin=JED_HOYER)
    assert out.returncode == 0 and json.loads(out.stdout) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (("check", "/no/such/file.py"), "no such file"),
        (("check",), "required"),
        (("check", "."), "directory"),
    ],
)
def test_usage_errors_exit_2(args, message):
    out = cli(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_non_utf8_file_is_a_usage_error(tmp_path):
    path = tmp_path / "bad.py"
    path.write_bytes(b"final_answer = '\xff'\n")
    out = cli("check", str(path))
    assert out.returncode == 2 and "not UTF-8" in out.stderr


def test_grammar_command_prints_parseable_lark():
    out = cli("grammar", "--format", "lark")
    assert out.returncode == 0
    lark.Lark(out.stdout, parser="earley").parse(JED_HOYER)


def test_grammar_gbnf_and_enable():
    out = cli("grammar", "--format", "gbnf", "--enable", "text_concat")
    assert out.returncode == 0 and out.stdout.splitlines()[1] == "root ::= program"
    assert '"+"' in out.stdout
    assert cli("grammar", "--enable", "nope").returncode == 2


def test_tools_command():
    out = cli("tools")
    assert "retrieve(query: text, topk: int = 5) -> docs" in out.stdout


def test_no_command_prints_help():
    out = cli()
    assert out.returncode == 2 and "check" in out.stdout
