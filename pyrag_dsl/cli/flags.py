"""The flags every pipeline command takes (run, exec, replay, eval, doctor): LLM, retrieval and pipeline
settings. Each defaults to None so that a config file and the environment still apply; the defaults they
name are config.defaults (tests/test_config.py checks them against the settings model), and the settings
they set are config.sources.FLAGS."""

from __future__ import annotations

import argparse

from ..config import defaults as D


def add_llm_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "LLM (default: the embedded llama.cpp server, see `pyrag-dsl models`; env: LLM_BASE_URL, "
        "LLM_MODEL, PLAN_LLM_BASE_URL, PLAN_LLM_MODEL, ENABLE_THINKING)"
    )
    g.add_argument("--llm-url", help="OpenAI-compatible base URL for Decompose/Answer, e.g. http://127.0.0.1:8337/v1")
    g.add_argument("--llm-model", help="model name on that server")
    g.add_argument("--plan-llm-url", help="base URL of the Plan LLM (default: the same as --llm-url)")
    g.add_argument("--plan-llm-model", help="Plan model name")
    g.add_argument(
        "--model",
        metavar="NAME|PATH.gguf",
        help="the embedded llama.cpp server's model: a name from `pyrag-dsl models` (qwen2.5-coder-0.5b, "
        "qwen2.5-coder-1.5b, smollm2) or a local GGUF file",
    )
    g.add_argument("--threads", type=int, help="embedded server: CPU threads (default: the CPUs available, at most 8)")
    g.add_argument("--n-ctx", type=int, help=f"embedded server: context size in tokens (default {D.LLAMA_N_CTX})")
    g.add_argument(
        "--omp-wait-policy",
        choices=("passive", "active"),
        help=f"embedded server: OpenMP wait policy (default {D.OMP_WAIT_POLICY}: no busy-waiting on a shared machine)",
    )
    g.add_argument(
        "--no-prompt-cache",
        action="store_true",
        help="embedded server: no RAM prompt cache (the default; overrides `prompt_cache = true` in a config file)",
    )
    g.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help=f"seconds per LLM request (default {D.LLM_TIMEOUT_S:g}; embedded {D.LLAMA_TIMEOUT_S:g})",
    )
    g.add_argument("--no-grammar", action="store_true", help="no grammar-constrained decoding")
    g.add_argument(
        "--plan-grammar",
        choices=("auto", "language", "skeleton", "off"),
        help="grammar for the Plan LLM: the whole language, or the canonical retrieve/answer skeleton "
        "(auto: skeleton on llama.cpp servers such as the embedded one, language on vLLM and others)",
    )
    r = p.add_argument_group("retrieval (default: the embedded corpus, BM25 in-process)")
    src = r.add_mutually_exclusive_group()
    src.add_argument("--retriever-url", help="a Search-R1 /retrieve server, e.g. http://127.0.0.1:8008")
    src.add_argument("--index", help="an index directory built by 'pyrag-dsl index build'")
    r.add_argument(
        "--retriever-timeout",
        type=float,
        metavar="S",
        help=f"seconds per retrieval request (default {D.RETRIEVER_TIMEOUT_S:g})",
    )
    r.add_argument(
        "--retriever-retries",
        type=int,
        metavar="N",
        help=f"retries of a failed retrieval request (default {D.RETRIEVER_RETRIES})",
    )
    r.add_argument(
        "--fail-after",
        dest="breaker_failures",
        type=int,
        metavar="N",
        help="after N failed requests in a row to one server (LLM or retriever), from more than one "
        f"call, fail its calls at once for {D.BREAKER_COOLDOWN_S:g} s instead of waiting out every timeout "
        f"(default {D.BREAKER_FAILURES}; a call's own retries never open it)",
    )
    q = p.add_argument_group("pipeline")
    q.add_argument("--topk", type=int, help=f"documents per retrieve (default {D.TOPK})")
    q.add_argument("--boosted-topk", type=int, help=f"top-k of an adaptive retry (default {D.BOOSTED_TOPK})")
    q.add_argument("--max-repairs", type=int, help=f"repair rounds (default {D.MAX_REPAIRS})")
    q.add_argument(
        "--policy",
        choices=("incremental", "reference"),
        help="incremental (default): re-run only what a repair or retry changes; reference: re-run "
        "the whole program, as the reference implementation does (for comparison)",
    )
    q.add_argument(
        "--parallel",
        action="store_true",
        help="dataflow mode: a statement starts as soon as its inputs are ready; retrievals ready "
        "together go out as one batched request (same results as sequential mode)",
    )
    q.add_argument(
        "--max-workers",
        type=int,
        metavar="N",
        help=f"dataflow mode: statements in flight at once (default {D.MAX_WORKERS})",
    )
    q.add_argument(
        "--stream-plan",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run statements while the Plan reply is still streaming (default: only with vLLM "
        "servers, which serve requests concurrently; see benchmarks/README.md)",
    )
    q.add_argument(
        "--deadline",
        type=float,
        metavar="S",
        help="seconds per question: calls get the time left, then fail (default: no deadline)",
    )
    p.add_argument("--config", help="TOML or JSON config file (see docs/configuration.md)")


__all__ = ["add_llm_flags"]
