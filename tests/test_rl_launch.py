"""`pyrag-dsl rl train / export / merge`: the verl command of each curriculum stage, composed against
verl's own Hydra config (verl 0.9.1 installed with --no-deps: its yaml files, never its GPU stack)."""

import importlib.util
import json
import os
import sys

import pytest

from pyrag_dsl.cli import main
from pyrag_dsl.rl.launch import LaunchError, export_command, plan_stage

pytestmark = pytest.mark.network_free

needs_verl = pytest.mark.skipif(
    importlib.util.find_spec("verl") is None and not os.environ.get("PYRAG_REQUIRE_VERL"),
    reason="verl's config files are not installed: pip install --no-deps verl==0.9.1 hydra-core "
    "(CI sets PYRAG_REQUIRE_VERL=1, which turns this skip into a failure)",
)


@pytest.fixture
def data(tmp_path):
    for name in ("answer_with_docs", "answer_no_docs", "plan", "decompose"):
        (tmp_path / name).mkdir()
        for split in ("train", "val"):
            (tmp_path / name / f"{split}.parquet").write_bytes(b"")
    return tmp_path


def test_stage_defaults_are_the_references(data):
    answer = plan_stage("answer", "Qwen/Qwen2.5-7B-Instruct", data).overrides
    assert (
        answer["data.train_batch_size"],
        answer["actor_rollout_ref.rollout.n"],
        answer["actor_rollout_ref.actor.optim.lr"],
        answer["trainer.total_epochs"],
    ) == ("32", "8", "1e-6", "1")
    assert answer["data.train_files"].count(".parquet") == 2  # with and without documents
    for stage in ("plan", "decompose"):
        o = plan_stage(stage, "M", data, adapter="/ckpt/prev/lora_adapter").overrides
        assert (
            o["data.train_batch_size"],
            o["actor_rollout_ref.actor.ppo_mini_batch_size"],
            o["actor_rollout_ref.rollout.n"],
            o["actor_rollout_ref.actor.optim.lr"],
            o["trainer.total_epochs"],
        ) == ("64", "32", "4", "3e-6", "2")
        assert o["actor_rollout_ref.model.lora_adapter_path"] == "/ckpt/prev/lora_adapter"
    for stage in ("answer", "plan", "decompose"):
        o = plan_stage(stage, "M", data).overrides
        assert (
            o["actor_rollout_ref.model.lora_rank"],
            o["actor_rollout_ref.model.lora_alpha"],
            o["actor_rollout_ref.model.target_modules"],
            o["actor_rollout_ref.rollout.load_format"],
            o["actor_rollout_ref.rollout.name"],
        ) == ("64", "32", "all-linear", "safetensors", "vllm")
        assert (o["actor_rollout_ref.actor.kl_loss_coef"], o["actor_rollout_ref.actor.kl_loss_type"]) == (
            "0.001",
            "low_var_kl",
        )
        assert o["reward.custom_reward_function.path"] == "pkg://pyrag_dsl.rl.rewards"
        assert not any("use_legacy_worker_impl" in k for k in o)


def test_frozen_agents_follow_the_curriculum(data):
    plan = plan_stage("plan", "Qwen/Q", data, adapter="/a/answer_adapter")
    assert [(e.role, e.model, e.adapter) for e in plan.frozen] == [("answer", "pyrag-answer", "/a/answer_adapter")]
    assert plan.frozen[0].serve_command("Qwen/Q") == [
        "pyrag-dsl",
        "serve-llm",
        "--role",
        "answer",
        "--model",
        "Qwen/Q",
        "--port",
        "8337",
        "--adapter",
        "pyrag-answer=/a/answer_adapter",
    ]
    kw = "+reward.custom_reward_function.reward_kwargs"
    assert plan.overrides[f"{kw}.answer_model"] == "pyrag-answer"
    dec = plan_stage("decompose", "Qwen/Q", data, adapter="/p/plan_adapter", answer_adapter="/a/answer_adapter")
    assert [(e.role, e.model, e.adapter) for e in dec.frozen] == [
        ("answer", "pyrag-answer", "/a/answer_adapter"),
        ("plan", "pyrag-plan", "/p/plan_adapter"),
    ]
    assert dec.overrides[f"{kw}.plan_url"] == "http://127.0.0.1:8336/v1"
    assert plan_stage("answer", "M", data).frozen == []


