"""The README's install commands work with the pip a fresh venv ships (pip 23.2.1 compares extra names as
written), build llama.cpp without AMX, and CI runs them without upgrading pip."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from pyrag_dsl.agents.cpu import NO_AMX_CFLAGS, REBUILD_LLAMA
from pyrag_dsl.agents.models import MODELS

pytestmark = pytest.mark.network_free

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
NORMALISED = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")  # PEP 685: what setuptools writes into the metadata


def _extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _setup_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_every_extra_name_is_already_normalised():
    bad = [name for name in _extras() if not NORMALISED.match(name)]
    assert bad == [], f"pip 23.2.1 cannot resolve these extras as written: {bad}"


def test_the_readme_and_the_models_name_only_extras_that_exist():
    extras = set(_extras())
    lines = _setup_lines()
    assert len(lines) == 2
    asked = {e for line in lines for group in re.findall(r"\.\[([^\]]+)\]", line) for e in group.split(",")}
    assert asked and asked <= extras, asked - extras
    for spec in MODELS.values():
        if spec.extra:
            assert spec.extra in extras and spec.extra in spec.install


@pytest.mark.parametrize("n", [0, 1])
def test_both_setup_commands_build_llama_cpp_without_amx(n):
    line = _setup_lines()[n]
    for var in ("CFLAGS", "CXXFLAGS"):
        assert f'{var}="{NO_AMX_CFLAGS}"' in line
    assert NO_AMX_CFLAGS in REBUILD_LLAMA  # the fix a crash names is the same build


def test_ci_runs_the_readme_with_the_pip_a_fresh_venv_has():
    ci = (ROOT / ".ci" / "run").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in ci.splitlines())
    assert not re.search(r"pip\s+install[^\n]*(--upgrade|-U)\s+pip", code)
    # README's second line in two parts (the type check runs between them): the install, then the tests
    assert "TEST_CMD='cd tests && python -m pytest -q'" in code
    assert 'install_part="${readme_line% && $TEST_CMD}"' in code
    assert code.index('eval "$install_part"') < code.index("\nmypy\n") < code.index('eval "$TEST_CMD"')
    readme_line = _setup_lines()[1]
    test_cmd = "cd tests && python -m pytest -q"
    assert readme_line.endswith(" && " + test_cmd)  # so the two parts are the line, word for word
