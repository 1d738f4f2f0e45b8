"""The GRPO + LoRA curriculum (Answer -> Plan -> Decompose) as `python -m verl.trainer.main_ppo` commands.

Each stage trains one role with LoRA (rank 64, alpha 32, all linear layers) on the base model, starting
from the previous stage's adapter (`lora_adapter_path`); the reward is `pyrag_dsl.rl.rewards.compute_score`
through verl's `reward.custom_reward_function` (no patching of verl). The plan and decompose rewards call
the frozen agents, served by `pyrag-dsl serve-llm` with the base model and the earlier stages' adapters.
Defaults are the reference's hyperparameters; any verl key can be overridden (`--set key=value`).
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

STAGES = ("answer", "plan", "decompose")
VERL_VERSION = "0.9.1"
REWARD_PATH = "pkg://pyrag_dsl.rl.rewards"

# data sets of each stage (directories written by `pyrag-dsl rl build-data`)
STAGE_SETS = {"answer": ("answer_with_docs", "answer_no_docs"), "plan": ("plan",), "decompose": ("decompose",)}

# served model names of the frozen agents (vLLM --lora-modules NAME=PATH)
ANSWER_LORA_NAME = "pyrag-answer"
PLAN_LORA_NAME = "pyrag-plan"

_COMMON = {
    "algorithm.adv_estimator": "grpo",
    "algorithm.use_kl_in_reward": "False",
    "data.filter_overlong_prompts": "True",
    "data.truncation": "error",
    "actor_rollout_ref.model.lora_rank": "64",
    "actor_rollout_ref.model.lora_alpha": "32",
    "actor_rollout_ref.model.target_modules": "all-linear",
    "actor_rollout_ref.model.use_remove_padding": "True",
    "actor_rollout_ref.model.enable_gradient_checkpointing": "True",
    "actor_rollout_ref.actor.use_kl_loss": "True",
    "actor_rollout_ref.actor.kl_loss_coef": "0.001",
    "actor_rollout_ref.actor.kl_loss_type": "low_var_kl",
    "actor_rollout_ref.actor.entropy_coeff": "0",
    "actor_rollout_ref.actor.fsdp_config.param_offload": "False",
    "actor_rollout_ref.rollout.name": "vllm",
    "actor_rollout_ref.rollout.load_format": "safetensors",
    "actor_rollout_ref.rollout.layered_summon": "True",
    "actor_rollout_ref.rollout.gpu_memory_utilization": "0.6",
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": "8",
    "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu": "8",
    "actor_rollout_ref.ref.fsdp_config.param_offload": "True",
    "reward.custom_reward_function.path": REWARD_PATH,
    "reward.custom_reward_function.name": "compute_score",
    "trainer.critic_warmup": "0",
    "trainer.val_before_train": "True",
    "trainer.save_freq": "50",
    "trainer.test_freq": "25",
    "trainer.logger": '["console"]',
    "trainer.project_name": "pyrag-rl",
}

# The reference's values: train_answer.sh / train_planer.sh / train_decomposer.sh
_STAGE = {
    "answer": {
        "data.train_batch_size": "32",
        "data.max_prompt_length": "4096",
        "data.max_response_length": "256",
        "actor_rollout_ref.actor.optim.lr": "1e-6",
        "actor_rollout_ref.actor.optim.lr_scheduler_type": "cosine",
        "actor_rollout_ref.actor.optim.lr_warmup_steps_ratio": "0.02",
        "actor_rollout_ref.actor.optim.min_lr_ratio": "0.1",
        "actor_rollout_ref.actor.ppo_mini_batch_size": "32",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": "8",
        "actor_rollout_ref.rollout.n": "8",
        "actor_rollout_ref.rollout.tensor_model_parallel_size": "4",
        "trainer.total_epochs": "1",
    },
    "plan": {
        "data.train_batch_size": "64",
        "data.max_prompt_length": "2048",
        "data.max_response_length": "1024",
        "actor_rollout_ref.actor.optim.lr": "3e-6",
        "actor_rollout_ref.actor.ppo_mini_batch_size": "32",
        "actor_rollout_ref.actor.use_dynamic_bsz": "True",
        "actor_rollout_ref.actor.ppo_max_token_len_per_gpu": "24576",
        "actor_rollout_ref.rollout.n": "4",
        "actor_rollout_ref.rollout.tensor_model_parallel_size": "2",
        "trainer.total_epochs": "2",
    },
}
_STAGE["decompose"] = {**_STAGE["plan"], "data.max_prompt_length": "1024", "data.max_response_length": "256"}

_KWARGS = "reward.custom_reward_function.reward_kwargs"


class LaunchError(ValueError):
    """A stage cannot be launched as asked (unknown stage, missing data, bad --set)."""


@dataclass
class Endpoint:
    """A frozen agent for the reward: where it is served and how to serve it."""

    role: str  # answer | plan (serve-llm's --role)
    url: str
    model: str  # the model name requests use (the LoRA module name when served with an adapter)
    adapter: str | None = None

    def serve_command(self, base_model: str) -> list[str]:
        port = self.url.rstrip("/").removesuffix("/v1").rsplit(":", 1)[-1]
        cmd = ["pyrag-dsl", "serve-llm", "--role", self.role, "--model", base_model, "--port", port]
        if self.adapter:
            cmd += ["--adapter", f"{self.model}={self.adapter}"]
        return cmd


@dataclass
class TrainPlan:
    stage: str
    overrides: dict[str, str]
    frozen: list[Endpoint] = field(default_factory=list)
    retriever_url: str | None = None

    def override_list(self) -> list[str]:
        return [f"{k}={v}" for k, v in self.overrides.items()]

    def command(self, python: str = sys.executable) -> list[str]:
        return [python, "-m", "verl.trainer.main_ppo", *self.override_list()]

    def shell(self) -> str:
        """The command as a shell script line, one override per line."""
        parts = [shlex.quote(p) for p in self.command("python3")]
        return " \\\n    ".join([" ".join(parts[:3])] + parts[3:])


def parse_sets(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise LaunchError(f"--set wants key=value, got {pair!r}")
        out[key.strip()] = value
    return out


def stage_files(data: Path, stage: str) -> tuple[list[str], list[str]]:
    """(train files, val files) of a stage under a build-data output directory; missing files are an error."""
    train: list[str] = []
    val: list[str] = []
    for name in STAGE_SETS[stage]:
        for split, bucket in (("train", train), ("val", val)):
            path = data / name / f"{split}.parquet"
            if not path.is_file():
                raise LaunchError(f"{path} is missing: run 'pyrag-dsl rl build-data --out {data}' first")
            bucket.append(str(path.resolve()))
    return train, val


def _hydra_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else "[" + ",".join(f"'{i}'" for i in items) + "]"


def plan_stage(
    stage: str,
    model: str,
    data: Path,
    *,
    adapter: str | None = None,
    answer_adapter: str | None = None,
    plan_adapter: str | None = None,
    answer_url: str = "http://127.0.0.1:8337/v1",
    plan_url: str = "http://127.0.0.1:8336/v1",
    retriever_url: str = "http://127.0.0.1:8008",
    n_gpus_per_node: int = 8,
    nnodes: int = 1,
    output_dir: str | None = None,
    sets: dict[str, str] | None = None,
    reward_kwargs: dict[str, str] | None = None,
    check_files: bool = True,
) -> TrainPlan:
    """The overrides of one stage. `adapter`: the previous stage's LoRA adapter to start from. The frozen
    agents use `answer_adapter` / `plan_adapter` (default: `adapter` for the agent of the previous stage)."""
    if stage not in STAGES:
        raise LaunchError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    if check_files:
        train, val = stage_files(data, stage)
    else:
        train = [str(data / s / "train.parquet") for s in STAGE_SETS[stage]]
        val = [str(data / s / "val.parquet") for s in STAGE_SETS[stage]]
    experiment = f"{stage}-{Path(model).name}"
    o = {
        **_COMMON,
        **_STAGE[stage],
        "data.train_files": _hydra_list(train),
        "data.val_files": _hydra_list(val),
        "actor_rollout_ref.model.path": model,
        "trainer.n_gpus_per_node": str(n_gpus_per_node),
        "trainer.nnodes": str(nnodes),
        "trainer.experiment_name": experiment,
    }
    if output_dir:
        o["trainer.default_local_dir"] = str(Path(output_dir) / experiment)
    if adapter:
        o["actor_rollout_ref.model.lora_adapter_path"] = adapter
    frozen = _frozen_agents(stage, model, adapter, answer_adapter, plan_adapter, answer_url, plan_url, retriever_url, o)
    for key, value in (reward_kwargs or {}).items():
        o[f"+{_KWARGS}.{key}"] = value
    for key, value in (sets or {}).items():  # a key we set keeps its own '+' (new-key) prefix
        existing = next((k for k in o if k.lstrip("+") == key.lstrip("+")), None)
        o[existing or key] = value
    return TrainPlan(stage, o, frozen, retriever_url if stage != "answer" else None)


def _frozen_agents(
    stage: str,
    model: str,
    adapter: str | None,
    answer_adapter: str | None,
    plan_adapter: str | None,
    answer_url: str,
    plan_url: str,
    retriever_url: str,
    o: dict[str, str],
) -> list[Endpoint]:
    """The frozen agents a stage's reward calls (Answer for plan and decompose, Plan for decompose); their
    endpoints and the retriever's go into the reward's keyword arguments in `o`."""
    frozen: list[Endpoint] = []
    if stage in ("plan", "decompose"):
        a_adapter = answer_adapter or (adapter if stage == "plan" else None)
        answer = Endpoint("answer", answer_url, ANSWER_LORA_NAME if a_adapter else model, a_adapter)
        frozen.append(answer)
        o[f"+{_KWARGS}.answer_url"] = answer.url
        o[f"+{_KWARGS}.answer_model"] = answer.model
        o[f"+{_KWARGS}.retriever_url"] = retriever_url
    if stage == "decompose":
        p_adapter = plan_adapter or adapter
        plan = Endpoint("plan", plan_url, PLAN_LORA_NAME if p_adapter else model, p_adapter)
        frozen.append(plan)
        o[f"+{_KWARGS}.plan_url"] = plan.url
        o[f"+{_KWARGS}.plan_model"] = plan.model
    return frozen


def export_command(checkpoint: str, out: str, python: str = sys.executable) -> list[str]:
    """verl's checkpoint export: OUT gets the merged model and OUT/lora_adapter (the adapter for the next
    stage's lora_adapter_path and for serve-llm --adapter)."""
    return [
        python,
        "-m",
        "verl.model_merger",
        "merge",
        "--backend",
        "fsdp",
        "--local_dir",
        checkpoint,
        "--target_dir",
        out,
    ]