def test_overrides_replace_defaults_and_bad_input_is_typed(data):
    o = plan_stage(
        "plan",
        "M",
        data,
        sets={
            "actor_rollout_ref.rollout.n": "16",
            "reward.custom_reward_function.reward_kwargs.answer_url": "http://x/v1",
        },
        reward_kwargs={"run_timeout_s": "30"},
    ).overrides
    kw = "+reward.custom_reward_function.reward_kwargs"
    assert o["actor_rollout_ref.rollout.n"] == "16" and o[f"{kw}.answer_url"] == "http://x/v1"
    assert o[f"{kw}.run_timeout_s"] == "30"
    with pytest.raises(LaunchError, match="unknown stage"):
        plan_stage("critic", "M", data)
    with pytest.raises(LaunchError, match="build-data"):
        plan_stage("plan", "M", data / "nowhere")


@needs_verl
@pytest.mark.parametrize("stage", ["answer", "plan", "decompose"])
def test_each_stage_composes_against_verls_config(stage, data):
    from pyrag_dsl.rl.verl_config import compose, verl_version

    assert verl_version() == "0.9.1"
    plan = plan_stage(
        stage,
        "Qwen/Qwen2.5-7B-Instruct",
        data,
        adapter="/ckpt/lora_adapter",
        answer_adapter="/ckpt/answer/lora_adapter" if stage == "decompose" else None,
        output_dir="/ckpt",
        sets={"trainer.save_freq": "10"},
    )
    cfg = compose(plan.override_list())
    model, rollout, actor = cfg.actor_rollout_ref.model, cfg.actor_rollout_ref.rollout, cfg.actor_rollout_ref.actor
    assert (model.lora_rank, model.lora_alpha, model.target_modules) == (64, 32, "all-linear")
    assert model.lora_adapter_path == "/ckpt/lora_adapter"
    assert (rollout.name, rollout.load_format, rollout.n) == ("vllm", "safetensors", 8 if stage == "answer" else 4)
    assert cfg.algorithm.adv_estimator == "grpo" and actor.use_kl_loss is True and actor.kl_loss_type == "low_var_kl"
    assert actor.optim.lr == (1e-6 if stage == "answer" else 3e-6)
    assert cfg.data.train_batch_size == (32 if stage == "answer" else 64) and cfg.trainer.save_freq == 10
    assert cfg.reward.custom_reward_function.path == "pkg://pyrag_dsl.rl.rewards"
    assert cfg.reward.custom_reward_function.name == "compute_score"
    files = cfg.data.train_files
    sets = {"answer": ["answer_with_docs", "answer_no_docs"], "plan": ["plan"], "decompose": ["decompose"]}[stage]
    assert (list(files) if not isinstance(files, str) else [files]) == [
        str((data / s / "train.parquet").resolve()) for s in sets
    ]
    kwargs = cfg.reward.custom_reward_function.get("reward_kwargs") or {}
    if stage != "answer":
        assert kwargs["answer_model"] == "pyrag-answer" and kwargs["retriever_url"] == "http://127.0.0.1:8008"
        # the reward reads these settings as verl passes them
        from pyrag_dsl.rl.settings import RewardSettings

        s = RewardSettings.resolve(dict(kwargs), {"topk": 5}, environ={})
        assert s.answer_model == "pyrag-answer"


