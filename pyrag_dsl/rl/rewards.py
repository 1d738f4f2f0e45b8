"""verl's custom reward function for the four PyRAG data sources.

verl 0.9.1: `reward.custom_reward_function.path=pkg://pyrag_dsl.rl.rewards` and `.name=compute_score`;
`reward.custom_reward_function.reward_kwargs` reach every call as keyword arguments (see settings.py).

Every data source returns the same keys, so batches that mix sources log cleanly:
`score, f1, em, pred, error_kind, calls, retried, num_sub_queries`. `error_kind` is "" on success.
Nothing here raises or hangs: any failure scores 0 with its kind, and a rollout that runs past
`RewardSettings.rollout_timeout_s` scores 0 with `RolloutTimeout` (its worker thread is abandoned and
ends with its own HTTP timeouts). No signals: safe in any thread of any process.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Callable, Mapping

from ..agents.answer import extract_answer
from ..eval.metrics import exact_match, f1_score
from .settings import RewardSettings, SettingsError

ANSWER_WITH_DOCS = "pyrag_answer_with_docs"
ANSWER_NO_DOCS = "pyrag_answer_no_docs"
PLAN = "pyrag_plan"
DECOMPOSE = "pyrag_decompose"
DATA_SOURCES = (ANSWER_WITH_DOCS, ANSWER_NO_DOCS, PLAN, DECOMPOSE)

_ANSWER_SPAN = re.compile(r"<answer>.*?</answer>", re.S | re.I)
F1_WEIGHT, EM_WEIGHT = 0.7, 0.3


def golds_of(ground_truth: Any) -> list[str]:
    """The gold answers from a parquet ground truth: a string, a list/array of strings, or {"target": [...]}."""
    if isinstance(ground_truth, Mapping):
        ground_truth = ground_truth.get("target", ground_truth.get("golden_answers", []))
    if isinstance(ground_truth, (str, bytes)):
        ground_truth = [ground_truth]
    try:
        items = list(ground_truth)
    except TypeError:
        items = [ground_truth]
    return [g.decode() if isinstance(g, bytes) else str(g) for g in items if g is not None and str(g).strip()]


def answer_score(pred: str, golds: list[str]) -> tuple[float, float, float]:
    """(score, f1, em) with score = 0.7 F1 + 0.3 EM, each the maximum over the golds."""
    f1, em = f1_score(pred, golds), exact_match(pred, golds)
    return F1_WEIGHT * f1 + EM_WEIGHT * em, f1, em


def result(score: float = 0.0, *, f1: float = 0.0, em: float = 0.0, pred: str = "", error_kind: str = "",
           calls: int = 0, retried: bool = False, num_sub_queries: int = 0) -> dict[str, Any]:
    return {"score": float(score), "f1": float(f1), "em": float(em), "pred": str(pred), "error_kind": error_kind,
            "calls": int(calls), "retried": int(bool(retried)), "num_sub_queries": int(num_sub_queries)}


def answer_reward(solution_str: str, golds: list[str]) -> dict[str, Any]:
    """The Answer agent's rollout: 0 without an <answer>...</answer> span, else 0.7 F1 + 0.3 EM of the
    answer as inference reads it (`extract_answer`: the first span's first line)."""
    if not _ANSWER_SPAN.search(solution_str or ""):
        return result(error_kind="no_answer_tag")
    pred = extract_answer(solution_str)
    score, f1, em = answer_score(pred, golds)
    return result(score, f1=f1, em=em, pred=pred)


def compute_score(data_source: str, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None,
                  **reward_kwargs: Any) -> dict[str, Any]:
    """verl's entry point: route by data source; never raises."""
    try:
        golds = golds_of(ground_truth)
        if not golds:
            return result(error_kind="no_gold")
        source = str(data_source)
        if source in (ANSWER_WITH_DOCS, ANSWER_NO_DOCS):
            return answer_reward(solution_str, golds)
        if source not in (PLAN, DECOMPOSE):
            return result(error_kind="unknown_data_source")
        info = dict(extra_info or {})
        settings = RewardSettings.resolve(reward_kwargs, info)
        from .program_rewards import decompose_reward, plan_reward

        fn = plan_reward if source == PLAN else decompose_reward
        question = str(info.get("question") or "")
        return run_guarded(lambda: fn(solution_str, golds, question, settings), settings.rollout_timeout_s)
    except SettingsError as e:
        return result(error_kind=f"SettingsError: {e}"[:200])
    except Exception as e:  # noqa: BLE001 - a reward must never take the trainer down
        return result(error_kind=f"InternalError:{type(e).__name__}")


def run_guarded(fn: Callable[[], dict[str, Any]], timeout_s: float) -> dict[str, Any]:
    """`fn()` in a daemon thread; a zero score with `RolloutTimeout` when it is not done in `timeout_s`,
    `InternalError:<type>` when it raises."""
    box: list[dict[str, Any]] = []
    done = threading.Event()

    def target() -> None:
        try:
            box.append(fn())
        except BaseException as e:  # noqa: BLE001
            box.append(result(error_kind=f"InternalError:{type(e).__name__}"))
        finally:
            done.set()

    threading.Thread(target=target, name="pyrag-reward", daemon=True).start()
    if not done.wait(timeout_s):
        return result(error_kind="RolloutTimeout")
    return box[0]


__all__ = ["DATA_SOURCES", "answer_reward", "answer_score", "compute_score", "golds_of", "result", "run_guarded"]
