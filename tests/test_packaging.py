"""The built wheel carries every run-time data file of the source tree (prompts, corpus, questions...), and
the package installed from it loads its prompts and data: what `pip install pyrag-dsl` gives users."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow(seconds=10)

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ("__pycache__", ".pyc", ".pyo", ".egg-info")


def source_data_files() -> set[str]:
    """Every non-Python file under pyrag_dsl/ in the source tree that is not generated."""
    out = set()
    for path in (ROOT / "pyrag_dsl").rglob("*"):
        rel = path.relative_to(ROOT).as_posix()
        if path.is_file() and path.suffix != ".py" and not any(g in rel for g in GENERATED):
            out.add(rel)
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a clean copy of the source tree (the checkout is left untouched)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "pyrag_dsl", src / "pyrag_dsl", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp / "dist"),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (built,) = (tmp / "dist").glob("pyrag_dsl-*.whl")
    return built


def test_wheel_contains_every_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    data = source_data_files()
    assert {"pyrag_dsl/agents/prompts/plan.txt", "pyrag_dsl/data/hotpotqa-dev300.corpus.jsonl"} <= data
    missing = sorted(data - names)
    assert not missing, f"files the wheel lacks (add a glob to [tool.setuptools.package-data]): {missing}"
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "pyrag_dsl").rglob("*.py")}
    assert not sorted(sources - names), "modules missing from the wheel"


def test_installed_wheel_loads_its_prompts_and_data(wheel, tmp_path):
    target = tmp_path / "site"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    code = (
        "import pyrag_dsl, pathlib; from pyrag_dsl.agents.prompts import load_prompt, default_sentinels; "
        "from pyrag_dsl.retrievers.embedded import DATA_DIR, CORPUS_FILES, QUESTIONS_FILE; "
        "assert load_prompt('plan') and default_sentinels(); "
        "assert all((DATA_DIR / n).is_file() for n in CORPUS_FILES) and QUESTIONS_FILE.is_file(); "
        "print(pathlib.Path(pyrag_dsl.__file__).parent)"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert Path(r.stdout.strip()) == target / "pyrag_dsl"  # the installed copy, not the checkout