@needs_verl
def test_a_mistyped_or_removed_key_fails_composition(data):
    from pyrag_dsl.rl.verl_config import VerlConfigError, compose

    good = plan_stage("plan", "M", data).override_list()
    with pytest.raises(VerlConfigError, match="lora_rnk"):
        compose(good + ["actor_rollout_ref.model.lora_rnk=64"])
    with pytest.raises(VerlConfigError, match="use_legacy_worker_impl"):  # set by the reference; gone in 0.9
        compose(good + ["trainer.use_legacy_worker_impl=auto"])
    with pytest.raises(VerlConfigError):  # the mandatory rollout engine
        compose([o for o in good if not o.startswith("actor_rollout_ref.rollout.name=")])


@needs_verl
def test_cli_check_config_and_dry_run(data, capsys):
    assert (
        main(
            [
                "rl",
                "train",
                "--stage",
                "decompose",
                "--model",
                "Qwen/Q",
                "--data",
                str(data),
                "--adapter",
                "/p/lora_adapter",
                "--answer-adapter",
                "/a/lora_adapter",
                "--check-config",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "compose against verl" in out and "python3 -m verl.trainer.main_ppo" in out
    assert "pyrag-dsl serve-llm --role plan --model Qwen/Q --port 8336 --adapter pyrag-plan=/p/lora_adapter" in out
    assert (
        main(
            [
                "rl",
                "train",
                "--stage",
                "plan",
                "--model",
                "M",
                "--data",
                str(data),
                "--check-config",
                "--set",
                "trainer.bogus_key=1",
            ]
        )
        == 1
    )


def test_cli_dry_run_without_verl(data, capsys):
    assert (
        main(
            [
                "rl",
                "train",
                "--stage",
                "answer",
                "--model",
                "M",
                "--data",
                str(data),
                "--dry-run",
                "--set",
                "trainer.total_epochs=3",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "trainer.total_epochs=3" in out and "serve-llm" not in out
    assert (
        main(["rl", "train", "--stage", "plan", "--model", "M", "--data", str(data), "--dry-run", "--set", "novalue"])
        == 2
    )


def test_export_command():
    cmd = export_command("/ck/global_step_50/actor", "/out/answer")
    assert cmd[1:] == [
        "-m",
        "verl.model_merger",
        "merge",
        "--backend",
        "fsdp",
        "--local_dir",
        "/ck/global_step_50/actor",
        "--target_dir",
        "/out/answer",
    ]


def test_serve_llm_with_an_adapter(capsys):
    assert (
        main(["serve-llm", "--role", "answer", "--model", "Qwen/Q", "--adapter", "pyrag-answer=/a/lora", "--dry-run"])
        == 0
    )
    out = capsys.readouterr().out
    assert "--enable-lora --lora-modules pyrag-answer=/a/lora --max-lora-rank 64" in out
    assert "LLM_MODEL=pyrag-answer" in out


def test_merge_a_tiny_lora_adapter_on_cpu(tmp_path):
    """A randomly initialised tiny model (no download), a LoRA adapter with non-zero weights, merged by
    `pyrag-dsl rl merge`: the merged model's logits equal the adapted model's."""
    import peft
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
    )
    base = transformers.LlamaForCausalLM(config)
    base.save_pretrained(tmp_path / "base")
    lora = peft.get_peft_model(
        base, peft.LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    )
    lora.save_pretrained(tmp_path / "adapter")
    ids = torch.tensor([[1, 5, 9, 3]])
    with torch.no_grad():
        expected = lora(ids).logits
        plain = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "base")(ids).logits
    assert not torch.allclose(expected, plain, atol=1e-4)  # the adapter changes the model
    assert (
        main(
            [
                "rl",
                "merge",
                str(tmp_path / "adapter"),
                "--base",
                str(tmp_path / "base"),
                "--out",
                str(tmp_path / "merged"),
                "--dtype",
                "float32",
            ]
        )
        == 0
    )
    merged = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    with torch.no_grad():
        got = merged(ids).logits
    assert torch.allclose(got, expected, atol=1e-4)
    assert not any("lora" in k for k in merged.state_dict())
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["r"] == 8
    assert sys.executable  # runs in-process
