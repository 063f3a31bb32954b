"""Budgets: cost, latency and token envelopes per agent, from a TOML file; runs outside them are flagged.

```toml
# budgets.toml (next to the database, or named by $WORKBENCH_BUDGETS)
[default]                       # for agents without their own section
max_duration_ms = 600_000

[agents.support-agent]
max_cost_usd = 0.02
max_duration_ms = 300_000

[agents.coding-agent]
max_cost_usd = 0.60
max_tokens = 250_000
```
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workbench.queries import RunFilter, _where
from workbench.store import Store


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_cost_usd: float | None = Field(None, ge=0)
    max_duration_ms: float | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=0)
    """Input plus output tokens of the run."""


class Budgets(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    default: Envelope | None = None
    agents: dict[str, Envelope] = Field(default_factory=dict)

    def envelope(self, agent: str | None) -> Envelope | None:
        return self.agents.get(agent or "", self.default)


class BudgetError(ValueError):
    """A budgets file that cannot be used; the message says where and why."""


def load_budgets(path: str | Path) -> Budgets:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return Budgets.model_validate(data)
    except OSError as exc:
        raise BudgetError(f"{path}: cannot read the file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BudgetError(f"{path}: not valid TOML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BudgetError(f"{path}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


def budgets_path(db_path: str | Path) -> Path:
    """Where the app looks for budgets: `$WORKBENCH_BUDGETS`, else `budgets.toml` next to the database."""
    env = os.environ.get("WORKBENCH_BUDGETS")
    return Path(env) if env else Path(db_path).resolve().parent / "budgets.toml"


def budget_breaches(store: Store, budgets: Budgets, flt: RunFilter | None = None) -> pd.DataFrame:
    """Runs outside their agent's envelope: run facts, the limits, and over_cost / over_duration / over_tokens."""
    agents = sorted(budgets.agents)
    env = [budgets.agents[a] for a in agents]
    d = budgets.default or Envelope()
    where, params = _where(flt or RunFilter())
    params.update(
        b_agents=agents, b_cost=[e.max_cost_usd for e in env], b_dur=[e.max_duration_ms for e in env],
        b_tok=[e.max_tokens for e in env], d_cost=d.max_cost_usd, d_dur=d.max_duration_ms, d_tok=d.max_tokens)
    return store.df(f"""
        WITH e AS (SELECT unnest($b_agents::VARCHAR[]) AS agent, unnest($b_cost::DOUBLE[]) AS max_cost_usd,
                          unnest($b_dur::DOUBLE[]) AS max_duration_ms, unnest($b_tok::BIGINT[]) AS max_tokens),
        r AS (SELECT run_id, agent, agent_version, started_at, outcome, cost_usd, duration_ms,
                     CASE WHEN input_tokens IS NULL AND output_tokens IS NULL THEN NULL
                          ELSE coalesce(input_tokens, 0) + coalesce(output_tokens, 0) END AS tokens
              FROM runs {where}),
        j AS (SELECT r.*,
                CASE WHEN e.agent IS NULL THEN CAST($d_cost AS DOUBLE) ELSE e.max_cost_usd END AS max_cost_usd,
                CASE WHEN e.agent IS NULL THEN CAST($d_dur AS DOUBLE) ELSE e.max_duration_ms END AS max_duration_ms,
                CASE WHEN e.agent IS NULL THEN CAST($d_tok AS BIGINT) ELSE e.max_tokens END AS max_tokens
              FROM r LEFT JOIN e USING (agent)),
        f AS (SELECT *, coalesce(cost_usd > max_cost_usd, false) AS over_cost,
                     coalesce(duration_ms > max_duration_ms, false) AS over_duration,
                     coalesce(tokens > max_tokens, false) AS over_tokens FROM j)
        SELECT * FROM f WHERE over_cost OR over_duration OR over_tokens
        ORDER BY started_at DESC NULLS LAST, run_id""", params)


def budget_summary(store: Store, budgets: Budgets, flt: RunFilter | None = None) -> pd.DataFrame:
    """Per agent: runs, runs over each limit, and the share of runs outside the envelope."""
    breaches = budget_breaches(store, budgets, flt)
    where, params = _where(flt or RunFilter())
    totals = store.df(f"SELECT agent, count(*) AS runs FROM runs {where} GROUP BY agent", params)
    over = breaches.groupby("agent", dropna=False).agg(
        over_cost=("over_cost", "sum"), over_duration=("over_duration", "sum"), over_tokens=("over_tokens", "sum"),
        outside=("run_id", "size")).reset_index()
    out = totals.merge(over, on="agent", how="left").fillna(
        {"over_cost": 0, "over_duration": 0, "over_tokens": 0, "outside": 0})
    for c in ("over_cost", "over_duration", "over_tokens", "outside"):
        out[c] = out[c].astype("int64")
    out["share_outside"] = out["outside"] / out["runs"]
    out["has_budget"] = [budgets.envelope(a) is not None for a in out["agent"]]
    return out.sort_values("agent", na_position="last").reset_index(drop=True)
