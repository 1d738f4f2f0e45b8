"""A reward's score and the dict every data source returns (rewards.py and program_rewards.py both use them)."""

from __future__ import annotations

from typing import Any

from ..eval.metrics import exact_match, f1_score

F1_WEIGHT, EM_WEIGHT = 0.7, 0.3


def answer_score(pred: str, golds: list[str]) -> tuple[float, float, float]:
    """(score, f1, em) with score = 0.7 F1 + 0.3 EM, each the maximum over the golds."""
    f1, em = f1_score(pred, golds), exact_match(pred, golds)
    return F1_WEIGHT * f1 + EM_WEIGHT * em, f1, em


def result(
    score: float = 0.0,
    *,
    f1: float = 0.0,
    em: float = 0.0,
    pred: str = "",
    error_kind: str = "",
    calls: int = 0,
    retried: bool = False,
    num_sub_queries: int = 0,
) -> dict[str, Any]:
    return {
        "score": float(score),
        "f1": float(f1),
        "em": float(em),
        "pred": str(pred),
        "error_kind": error_kind,
        "calls": int(calls),
        "retried": int(bool(retried)),
        "num_sub_queries": int(num_sub_queries),
    }


__all__ = ["EM_WEIGHT", "F1_WEIGHT", "answer_score", "result"]
