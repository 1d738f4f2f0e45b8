"""Many questions through the pipeline at once: `run_questions` keeps N in flight, hands each result over
as it finishes and again in input order, and on Ctrl-C gives the partial result of each question still in
flight. A question that raises becomes a failed result; the others go on. The `run --concurrency` command
and the dataflow benchmark drive it; the per-server caps are pipeline.batch's.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Protocol, Sequence

from .batch import concurrent_map

if TYPE_CHECKING:
    from .result import PipelineResult


class QuestionPipeline(Protocol):
    """What run_questions needs of a pipeline (a Pipeline; `interrupted_result` is read when it has one)."""

    def run(self, question: str) -> PipelineResult: ...


@dataclass
class Outcome:
    n: int  # 1-based position in the input
    question: str
    result: PipelineResult  # an unexpected exception becomes a result with `error` set


def failed_result(question: str, e: BaseException) -> PipelineResult:
    """The result of a question whose run raised `e`."""
    from .result import PipelineResult

    return PipelineResult(original_query=question, error={"type": type(e).__name__, "message": str(e)[:2000]})


def run_questions(
    make_pipeline: Callable[[int], QuestionPipeline],
    questions: Sequence[str],
    concurrency: int,
    *,
    on_finished: Callable[[Outcome], None] | None = None,
    on_ordered: Callable[[Outcome], None] | None = None,
    on_interrupted: Callable[[Outcome], None] | None = None,
    stop: threading.Event | None = None,
) -> list[Outcome]:
    """Answer `questions` with `concurrency` in flight; `make_pipeline(n)` gives question n its pipeline.
    `on_finished` runs as each finishes (completion order), `on_ordered` in input order; both in the calling
    thread. On Ctrl-C, `on_interrupted` gets each question in flight with its partial result (input order),
    then KeyboardInterrupt propagates. Returns the finished outcomes in input order."""
    finished: dict[int, Outcome] = {}
    started: dict[int, QuestionPipeline] = {}  # question number -> its pipeline
    returned: dict[int, PipelineResult] = {}  # question number -> its result, once run() returned
    state = {"next": 1}

    def release() -> None:
        while state["next"] in finished:
            if on_ordered is not None:
                on_ordered(finished[state["next"]])
            state["next"] += 1

    def answer(item: tuple[int, str]) -> PipelineResult:
        n, question = item
        pipeline = started[n] = make_pipeline(n)
        result = returned[n] = pipeline.run(question)
        return result

    def done(_i: int, item: tuple[int, str], result: PipelineResult | None, err: BaseException | None) -> None:
        n, question = item
        result = failed_result(question, err) if err is not None else result
        if result is None:  # concurrent_map hands over run()'s result whenever run() did not raise
            raise RuntimeError(f"no result for question {n}")
        out = Outcome(n, question, result)
        finished[n] = out
        if on_finished is not None:
            on_finished(out)
        release()

    try:
        concurrent_map(answer, list(enumerate(questions, 1)), concurrency, done, stop=stop)
    except KeyboardInterrupt:
        questions_by_n = dict(enumerate(questions, 1))
        for n in sorted(set(returned) - set(finished)):  # answered, not yet collected: finished all the same
            finished[n] = Outcome(n, questions_by_n[n], returned[n])
            if on_finished is not None:
                on_finished(finished[n])
        for n in sorted(finished):  # finished behind an unfinished one: still printed, in order
            if n >= state["next"] and on_ordered is not None:
                on_ordered(finished[n])
        if on_interrupted is not None:
            in_flight = {n: started[n] for n in sorted(set(started) - set(finished))}
            _hand_over_partial(in_flight, questions_by_n, on_interrupted)
        raise
    return [finished[n] for n in sorted(finished)]


def _hand_over_partial(
    in_flight: dict[int, QuestionPipeline], questions_by_n: dict[int, str], on_interrupted: Callable[[Outcome], None]
) -> None:
    """After Ctrl-C: each question still in flight with what it has computed (Pipeline.interrupted_result)."""
    for n, pipeline in in_flight.items():
        try:  # the worker still runs: one partial result that cannot be read must not lose the others
            partial = getattr(pipeline, "interrupted_result", lambda: None)()
            if partial is not None:
                on_interrupted(Outcome(n, questions_by_n[n], partial))
        except Exception:  # noqa: BLE001
            continue


__all__ = ["Outcome", "QuestionPipeline", "failed_result", "run_questions"]
