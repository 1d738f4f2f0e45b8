"""Evaluation: FlashRAG-compatible metrics, QA data loading, baselines and the eval runner."""

from .metrics import accuracy, exact_match, f1_score, normalize_answer, retrieval_recall, score, sub_exact_match

__all__ = ["accuracy", "exact_match", "f1_score", "normalize_answer", "retrieval_recall", "score", "sub_exact_match"]
