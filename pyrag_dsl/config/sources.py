"""Where settings come from: the reference's environment variables, the command-line flags (FLAGS) and the
layers they make with a config file (flags > file > environment), as settings trees."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Union

from .errors import ConfigError

Tree = dict[str, Any]  # a settings tree: sections (nested trees) and values by key
Loc = tuple[Union[str, int], ...]  # a path in a tree, or where pydantic found an error (indexes too)


# -- the reference's environment variables ------------------------------------------------------------
ENV_VARS: dict[str, tuple[str, ...]] = {
    "LLM_BASE_URL": ("llm", "base_url"),
    "LLM_MODEL": ("llm", "model"),
    "LLM_API_KEY": ("llm", "api_key"),
    "PLAN_LLM_BASE_URL": ("plan_llm", "base_url"),
    "PLAN_LLM_MODEL": ("plan_llm", "model"),
    "PLAN_LLM_API_KEY": ("plan_llm", "api_key"),
    "ENABLE_THINKING": ("llm", "enable_thinking"),
    "OUTPUT_DIR": ("output_dir",),
}


def reference_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings tree the reference's variables give (empty values are unset; PLAN_LLM_* make a Plan
    server only with a model or URL)."""
    tree: dict[str, Any] = {}
    for var, path in ENV_VARS.items():
        value = environ.get(var)
        if value is not None and value.strip() != "":
            _put(tree, path, value.strip())
    plan = tree.get("plan_llm")
    if plan is not None and "base_url" not in plan and "model" not in plan:
        del tree["plan_llm"]
    return tree


# -- command-line flags ---------------------------------------------------------------------------------
# argparse dest -> (the flag as typed, the settings it sets). store_true flags count only when True.
FLAGS: dict[str, tuple[str, tuple[tuple[str, ...], ...]]] = {
    "llm_url": ("--llm-url", (("llm", "base_url"),)),
    "llm_model": ("--llm-model", (("llm", "model"),)),
    "plan_llm_url": ("--plan-llm-url", (("plan_llm", "base_url"),)),
    "plan_llm_model": ("--plan-llm-model", (("plan_llm", "model"),)),
    "model": ("--model", (("model",),)),
    "timeout": ("--timeout", (("llm", "timeout_s"), ("llama", "timeout_s"))),
    "threads": ("--threads", (("llama", "threads"),)),
    "n_ctx": ("--n-ctx", (("llama", "n_ctx"),)),
    "omp_wait_policy": ("--omp-wait-policy", (("llama", "omp_wait_policy"),)),
    "prompt_cache": ("--no-prompt-cache", (("llama", "prompt_cache"),)),  # only ever given as False
    "retriever_url": ("--retriever-url", (("retriever", "url"),)),
    "index": ("--index", (("retriever", "index"),)),
    "retriever_timeout": ("--retriever-timeout", (("retriever", "timeout_s"),)),
    "retriever_retries": ("--retriever-retries", (("retriever", "retries"),)),
    "output_dir": ("--output-dir", (("output_dir",),)),
    "topk": ("--topk", (("pipeline", "topk"),)),
    "boosted_topk": ("--boosted-topk", (("pipeline", "boosted_topk"),)),
    "max_repairs": ("--max-repairs", (("pipeline", "max_repairs"),)),
    "policy": ("--policy", (("pipeline", "policy"),)),
    "plan_grammar": ("--plan-grammar", (("pipeline", "plan_grammar"),)),
    "parallel": ("--parallel", (("pipeline", "parallel"),)),
    "max_workers": ("--max-workers", (("pipeline", "max_workers"),)),
    "stream_plan": ("--stream-plan/--no-stream-plan", (("pipeline", "stream_plan"),)),
    "no_grammar": ("--no-grammar", (("pipeline", "use_grammar"),)),  # True sets use_grammar = False
    "deadline": ("--deadline", (("pipeline", "deadline_s"),)),
    "breaker_failures": ("--fail-after", (("breaker", "failures"),)),
}
_STORE_TRUE = {"parallel", "no_grammar"}


