"""Judge criteria: a pluggable callable, and a built-in judge for an OpenAI-compatible HTTP endpoint.

Judges are off by default. A rubric can declare judge criteria, but nothing is ever sent anywhere unless the
caller passes a judge to `score_runs(..., judges={"default": judge})`; a rubric file alone cannot make the
workbench call out. Without a judge, judge criteria are reported as not scored.

A judge is any callable `JudgeRequest -> JudgeResult` (a `name` attribute, if present, is stored with the
scores). `HttpJudge` posts one chat completion per run and records what the call cost.

Example:
    >>> judge = HttpJudge("http://127.0.0.1:8000/v1", "gpt-4.1-mini", api_key_env="KEY")   # doctest: +SKIP
    >>> score_runs(store, rubric, judges={"default": judge})                    # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol

from workbench import pricing


@dataclass(frozen=True)
class JudgeRequest:
    """What a judge sees of one run: the criterion's question and a compact transcript (no outcome, so the
    judge cannot copy the label it is compared against)."""

    criterion_id: str
    prompt: str
    scale: str
    """pass_fail or 1-5."""
    run: dict[str, Any]
    """run_id, agent, agent_version, task_id, input, output."""
    transcript: str


@dataclass(frozen=True)
class JudgeResult:
    value: float | None
    """1/0 on the pass/fail scale, 1-5 on the 1-5 scale; None when the judge could not decide."""
    passed: bool | None = None
    """Leave None to derive it from value and the criterion's scale."""
    explanation: str = ""
    cost_usd: float | None = None
    """What producing this score cost; stored with the score."""


class Judge(Protocol):
    def __call__(self, request: JudgeRequest) -> JudgeResult: ...


def judge_name(judge: Any) -> str:
    return str(getattr(judge, "name", None) or getattr(judge, "__name__", None) or type(judge).__name__)


def judge_config(judge: Any) -> dict[str, Any]:
    """The configuration stored with each score (never a secret)."""
    describe = getattr(judge, "describe", None)
    return describe() if callable(describe) else {}


_SYSTEM = (
    "You grade one run of an AI agent against one criterion. Reply with a JSON object only: "
    '{"score": <number>, "reason": "<one sentence>"}. On the pass_fail scale score is 1 (meets the criterion) '
    "or 0 (does not). On the 1-5 scale score is 1 (very poor) to 5 (excellent)."
)


class JudgeError(RuntimeError):
    """The judge endpoint failed or answered something that is not a score."""


class HttpJudge:
    """A judge behind an OpenAI-compatible `/chat/completions` endpoint.

    Args:
        base_url: e.g. `http://127.0.0.1:8000/v1` or `https://api.openai.com/v1` (http or https only).
        model: the model name sent with each request; also used to price the call.
        api_key: the key itself, or
        api_key_env: the name of the environment variable holding it (read at call time, never stored).
        timeout: seconds per request.
        price: USD per million (input, output) tokens, overriding the workbench price table.
        max_transcript_chars: how much of the run is sent.
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, api_key_env: str | None = None,
                 timeout: float = 30.0, price: tuple[float, float] | None = None,
                 max_transcript_chars: int = 8000, name: str = "http"):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"judge base_url must be an http(s) URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.price = price
        self.max_transcript_chars = max_transcript_chars
        self.name = name

    def describe(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "model": self.model, "price": self.price}

    def _key(self) -> str | None:
        return self._api_key or (os.environ.get(self.api_key_env) if self.api_key_env else None)

    def __call__(self, request: JudgeRequest) -> JudgeResult:
        user = (f"Criterion ({request.scale}): {request.prompt}\n\n"
                f"Task input:\n{request.run.get('input') or ''}\n\n"
                f"Final output:\n{request.run.get('output') or ''}\n\n"
                f"Steps:\n{request.transcript[: self.max_transcript_chars]}")
        body = {"model": self.model, "temperature": 0, "response_format": {"type": "json_object"},
                "messages": [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]}
        headers = {"Content-Type": "application/json"}
        if key := self._key():
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(f"{self.base_url}/chat/completions", data=json.dumps(body).encode(),
                                     headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - scheme checked above
                answer = json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise JudgeError(f"judge endpoint answered HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise JudgeError(f"judge endpoint unreachable: {getattr(exc, 'reason', exc)}") from None
        except ValueError:
            raise JudgeError("judge endpoint did not answer JSON") from None
        cost = self._cost(answer.get("usage") or {})
        try:
            content = answer["choices"][0]["message"]["content"]
            verdict = json.loads(content)
            value = float(verdict["score"])
        except (KeyError, IndexError, TypeError, ValueError):
            return JudgeResult(None, None, "judge reply is not a score: " + str(answer)[:200], cost)
        return JudgeResult(value, None, str(verdict.get("reason", ""))[:500], cost)

    def _cost(self, usage: dict[str, Any]) -> float | None:
        tin, tout = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if tin is None and tout is None:
            return None
        if self.price is not None:
            return ((tin or 0) * self.price[0] + (tout or 0) * self.price[1]) / 1e6
        return pricing.estimate(self.model, tin, tout)
