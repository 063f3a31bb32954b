"""Versioned price table used to estimate cost when a trace has tokens but no (or zero) cost.

Estimated costs are always marked (`cost_estimated = true`), never mixed silently with reported ones.
Override or extend the table with a JSON file named by `$WORKBENCH_PRICES`:
``{"version": "team-2026-11", "models": {"my-model": {"input": 1.0, "output": 4.0, "cache": 0.1}}}``
(US dollars per million tokens).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

PRICE_TABLE_VERSION = "2026-11-01"


@dataclass(frozen=True)
class Price:
    input: float
    """USD per million input (prompt) tokens, cache reads excluded."""
    output: float
    """USD per million output tokens (reasoning tokens are billed as output)."""
    cache: float
    """USD per million cached input tokens read."""


_BUILTIN: dict[str, Price] = {
    "gpt-4.1": Price(2.00, 8.00, 0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
    "gpt-4.1-nano": Price(0.10, 0.40, 0.025),
    "gpt-4o": Price(2.50, 10.00, 1.25),
    "gpt-4o-mini": Price(0.15, 0.60, 0.075),
    "gpt-5": Price(1.25, 10.00, 0.125),
    "gpt-5-mini": Price(0.25, 2.00, 0.025),
    "o4-mini": Price(1.10, 4.40, 0.275),
    "claude-opus-4-1": Price(15.00, 75.00, 1.50),
    "claude-sonnet-4-5": Price(3.00, 15.00, 0.30),
    "claude-haiku-4-5": Price(1.00, 5.00, 0.10),
    "claude-3-5-sonnet": Price(3.00, 15.00, 0.30),
    "gemini-2.5-pro": Price(1.25, 10.00, 0.31),
    "gemini-2.5-flash": Price(0.30, 2.50, 0.075),
}


def price_table() -> tuple[str, dict[str, Price]]:
    """The built-in table, overlaid with `$WORKBENCH_PRICES` when set. Returns (version, prices)."""
    table = dict(_BUILTIN)
    version = PRICE_TABLE_VERSION
    extra = os.environ.get("WORKBENCH_PRICES")
    if extra:
        data = json.loads(Path(extra).read_text(encoding="utf-8"))
        version = f"{version}+{data.get('version', Path(extra).name)}"
        for model, p in data.get("models", {}).items():
            table[model.lower()] = Price(float(p["input"]), float(p["output"]), float(p.get("cache", p["input"])))
    return version, table


def lookup(model: str | None, table: dict[str, Price] | None = None) -> Price | None:
    """Find a model's price, tolerating provider prefixes and dated suffixes (`openai/gpt-4o-2024-08-06`)."""
    if not model:
        return None
    table = table if table is not None else price_table()[1]
    name = model.lower().rsplit("/", 1)[-1]
    if name in table:
        return table[name]
    # longest known name that prefixes the model, so "gpt-4o-mini-2024" maps to gpt-4o-mini, not gpt-4o
    best = max((k for k in table if name.startswith(k)), key=len, default=None)
    return table[best] if best else None


def estimate(model: str | None, input_tokens: int | None, output_tokens: int | None,
             cache_tokens: int | None = None, table: dict[str, Price] | None = None) -> float | None:
    """Estimated USD cost of one call, or None when the model is unknown or no tokens were recorded."""
    price = lookup(model, table)
    if price is None or (input_tokens is None and output_tokens is None):
        return None
    cached = cache_tokens or 0
    fresh = max((input_tokens or 0) - cached, 0)
    return (fresh * price.input + cached * price.cache + (output_tokens or 0) * price.output) / 1e6
