"""Which recorded scores say whether a run succeeded.

Observability tools attach judge scores and user feedback to traces, but most of them measure something
else than success: a `toxicity` or `hallucination` of 0.8 is bad, a `helpfulness` of 0.8 is good, and neither
says the task was done. Only scores whose name states success or correctness set a run's outcome; all the
others are kept as they are in the run's attributes for review.
"""

from __future__ import annotations

from typing import Any

# names (lower case, `-`/space as `_`) whose value is "did the run succeed", higher = better, 0..1
OUTCOME_SCORE_NAMES = ("correctness", "correct", "success", "task_success", "resolved", "pass", "passed",
                       "accuracy", "user_score")
SUCCESS_THRESHOLD = 0.5


def _key(name: Any) -> str:
    return str(name).strip().lower().replace("-", "_").replace(" ", "_")


def outcome_of_scores(scores: dict[str, Any]) -> tuple[str, float | None]:
    """(outcome, score) from named scores: the first outcome-like name present decides; else ("unknown", None).

    >>> outcome_of_scores({"toxicity": 0.0, "correctness": 1})
    ('success', 1.0)
    """
    by_key = {_key(k): v for k, v in scores.items()}
    for name in OUTCOME_SCORE_NAMES:
        value = by_key.get(name)
        if isinstance(value, bool):
            value = float(value)
        try:
            score = float(value)
        except (TypeError, ValueError):
            continue
        return ("success" if score >= SUCCESS_THRESHOLD else "failure"), score
    return "unknown", None
