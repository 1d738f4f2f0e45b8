"""Agents: Decompose, Plan and Answer over an OpenAI-compatible LLM client. Prompts live in prompts/."""

from .answer import AnswerAgent, Sentinels, extract_answer
from .decompose import DecomposeAgent, Decomposition, parse_sub_queries
from .llm import LLMClient, LLMConfig, LLMError
from .plan import PlanAgent, extract_program

__all__ = [
    "AnswerAgent",
    "DecomposeAgent",
    "Decomposition",
    "LLMClient",
    "LLMConfig",
    "LLMError",
    "PlanAgent",
    "Sentinels",
    "extract_answer",
    "extract_program",
    "parse_sub_queries",
]
