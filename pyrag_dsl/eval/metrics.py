"""Answer and retrieval metrics, with the same definitions as FlashRAG's evaluator.

* ``normalize_answer``: lower-case, drop ASCII punctuation, drop the articles a/an/the, collapse
  white space.
* ``exact_match``: 1.0 when the normalised prediction equals some normalised gold answer.
* ``f1_score``: token-level F1, the maximum over gold answers; a pair where either side normalises
  to ``yes``/``no``/``noanswer`` and the two differ scores 0.
* ``accuracy`` (FlashRAG's ``acc``, class ``Sub_ExactMatch``): 1.0 when some normalised gold answer
  is a substring of the normalised prediction.
* ``retrieval_recall``: 1.0 when every supporting title is among the retrieved titles.

Gold answers may be one string or a sequence of strings. These functions are pure and cheap; the RL
rewards reuse them.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from typing import Iterable, Sequence, Union

__all__ = [
    "Golds",
    "normalize_answer",
    "exact_match",
    "f1_score",
    "precision_recall_f1",
    "accuracy",
    "sub_exact_match",
    "retrieval_recall",
    "score",
]

Golds = Union[str, Sequence[str]]

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SPECIAL = ("yes", "no", "noanswer")


def normalize_answer(text: str) -> str:
    """Lower-case, remove punctuation, remove a/an/the, collapse white space (FlashRAG/SQuAD)."""
    text = str(text).lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _gold_list(golds: Golds) -> list[str]:
    if isinstance(golds, str):
        return [golds]
    if golds is None:
        raise TypeError("gold answers are None; expected a string or a list of strings")
    return [str(g) for g in golds]


def exact_match(prediction: str, golds: Golds) -> float:
    """1.0 if the normalised prediction equals a normalised gold answer, else 0.0."""
    pred = normalize_answer(prediction)
    return 1.0 if any(normalize_answer(g) == pred for g in _gold_list(golds)) else 0.0


def accuracy(prediction: str, golds: Golds) -> float:
    """FlashRAG's ``acc`` (sub-EM): 1.0 if a normalised gold is contained in the normalised prediction."""
    pred = normalize_answer(prediction)
    return 1.0 if any(normalize_answer(g) in pred for g in _gold_list(golds)) else 0.0


sub_exact_match = accuracy


def precision_recall_f1(prediction: str, golds: Golds) -> dict[str, float]:
    """Token-level precision, recall and F1, each the maximum over gold answers (FlashRAG's rules)."""
    best = {"f1": 0.0, "precision": 0.0, "recall": 0.0}
    pred = normalize_answer(prediction)
    pred_tokens = pred.split()
    for gold in _gold_list(golds):
        norm_gold = normalize_answer(gold)
        if (pred in _SPECIAL or norm_gold in _SPECIAL) and pred != norm_gold:
            continue
        gold_tokens = norm_gold.split()
        same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
        if same == 0:
            continue
        precision = same / len(pred_tokens)
        recall = same / len(gold_tokens)
        f1 = 2 * precision * recall / (precision + recall)
        best["f1"] = max(best["f1"], f1)
        best["precision"] = max(best["precision"], precision)
        best["recall"] = max(best["recall"], recall)
    return best


def f1_score(prediction: str, golds: Golds) -> float:
    """Token-level F1, the maximum over gold answers; yes/no/noanswer mismatches score 0."""
    return precision_recall_f1(prediction, golds)["f1"]


def _title_key(title: str) -> str:
    return " ".join(str(title).split()).casefold()


def retrieval_recall(supporting_titles: Iterable[str], retrieved_titles: Iterable[str]) -> float | None:
    """1.0 if every supporting title is among the retrieved titles (case and spacing ignored).

    ``None`` when there are no supporting titles (the metric does not apply to that row).
    """
    wanted = {_title_key(t) for t in supporting_titles if str(t).strip()}
    if not wanted:
        return None
    got = {_title_key(t) for t in retrieved_titles}
    return 1.0 if wanted <= got else 0.0


def score(prediction: str | None, golds: Golds) -> dict[str, float]:
    """All answer metrics for one prediction: ``{"em", "f1", "acc"}``. ``None`` scores as ""."""
    pred = "" if prediction is None else str(prediction)
    return {
        "em": exact_match(pred, golds),
        "f1": f1_score(pred, golds),
        "acc": accuracy(pred, golds),
    }
