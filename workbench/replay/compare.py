"""Compare two runs: align their steps, find where they first part ways, and measure the differences."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench import queries
from workbench.replay.align import align

if TYPE_CHECKING:
    from workbench.replay import Replay
    from workbench.store import Store

SAME, RESULT, ARGS, OTHER, ONLY_A, ONLY_B = (
    "same", "result differs", "args differ", "different", "only in A", "only in B")
OPS = (SAME, RESULT, ARGS, OTHER, ONLY_A, ONLY_B)
"""Pair kinds, from identical to unmatched."""
DIVERGING = frozenset({ARGS, OTHER, ONLY_A, ONLY_B})
"""Pair kinds where the two agents *did* something different (a different result alone is the world's doing)."""
PAIR_COLUMNS = ("op", "a_step_id", "a_seq", "a_kind", "a_what", "a_detail", "b_step_id", "b_seq", "b_kind",
                "b_what", "b_detail")
_SHOWN = 160  # characters of arguments shown in the side-by-side table


@dataclass
class Comparison:
    """Two runs aligned step by step."""

    a: Replay
    b: Replay
    pairs: pd.DataFrame
    """One row per aligned position: `op` (see `OPS`) and each side's step (NaN/None on a gap)."""
    distance: int
    """Edit cost of the alignment (0: same steps in the same order with the same arguments)."""
    first_divergence: int | None
    """Row of `pairs` where the runs first do something different, or None when they never do."""
    deltas: pd.DataFrame
    """metric, a, b, delta (b - a): steps, LLM calls, tool calls, errors, tokens, cost, duration."""
    banded: bool = False
    """True when the runs were so long that the alignment used a band (see `workbench.replay.align`)."""

    @property
    def outcomes(self) -> tuple[str | None, str | None]:
        return self.a.run.get("outcome"), self.b.run.get("outcome")

    def divergence_text(self) -> str:
        """One line saying where the runs part ways (plain text; it carries tool names from the traces)."""
        if self.first_divergence is None:
            return "The runs take the same steps in the same order."
        row = self.pairs.iloc[self.first_divergence]

        def side(p: str) -> str:
            if pd.isna(row[f"{p}_seq"]):
                return "nothing"
            return f"step {int(row[f'{p}_seq'])} {row[f'{p}_kind']} {row[f'{p}_what']}".rstrip()

        return (f"First divergence at aligned position {self.first_divergence + 1} ({row['op']}): "
                f"A {side('a')} · B {side('b')}")


_NEEDED = ("step_id", "seq", "kind", "key", "name", "detail", "signature", "result_hash")


def _lists(rp: Replay) -> dict[str, list]:
    # plain lists: a pandas cell lookup per pair would cost more than the whole alignment
    return {c: rp.steps[c].tolist() for c in _NEEDED} if len(rp.steps) else {c: [] for c in _NEEDED}


def _side(s: dict[str, list], idx: list[int], prefix: str) -> dict[str, list]:
    out: dict[str, list] = {f"{prefix}_{c}": [] for c in ("step_id", "seq", "kind", "what", "detail")}
    for i in idx:
        if i < 0:
            for col in out.values():
                col.append(None)
            continue
        out[f"{prefix}_step_id"].append(s["step_id"][i])
        out[f"{prefix}_seq"].append(s["seq"][i])
        out[f"{prefix}_kind"].append(s["kind"][i])
        name = s["name"][i]
        out[f"{prefix}_what"].append(s["key"][i] or (name if isinstance(name, str) else ""))
        detail = s["detail"][i]
        out[f"{prefix}_detail"].append(detail if len(detail) <= _SHOWN else detail[:_SHOWN] + "…")
    return out


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _ops(a: dict[str, list], b: dict[str, list], ia: list[int], ib: list[int]) -> list[str]:
    ops = []
    for i, j in zip(ia, ib, strict=True):
        if i < 0:
            ops.append(ONLY_B)
        elif j < 0:
            ops.append(ONLY_A)
        elif a["signature"][i] == b["signature"][j]:
            ra, rb = a["result_hash"][i], b["result_hash"][j]
            ops.append(SAME if (_missing(ra) and _missing(rb)) or ra == rb else RESULT)
        elif a["kind"][i] == b["kind"][j] and a["key"][i] == b["key"][j]:
            ops.append(ARGS)
        else:
            ops.append(OTHER)
    return ops


def _number(v: Any) -> float | None:
    return None if _missing(v) or v is pd.NA else float(v)


def _counts(rp: Replay) -> dict[str, float | None]:
    s, t = rp.steps, rp.totals()
    return {
        "steps": float(len(s)),
        "LLM calls": float((s["kind"] == "llm").sum()) if len(s) else 0.0,
        "tool calls": float(s["tool_name"].notna().sum()) if len(s) else 0.0,
        "errors": float(t["n_errors"]),
        "loop findings": float(rp.findings["category"].eq("loop").sum()) if len(rp.findings) else 0.0,
        "tokens": _number(t["tokens"]),
        "cost (USD)": _number(t["cost_usd"]),
        "duration (ms)": _number(t["duration_ms"]),
    }


def _deltas(a: Replay, b: Replay) -> pd.DataFrame:
    ca, cb = _counts(a), _counts(b)
    rows = [{"metric": k, "a": ca[k], "b": cb[k],
             "delta": None if ca[k] is None or cb[k] is None else cb[k] - ca[k]} for k in ca]
    return pd.DataFrame(rows).astype({"a": "float64", "b": "float64", "delta": "float64"})


def compare_runs(store: Store, run_a: str, run_b: str) -> Comparison | None:
    """Align the steps of two runs; None when either run does not exist.

    Example:
        >>> cmp = compare_runs(store, failed_id, nearest_success(store, failed_id))   # doctest: +SKIP
        >>> cmp.divergence_text(); cmp.pairs.query("op != 'same'"); cmp.deltas       # doctest: +SKIP
    """
    from workbench.replay import load_replay

    a, b = load_replay(store, run_a), load_replay(store, run_b)
    if a is None or b is None:
        return None
    return comparison_of(a, b)


def comparison_of(a: Replay, b: Replay) -> Comparison:
    """The comparison of two loaded replays (no database access)."""
    sa, sb = _lists(a), _lists(b)
    ka = [f"{k}|{y}" for k, y in zip(sa["kind"], sa["key"], strict=True)]
    kb = [f"{k}|{y}" for k, y in zip(sb["kind"], sb["key"], strict=True)]
    ops = align(sa["signature"], sb["signature"], ka, kb)
    ia, ib = ops.a.tolist(), ops.b.tolist()
    pairs = pd.DataFrame({"op": _ops(sa, sb, ia, ib), **_side(sa, ia, "a"), **_side(sb, ib, "b")},
                         columns=list(PAIR_COLUMNS))
    for c in ("a_seq", "b_seq"):
        pairs[c] = pd.array(pairs[c], dtype="Int64")
    diverging = pairs["op"].isin(DIVERGING).to_numpy().nonzero()[0]
    return Comparison(a=a, b=b, pairs=pairs, distance=ops.cost,
                      first_divergence=int(diverging[0]) if len(diverging) else None,
                      deltas=_deltas(a, b), banded=ops.banded)


# -- one pair in full ---------------------------------------------------------------------------------------
def payload_texts(step: dict[str, Any] | None) -> tuple[str, str]:
    """(arguments, result) of a step as readable text: a tool's pretty arguments and result, or the tool
    calls and answer in an LLM step's last message."""
    if step is None:
        return "", ""
    if step.get("tool_name"):
        return _pretty(step.get("tool_args")), str(step.get("tool_result") or "")
    try:
        messages = json.loads(step.get("messages") or "null")
    except ValueError:
        return "", str(step.get("messages") or "")
    last = messages[-1] if isinstance(messages, list) and messages and isinstance(messages[-1], dict) else {}
    calls = last.get("tool_calls") or []
    content = last.get("content")
    if content is not None and not isinstance(content, str):
        content = json.dumps(content, indent=2, ensure_ascii=False)
    return (json.dumps(calls, indent=2, ensure_ascii=False, sort_keys=True) if calls else ""), content or ""


def _pretty(raw: Any) -> str:
    if raw is None:
        return ""
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return str(raw)


def _diff(a: str, b: str, limit: int = 400) -> str:
    lines = list(difflib.unified_diff(a.splitlines(), b.splitlines(), "A", "B", lineterm="", n=2))
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more diff lines)"]
    return "\n".join(lines)


def pair_detail(store: Store, cmp: Comparison, row: int) -> dict[str, Any]:
    """Both steps of one aligned pair with their payloads, and unified diffs of arguments and results.

    Returns a dict: `a_step`, `b_step` (`queries.get_step` rows or None), `a_args`, `b_args`, `a_result`,
    `b_result` (text) and `args_diff`, `result_diff` (unified diff text, empty when equal).
    """
    pair = cmp.pairs.iloc[row]
    a_id, b_id = pair["a_step_id"], pair["b_step_id"]
    a_step = None if _missing(a_id) else queries.get_step(store, cmp.a.run_id, str(a_id))
    b_step = None if _missing(b_id) else queries.get_step(store, cmp.b.run_id, str(b_id))
    a_args, a_result = payload_texts(a_step)
    b_args, b_result = payload_texts(b_step)
    return {"a_step": a_step, "b_step": b_step, "a_args": a_args, "b_args": b_args, "a_result": a_result,
            "b_result": b_result, "args_diff": _diff(a_args, b_args), "result_diff": _diff(a_result, b_result)}