def flags_to_tree(flags: Mapping[str, Any]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """Given flags as a settings tree, and which flag set each path."""
    tree: dict[str, Any] = {}
    names: dict[tuple[str, ...], str] = {}
    for dest, value in flags.items():
        if dest not in FLAGS:
            raise KeyError(f"unknown flag {dest!r}: add it to pyrag_dsl.config.sources.FLAGS")
        if value is None or (dest in _STORE_TRUE and value is False):
            continue
        flag, paths = FLAGS[dest]
        if dest == "no_grammar":
            value = False
        for path in paths:
            _put(tree, path, value)
            names[path] = flag
    return tree, names


# -- layers and alternatives --------------------------------------------------------------
# Settings that replace each other: the highest layer that sets one of them drops the other from lower layers.
_ALTERNATIVES = (
    ((("retriever", "url"),), (("retriever", "index"),)),
    ((("model",),), (("llm", "base_url"), ("llm", "model"), ("plan_llm", "base_url"), ("plan_llm", "model"))),
)


class Layers:
    """The layers of one resolve (flags, config file, environment): names a setting as its layer wrote it,
    and drops the alternative a higher layer replaced."""

    def __init__(self, flags: Tree, flag_names: dict[tuple[str, ...], str], file: Tree, env: Tree) -> None:
        self.flags, self.flag_names, self.file, self.env = flags, flag_names, file, env
        self.env_names = {path: var for var, path in ENV_VARS.items()}

    def ordered(self) -> list[tuple[str, Tree]]:
        return [("flags", self.flags), ("file", self.file), ("env", self.env)]

    def name(self, layer: str, path: Loc) -> str:
        key = _names_only(path)  # flags and variables set named paths only
        if layer == "flags":
            named = self.flag_names.get(key) if key is not None else None
            return named if named is not None else "--" + str(path[-1]).replace("_", "-")
        if layer == "env":
            named = self.env_names.get(key) if key is not None else None
            return named if named is not None else ".".join(map(str, path))
        return "config " + _key(path)

    def prune_alternatives(self) -> None:
        layers = self.ordered()
        for group_a, group_b in _ALTERNATIVES:
            for i, (layer, data) in enumerate(layers):
                a = [p for p in group_a if _has(data, p)]
                b = [p for p in group_b if _has(data, p)]
                if a and b:
                    raise ConfigError(
                        f"{self.name(layer, a[0])} and {self.name(layer, b[0])} were both given; pick one"
                    )
                if a or b:
                    for _, lower in layers[i + 1 :]:
                        for path in group_b if a else group_a:
                            _delete(lower, path)
                    break

    def origin(self, loc: Loc) -> str:
        candidates = [loc]
        if loc and loc[0] == "plan_llm":  # plan_llm inherits unset fields from llm
            candidates.append(("llm", *loc[1:]))
        for path in candidates:
            for layer, data in self.ordered():
                if _has(data, path):
                    return self.name(layer, path)
        return "setting " + _key(loc)


def _names_only(path: Loc) -> Optional[tuple[str, ...]]:
    """The path when it holds names only (no list index), else None."""
    names = tuple(p for p in path if isinstance(p, str))
    return names if len(names) == len(path) else None


def _key(path: Loc) -> str:
    parts = tuple(str(p) if len(str(p)) <= 40 else str(p)[:37] + "..." for p in path)
    return f"[{parts[0]}] {'.'.join(parts[1:])}" if len(parts) > 1 else parts[0]


def _put(tree: Tree, path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        tree = tree.setdefault(part, {})
    tree[path[-1]] = value


def _has(tree: Any, path: Loc) -> bool:
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


def _delete(tree: Tree, path: tuple[str, ...]) -> None:
    if not _has(tree, path):
        return
    parents = [tree]
    for part in path[:-1]:
        parents.append(parents[-1][part])
    del parents[-1][path[-1]]
    for parent, part in zip(reversed(parents[:-1]), reversed(path[:-1])):  # drop sections left empty
        if parent[part] == {}:
            del parent[part]


__all__ = ["ENV_VARS", "FLAGS", "Layers", "Loc", "Tree", "flags_to_tree", "reference_env"]
