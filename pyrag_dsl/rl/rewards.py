"""verl's custom reward function for the four PyRAG data sources.

verl 0.9.1: `reward.custom_reward_function.path=pkg://pyrag_dsl.rl.rewards` and `.name=compute_score`;
`reward.custom_reward_function.reward_kwargs` reach every call as keyword arguments (see settings.py).

Every data source returns the same keys, so batches that mix sources log cleanly:
`score, f1, em, pred, error_kind, calls, retried, num_sub_queries`. `error_kind` is "" on success.
Nothing here raises or hangs: any failure scores 0 with its kind, a rollout over `MAX_ROLLOUT_CHARS`
scores 0 with `rollout_too_long`, and a plan/decompose rollout that runs past
`RewardSettings.rollout_timeout_s` scores 0 with `RolloutTimeout`. When a reward returns, the rollout's
deadline is cancelled: a request still in flight ends with its own HTTP timeout, and no new one is sent.
No signals: safe in any thread of any process.
"""

from __future__ import annotations

import math
import numbers
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..agents.answer import extract_answer
from ..config.deadline import Deadline
from .scores import answer_score, result
from .settings import RewardSettings, SettingsError

ANSWER_WITH_DOCS = "pyrag_answer_with_docs"
ANSWER_NO_DOCS = "pyrag_answer_no_docs"
PLAN = "pyrag_plan"
DECOMPOSE = "pyrag_decompose"
DATA_SOURCES = (ANSWER_WITH_DOCS, ANSWER_NO_DOCS, PLAN, DECOMPOSE)

MAX_ROLLOUT_CHARS = 65_536  # far above any response length verl samples; bounds every reward's text work
MAX_GOLD_DEPTH = 4  # lists of golds nested deeper than this are not read
_OPEN, _CLOSE = re.compile("<answer>", re.I), re.compile("</answer>", re.I)


def golds_of(ground_truth: Any) -> list[str]:
    """The gold answers from a parquet ground truth: a string, a (nested) list/array of strings, or
    {"target": [...]}. Nested lists are flattened; None, blanks, NaN and infinities are no gold."""
    if isinstance(ground_truth, Mapping):
        ground_truth = ground_truth.get("target", ground_truth.get("golden_answers", []))
    out: list[str] = []
    _add_golds(ground_truth, 0, out)
    return out


def _add_golds(item: Any, depth: int, out: list[str]) -> None:
    if item is None or isinstance(item, Mapping) or depth > MAX_GOLD_DEPTH:
        return
    if isinstance(item, bytes):
        item = item.decode("utf-8", errors="replace")
    if isinstance(item, Iterable) and not isinstance(item, str):
        try:
            items = list(item)
        except TypeError:  # a 0-d numpy array says it is iterable
            items = None
        if items is not None:
            for x in items:
                _add_golds(x, depth + 1, out)
            return
    if isinstance(item, numbers.Real) and not isinstance(item, numbers.Integral) and not math.isfinite(item):
        return
    text = str(item)
    if text.strip():
        out.append(text)


def has_answer_span(text: str) -> bool:
    """Whether `text` holds a closed <answer>...</answer> span, in linear time: a closing tag exists after the
    first opening one (any later opening tag closes at or after that same closing tag)."""
    opening = _OPEN.search(text)
    return opening is not None and _CLOSE.search(text, opening.end()) is not None


def answer_reward(solution_str: str, golds: list[str]) -> dict[str, Any]:
    """The Answer agent's rollout: 0 without an <answer>...</answer> span, else 0.7 F1 + 0.3 EM of the
    answer as inference reads it (`extract_answer`: the first span's first line)."""
    if not has_answer_span(solution_str):
        return result(error_kind="no_answer_tag")
    pred = extract_answer(solution_str)
    score, f1, em = answer_score(pred, golds)
    return result(score, f1=f1, em=em, pred=pred)


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    **reward_kwargs: Any,
) -> dict[str, Any]:
    """verl's entry point: route by data source; never raises."""
    try:
        golds = golds_of(ground_truth)
        if not golds:
            return result(error_kind="no_gold")
        solution_str = "" if solution_str is None else str(solution_str)
        if len(solution_str) > MAX_ROLLOUT_CHARS:
            return result(error_kind="rollout_too_long")
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
        return run_guarded(
            lambda deadline: fn(solution_str, golds, question, settings, deadline), settings.rollout_timeout_s
        )
    except SettingsError as e:
        return result(error_kind=f"SettingsError: {e}"[:200])
    except Exception as e:  # noqa: BLE001 - a reward must never take the trainer down
        return result(error_kind=f"InternalError:{type(e).__name__}")


@dataclass(frozen=True)
class RolloutDeadline(Deadline):
    """The deadline of one rollout's requests; `cancel()` ends it at once."""

    stopped: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)

    @classmethod
    def starting_now(cls, seconds: float) -> RolloutDeadline:
        """The deadline `seconds` from now (Deadline.after, typed for a rollout's deadline, which always has one)."""
        return cls(seconds, time.monotonic() + seconds)

    def cancel(self) -> None:
        self.stopped.set()

    def remaining(self) -> float:
        return 0.0 if self.stopped.is_set() else super().remaining()


def run_guarded(fn: Callable[[Deadline], dict[str, Any]], timeout_s: float) -> dict[str, Any]:
    """`fn(deadline)` in a daemon thread, where `deadline` ends `timeout_s` from now and is cancelled when this
    returns (the rollout's requests go under it: `endpoints`). A zero score with `RolloutTimeout` when `fn` is
    not done in `timeout_s`, `InternalError:<type>` when it raises."""
    deadline = RolloutDeadline.starting_now(timeout_s)
    box: list[dict[str, Any]] = []
    done = threading.Event()

    def target() -> None:
        try:
            box.append(fn(deadline))
        except BaseException as e:  # noqa: BLE001
            box.append(result(error_kind=f"InternalError:{type(e).__name__}"))
        finally:
            done.set()

    threading.Thread(target=target, name="pyrag-reward", daemon=True).start()
    done.wait(timeout_s)
    out_of_time = deadline.remaining() <= 0
    deadline.cancel()  # whatever the rollout still runs sends nothing more
    if not done.is_set() or (out_of_time and box[0].get("error_kind")):
        return result(error_kind="RolloutTimeout")  # a request failing at the deadline is the deadline's doing
    return box[0]


__all__ = [
    "DATA_SOURCES",
    "MAX_ROLLOUT_CHARS",
    "RolloutDeadline",
    "answer_reward",
    "answer_score",
    "compute_score",
    "golds_of",
    "has_answer_span",
    "result",
    "run_guarded",
]
