"""The pipeline's defaults, defined once. The settings model (config.settings), PipelineConfig
(pipeline.config), replay of traces that lack a key (pipeline.recorded_config), the CLI's flag help, the
LLM and retrieval clients and the breakers when built without settings, the retrieval server, the RL
reward settings and the compat runner read them from here; tests/test_config.py checks the flags'
"(default N)" against the settings model. A leaf: it imports only config.limits."""

from __future__ import annotations

from typing import Final

from .limits import DEFAULT_MAX_WORKERS

TOPK = 5  # documents per retrieve (the reference's top-k)
BOOSTED_TOPK = 10  # top-k of an adaptive retry
MAX_REPAIRS = 3  # Plan repair rounds
POLICIES = ("incremental", "reference")  # reference: re-run the whole program on repair and retry
POLICY: Final = "incremental"  # Final: its type is the literal, as the settings model wants
PLAN_GRAMMARS = ("auto", "language", "skeleton", "off")
PLAN_GRAMMAR: Final = "auto"  # per Plan server: pipeline.defaults.plan_grammar_for
MAX_WORKERS = DEFAULT_MAX_WORKERS  # dataflow mode: statements in flight at once
BATCH_WINDOW_S = 0.005  # dataflow mode: retrieves ready within this window go out as one batch

LLM_TIMEOUT_S = 120.0  # seconds per request to an LLM server
LLM_RETRIES = 2  # retries of a failed LLM request
LLM_BACKOFF_S = 1.0
LLM_MAX_TOKENS = 512
LLAMA_TIMEOUT_S = 300.0  # seconds per request to the embedded llama.cpp server
LLAMA_N_CTX = 4096  # the embedded server's context size in tokens
OMP_WAIT_POLICIES = ("passive", "active")
OMP_WAIT_POLICY: Final = "passive"  # no busy-waiting on a shared machine
RETRIEVER_TIMEOUT_S = 30.0  # seconds per retrieval request
RETRIEVER_RETRIES = 3  # retries of a failed retrieval request
RETRIEVER_BACKOFF_S = 0.5
BREAKER_FAILURES = 3  # failed requests in a row to one server before its calls fail at once
BREAKER_COOLDOWN_S = 30.0

__all__ = [
    "BATCH_WINDOW_S",
    "BOOSTED_TOPK",
    "BREAKER_COOLDOWN_S",
    "BREAKER_FAILURES",
    "LLAMA_N_CTX",
    "LLAMA_TIMEOUT_S",
    "LLM_BACKOFF_S",
    "LLM_MAX_TOKENS",
    "LLM_RETRIES",
    "LLM_TIMEOUT_S",
    "MAX_REPAIRS",
    "MAX_WORKERS",
    "OMP_WAIT_POLICIES",
    "OMP_WAIT_POLICY",
    "PLAN_GRAMMAR",
    "PLAN_GRAMMARS",
    "POLICIES",
    "POLICY",
    "RETRIEVER_BACKOFF_S",
    "RETRIEVER_RETRIES",
    "RETRIEVER_TIMEOUT_S",
    "TOPK",
]
