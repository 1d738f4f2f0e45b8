"""The typed settings (pyrag_dsl.config): precedence flags > config file > environment, one-line errors that
name the bad key (through the CLI, as users run it), the shared top-k bound, and the one place that decides
pipeline defaults for a server."""

import json
import os
import subprocess
import sys

import pytest

from pyrag_dsl.config import MAX_TOPK, ConfigError, check_topk
from pyrag_dsl.config.settings import FLAGS, Settings


def cli(*args, cwd=None, env=None, timeout=120):
    full_env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("LLM_MODEL", "LLM_BASE_URL", "PLAN_LLM_MODEL", "PLAN_LLM_BASE_URL", "OUTPUT_DIR", "ENABLE_THINKING")
    }
    return subprocess.run(
        [sys.executable, "-m", "pyrag_dsl.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**full_env, **(env or {})},
    )


@pytest.fixture
def questions(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("Who is older, Jed Hoyer or John William Henry II?\n")
    return str(path)


# -- through the CLI: each bad value is one line naming the key, exit code 2, nothing started ------------
BAD_CONFIGS = [
    ('[pipeline]\ntopk = "five"\n', "config [pipeline] topk: must be an integer from 1 to 1000, got 'five'"),
    ("[retriever]\nurl = 5\n", "config [retriever] url: must be an http(s) URL, got 5"),
    ('[llm]\nbase_url = "localhost:8000"\n', "config [llm] base_url: must be an http(s) URL, got 'localhost:8000'"),
    (
        "[pipline]\ntopk = 3\n",
        "config pipline: unknown section; known: breaker, llama, llm, model, output_dir, pipeline, plan_llm, retriever",
    ),
    (
        '[pipeline]\ntopk = "five"\n[llm]\ntimeout_s = -1\n',
        "config [llm] timeout_s: must be a number > 0 and "
        "<= 86400, got -1 (and 1 more problem: config [pipeline] topk)",
    ),
]


@pytest.mark.parametrize("text, line", BAD_CONFIGS)
def test_bad_config_file_is_one_line_naming_the_key(tmp_path, questions, text, line):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    r = cli("run", questions, "--config", str(config), "--output-dir", str(tmp_path / "out"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip().splitlines() == [f"error: {line}"]
    assert not (tmp_path / "out").exists()  # nothing ran


@pytest.mark.parametrize(
    "args, line",
    [
        (["--max-repairs", "-1"], "--max-repairs: must be an integer from 0 to 100, got -1"),
        (["--topk", "0"], "--topk: must be an integer from 1 to 1000, got 0"),
        (["--topk", "1001"], "--topk: must be an integer from 1 to 1000, got 1001"),
        (["--timeout", "0"], "--timeout: must be a number > 0 and <= 86400, got 0"),
        (["--deadline", "-5"], "--deadline: must be a number > 0 and <= 604800, got -5"),
        (["--retriever-timeout", "0"], "--retriever-timeout: must be a number > 0 and <= 86400, got 0"),
        (["--fail-after", "0"], "--fail-after: must be an integer from 1 to 1000, got 0"),
        (["--llm-url", "ftp://x"], "--llm-url: must be an http(s) URL, got 'ftp://x'"),
    ],
)
def test_bad_flag_is_one_line_naming_the_flag(tmp_path, questions, args, line):
    r = cli("run", questions, *args, "--output-dir", str(tmp_path / "out"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip().splitlines() == [f"error: {line}"]
    assert not (tmp_path / "out").exists()


def test_bad_environment_variable_names_it(tmp_path, questions):
    r = cli(
        "run",
        questions,
        "--output-dir",
        str(tmp_path / "out"),
        env={"ENABLE_THINKING": "maybe", "LLM_BASE_URL": "http://127.0.0.1:9/v1"},
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: ENABLE_THINKING: must be true or false, got 'maybe'"]


# -- hostile config files and variables: exit 2, one short line naming the file, key or variable -------------
@pytest.mark.parametrize(
    "name, text, line",
    [
        ("t.toml", "[pipeline]\ntopk = true\n", "config [pipeline] topk: must be an integer from 1 to 1000, got True"),
        (
            "b.toml",
            "[llm]\ntimeout_s = false\n",
            "config [llm] timeout_s: must be a number > 0 and <= 86400, got False",
        ),
        (
            "k.toml",
            "[pipeline]\n" + "k" * 1_000_000 + " = 1\n",
            "config [pipeline] " + "k" * 37 + "...: unknown setting; known: boosted_topk, deadline_s, max_repairs, "
            "max_workers, parallel, plan_grammar, policy, sentinels, stream_plan, topk, use_grammar",
        ),
        (
            "d.toml",
            "x = " + "[" * 100_000 + "]" * 100_000 + "\n",
            "config file {path} is not valid TOML: nested deeper than 100 levels",
        ),
        (
            "i.toml",
            "x = " + "{a = " * 500 + "1" + "}" * 500 + "\n",
            "config file {path} is not valid TOML: nested deeper than 100 levels",
        ),
        (
            "e.toml",
            ".".join(["a"] * 100_000) + " = 1\n",
            "config file {path} is not valid TOML: a key nested deeper than 100 levels",
        ),
        (
            "h.toml",
            "[" + ".".join(["a"] * 100_000) + "]\n",
            "config file {path} is not valid TOML: a key nested deeper than 100 levels",
        ),
        (
            "d.json",
            '{"pipeline": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "config file {path} is not valid JSON: nested deeper than 100 levels",
        ),
        (
            "n.json",
            '{"pipeline": {"topk": Infinity}}',
            "config file {path} is not valid JSON: Infinity is not a number JSON allows",
        ),
    ],
)
def test_hostile_config_file_is_one_short_line(tmp_path, name, text, line):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        Settings.resolve(config_file=str(path), environ={})
    assert str(info.value) == line.format(path=path)


def test_config_file_with_a_bom_loads(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("\ufeff[pipeline]\ntopk = 3\n", encoding="utf-8")
    assert Settings.resolve(config_file=str(path), environ={}).pipeline.topk == 3


@pytest.mark.parametrize(
    "value, line",
    [
        ("http://[::1", "LLM_BASE_URL: must be an http(s) URL, got 'http://[::1'"),
        (
            "http://127.0.0.1:8000/v1\r\nX-Injected: 1",
            "LLM_BASE_URL: must be an http(s) URL (without spaces or "
            "control characters), got 'http://127.0.0.1:8000/v1\\r\\nX-Injected: 1'",
        ),
        ("http://127.0.0.1:99999/v1", "LLM_BASE_URL: must be an http(s) URL, got 'http://127.0.0.1:99999/v1'"),
        ("http:///v1", "LLM_BASE_URL: must be an http(s) URL, got 'http:///v1'"),
    ],
)
def test_a_url_an_http_client_refuses_is_a_settings_error(value, line):
    with pytest.raises(ConfigError) as info:
        Settings.resolve(environ={"LLM_BASE_URL": value})
    assert str(info.value) == line
    ok = Settings.resolve(environ={"LLM_BASE_URL": "http://[::1]:8000/v1"})
    assert ok.llm.base_url == "http://[::1]:8000/v1"


def test_a_bad_url_variable_exits_2_naming_it(tmp_path, questions):
    r = cli("run", questions, "--output-dir", str(tmp_path / "out"), env={"LLM_BASE_URL": "http://[::1"})
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip().splitlines() == ["error: LLM_BASE_URL: must be an http(s) URL, got 'http://[::1'"]


def test_a_boolean_topk_in_a_config_file_exits_2_like_the_flag(tmp_path, questions):
    config = tmp_path / "c.toml"
    config.write_text("[pipeline]\ntopk = true\n")
    r = cli("run", questions, "--config", str(config), "--output-dir", str(tmp_path / "out"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip().splitlines() == [
        "error: config [pipeline] topk: must be an integer from 1 to 1000, got True"
    ]


@pytest.mark.parametrize(
    "args, line",
    [
        (["search", "Jed Hoyer", "--topk", "0"], "--topk: must be an integer from 1 to 1000, got 0"),
        (["serve-retriever", "--default-topk", "5000"], "--default-topk: must be an integer from 1 to 1000, got 5000"),
    ],
)
def test_retrieval_commands_check_topk_first(args, line):
    r = cli(*args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.strip().splitlines() == [f"error: {line}"]


def test_exec_takes_the_same_settings(tmp_path):
    program = tmp_path / "p.py"
    program.write_text('docs = retrieve("x")\nfinal_answer = answer("q", docs)\n')
    r = cli("exec", str(program), "--topk", "0")
    assert r.returncode == 2 and r.stderr.strip() == "error: --topk: must be an integer from 1 to 1000, got 0"


# -- the model: precedence, alternatives, inheritance -------------------------------------------------
def test_flags_beat_file_beat_environment(tmp_path):
    env = {
        "LLM_BASE_URL": "http://env:1/v1",
        "LLM_MODEL": "env-model",
        "OUTPUT_DIR": "/env/out",
        "ENABLE_THINKING": "yes",
    }
    config = tmp_path / "c.toml"
    config.write_text(
        'output_dir = "/cfg/out"\n[llm]\nmodel = "cfg-model"\ntimeout_s = 7\n'
        '[pipeline]\ntopk = 3\ndeadline_s = 60\n[retriever]\nurl = "http://r:8008"\ntimeout_s = 2\n'
    )
    s = Settings.resolve(
        config_file=str(config), environ=env, flags={"topk": 4, "llm_url": "http://flag:2/v1", "retriever_retries": 0}
    )
    assert (s.llm.base_url, s.llm.model, s.llm.timeout_s, s.llm.enable_thinking) == (
        "http://flag:2/v1",
        "cfg-model",
        7,
        True,
    )
    assert (s.pipeline.topk, s.pipeline.deadline_s, s.output_dir) == (4, 60, "/cfg/out")
    assert (s.retriever.url, s.retriever.timeout_s, s.retriever.retries) == ("http://r:8008", 2, 0)
    assert not s.embedded_llm and s.llm_fields()["base_url"] == "http://flag:2/v1"


def test_json_config_and_defaults(tmp_path):
    config = tmp_path / "c.json"
    config.write_text(
        json.dumps(
            {
                "pipeline": {"policy": "reference", "sentinels": ["nope"]},
                "llama": {"threads": 2, "omp_wait_policy": "active"},
            }
        )
    )
    s = Settings.resolve(config_file=str(config), environ={})
    assert s.pipeline.policy == "reference" and s.pipeline.sentinels == ["nope"]
    assert s.llama.threads == 2 and s.llama.server_fields()["omp_wait_policy"] == "active"
    assert s.embedded_llm and s.llm_fields() is None and s.pipeline.topk == 5 and s.breaker.failures == 3


def test_a_higher_layer_replaces_the_alternative_below(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('model = "/models/x.gguf"\n[retriever]\nurl = "http://r:8008"\n')
    s = Settings.resolve(config_file=str(config), environ={}, flags={"index": "/idx", "llm_url": "http://l:1/v1"})
    assert (s.retriever.url, s.retriever.index, s.model, s.llm.base_url) == (None, "/idx", None, "http://l:1/v1")
    s = Settings.resolve(config_file=str(config), environ={"LLM_BASE_URL": "http://env:1/v1"})
    assert s.model == "/models/x.gguf" and s.embedded_llm  # the file's local model beats the environment's server
    with pytest.raises(ConfigError, match=r"^--retriever-url and --index were both given; pick one$"):
        Settings.resolve(environ={}, flags={"retriever_url": "http://x:1", "index": "/y"})
    config.write_text('[retriever]\nurl = "http://r:8008"\nindex = "/y"\n')
    with pytest.raises(ConfigError, match=r"config \[retriever\] url and config \[retriever\] index"):
        Settings.resolve(config_file=str(config), environ={})


def test_plan_llm_inherits_the_llm_and_needs_one():
    s = Settings.resolve(
        environ={"LLM_BASE_URL": "http://a:1/v1", "LLM_MODEL": "m", "PLAN_LLM_MODEL": "coder", "PLAN_LLM_API_KEY": "k"},
        flags={"timeout": 9.0},
    )
    assert (s.plan_llm.base_url, s.plan_llm.model, s.plan_llm.api_key, s.plan_llm.timeout_s) == (
        "http://a:1/v1",
        "coder",
        "k",
        9.0,
    )
    assert Settings.resolve(environ={"PLAN_LLM_API_KEY": "k", "LLM_MODEL": ""}).plan_llm is None  # no model or URL
    with pytest.raises(ConfigError, match="Plan LLM server was given without a Decompose/Answer one"):
        Settings.resolve(environ={}, flags={"plan_llm_url": "http://p:1/v1"})


def test_settings_from_the_environment_alone(monkeypatch):
    monkeypatch.setenv("LLM_MODEL", "Qwen/Qwen2.5-7B-Instruct")
    monkeypatch.setenv("OUTPUT_DIR", "/tmp/o")
    s = Settings()  # the library's default: the reference's variables
    assert s.llm.model == "Qwen/Qwen2.5-7B-Instruct" and s.llm_fields()["base_url"] == "http://127.0.0.1:8337/v1"
    assert s.output_dir == "/tmp/o"


def test_every_flag_names_a_real_setting():
    for dest, (flag, paths) in FLAGS.items():
        assert flag.startswith("--")
        for path in paths:
            model = Settings
            for part in path[:-1]:
                model = model.model_fields[part].annotation
                model = getattr(model, "__args__", (model,))[0]
            assert path[-1] in model.model_fields, (dest, path)
    with pytest.raises(KeyError, match="unknown flag"):
        Settings.resolve(environ={}, flags={"no_such_flag": 1})


def _default_of(path: tuple[str, ...]):
    model = Settings
    for part in path[:-1]:
        model = model.model_fields[part].annotation
        model = getattr(model, "__args__", (model,))[0]
    return model.model_fields[path[-1]].default


def test_flag_help_states_the_settings_defaults():
    """The pipeline flags default to None (the settings model holds the default, from config.defaults), and
    the "(default N)" a flag's help states is that default: for --timeout one per setting it sets."""
    import argparse
    import re

    from pyrag_dsl.cli.flags import add_llm_flags
    from pyrag_dsl.config import defaults as D

    class Recording(argparse.ArgumentParser):
        """Keeps the Action that each add_argument returns, its groups' included (argparse's public API)."""

        added: list[argparse.Action] = []

        def add_argument(self, *args, **kwargs):
            action = super().add_argument(*args, **kwargs)
            self.added.append(action)
            return action

        def add_argument_group(self, *args, **kwargs):
            group = super().add_argument_group(*args, **kwargs)
            add = group.add_argument
            group.add_argument = lambda *a, **k: self.added.append(add(*a, **k)) or self.added[-1]
            return group

    parser = Recording()
    add_llm_flags(parser)
    actions = {a.dest: a for a in parser.added}
    stated = {}
    for dest, (flag, paths) in FLAGS.items():
        action = actions.get(dest)
        if action is None:  # prompt_cache: set by --no-prompt-cache only
            continue
        assert action.default in (None, False), flag
        said = re.search(r"\(default ([^)]*)\)", action.help or "")
        if said is None:
            continue
        parts = said.group(1).split(";")
        for path, part in zip(paths, parts):
            value, default = part.split(":")[0].split()[-1], _default_of(path)
            assert value == (f"{default:g}" if isinstance(default, float) else str(default)), (flag, path)
            stated[".".join(path)] = default
    assert stated == {
        "llm.timeout_s": D.LLM_TIMEOUT_S,
        "llama.timeout_s": D.LLAMA_TIMEOUT_S,
        "llama.n_ctx": D.LLAMA_N_CTX,
        "llama.omp_wait_policy": D.OMP_WAIT_POLICY,
        "retriever.timeout_s": D.RETRIEVER_TIMEOUT_S,
        "retriever.retries": D.RETRIEVER_RETRIES,
        "breaker.failures": D.BREAKER_FAILURES,
        "pipeline.topk": D.TOPK,
        "pipeline.boosted_topk": D.BOOSTED_TOPK,
        "pipeline.max_repairs": D.MAX_REPAIRS,
        "pipeline.max_workers": D.MAX_WORKERS,
    }


def test_the_library_and_the_settings_share_their_defaults():
    from pyrag_dsl.pipeline.config import PipelineConfig
    from pyrag_dsl.rl.settings import RewardSettings

    cfg, settings = PipelineConfig(), Settings.resolve(environ={})
    for name in ("topk", "boosted_topk", "max_repairs", "policy", "plan_grammar", "max_workers"):
        assert getattr(cfg, name) == getattr(settings.pipeline, name), name
    assert (RewardSettings().topk, RewardSettings().boosted_topk) == (cfg.topk, cfg.boosted_topk)
    from pyrag_dsl.agents.llm import LLMConfig
    from pyrag_dsl.retrievers.http_client import HttpRetriever

    client = LLMConfig()
    for name in (
        "api_key",
        "timeout_s",
        "retries",
        "backoff_s",
        "temperature",
        "max_tokens",
        "enable_thinking",
        "grammar",
    ):
        assert getattr(client, name) == getattr(settings.llm, name), name
    r = HttpRetriever()
    assert (r.timeout, r.retries, r.backoff) == (
        settings.retriever.timeout_s,
        settings.retriever.retries,
        settings.retriever.backoff_s,
    )
    r.close()


# -- one bound for top-k --------------------------------------------------------------------------------
def test_one_topk_bound_for_engine_server_and_settings():
    from pyrag_dsl.grammar import Limits
    from pyrag_dsl.retrievers.server import BadRequest, ServerLimits, parse_request

    assert Limits().max_topk == ServerLimits().max_topk == MAX_TOPK == 1000
    assert check_topk(MAX_TOPK) == MAX_TOPK
    for bad in (0, MAX_TOPK + 1, "5", True):
        with pytest.raises(ConfigError):
            check_topk(bad)
    parse_request(json.dumps({"queries": ["q"], "topk": MAX_TOPK}).encode(), ServerLimits())
    with pytest.raises(BadRequest, match="from 1 to 1000"):
        parse_request(json.dumps({"queries": ["q"], "topk": MAX_TOPK + 1}).encode(), ServerLimits())


# -- one place decides pipeline defaults -------------------------------------------------------------------
@pytest.mark.parametrize("owned_by, grammar", [("me", "skeleton"), ("vllm", "language"), ("scripted", "language")])
def test_plan_grammar_is_decided_once_for_library_and_session(bm25, bm25_index, owned_by, grammar):
    from scripted_llm import ScriptedLLM
    from test_pipeline import default_handler

    from pyrag_dsl.agents import LLMClient, LLMConfig
    from pyrag_dsl.pipeline import Pipeline, PipelineConfig
    from pyrag_dsl.pipeline.session import Session

    with ScriptedLLM(default_handler(), owned_by=owned_by) as llm:
        library = Pipeline(LLMClient(LLMConfig(base_url=llm.url, model="scripted")), bm25, config=PipelineConfig())
        settings = Settings.resolve(environ={}, flags={"llm_url": llm.url, "index": str(bm25_index)})
        with Session(settings) as session:
            assert session.pipeline.config.plan_grammar == library.config.plan_grammar == grammar
            result = session.pipeline.run("Who is older, Jed Hoyer or John William Henry II?")
    assert result.settings["plan_grammar"] == grammar  # what the result records
    pinned = Pipeline(library.llm, bm25, config=PipelineConfig(plan_grammar="language"))
    assert pinned.config.plan_grammar == "language"  # a chosen grammar is kept
