"""Loaders turn one trace file into staged steps and runs; a registry finds the right one by sniffing.

A loader is small:

```python
class MyLoader:
    name = "my-format"
    def sniff(self, path: Path, head: bytes) -> bool: ...
    def stage(self, cur, path: Path, ctx: StageContext) -> list[Reject]: ...
```

`stage` fills the session's staging tables (`_stage_steps`, and `_stage_runs` for run-level fields; see
`workbench.store.merge`) inside the ingest transaction and returns what it could not read. Heavy formats do
this in DuckDB SQL; Python loaders build `Run`/`Step` models and hand them to `StageContext.add`.
A loader may also define `not_trace(path, head) -> str | None` to recognize companion files of its format
that are not traces (Langfuse's `*.chatml.json` renderings): an ingest lists those as skipped, with the reason.
Built-in loaders register through the same entry-point group (`workbench.loaders`) a plugin package uses.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import duckdb

from workbench.models import Reject

HEAD_BYTES = 64 * 1024


@dataclass
class StageContext:
    """What a loader needs to know about the ingest it is part of."""

    import_id: str
    path: Path
    max_record_bytes: int = 16 * 1024 * 1024
    """Records (lines, documents) larger than this are rejected instead of loaded."""
    options: dict[str, Any] = field(default_factory=dict)
    """Loader options from the caller, e.g. ``{"mapping": Path("my.toml")}`` for the generic loader."""


@runtime_checkable
class Loader(Protocol):
    name: str

    def sniff(self, path: Path, head: bytes) -> bool:
        """True when the file looks like this format (from its name and first bytes)."""

    def stage(self, cur: duckdb.DuckDBPyConnection, path: Path, ctx: StageContext) -> list[Reject]:
        """Read the file into the staging tables; return the records that could not be read."""


class UnknownFormatError(ValueError):
    """No loader recognized a file."""


def _builtin() -> dict[str, type]:
    from workbench.loaders.agentops import AgentOpsLoader
    from workbench.loaders.generic import GenericLoader
    from workbench.loaders.inspect_ai import InspectLoader
    from workbench.loaders.langfuse import LangfuseLoader
    from workbench.loaders.langsmith import LangSmithLoader
    from workbench.loaders.openhands import OpenHandsLoader
    from workbench.loaders.openinference import OpenInferenceLoader
    from workbench.loaders.otlp import OtlpLoader
    from workbench.loaders.sweagent import SweAgentLoader
    from workbench.loaders.taubench import TauBenchLoader
    from workbench.loaders.whowhen import WhoWhenLoader

    named = (OtlpLoader, OpenInferenceLoader, LangfuseLoader, LangSmithLoader, AgentOpsLoader, SweAgentLoader, OpenHandsLoader,
             InspectLoader, TauBenchLoader, WhoWhenLoader)
    # generic last: it claims only files that have a mapping next to them, after every named format declined
    return {cls.name: cls for cls in (*named, GenericLoader)}


def registry() -> dict[str, Loader]:
    """All loaders by name: the built-in ones and any registered under the `workbench.loaders` entry points."""
    found: dict[str, Loader] = {name: cls() for name, cls in _builtin().items()}
    for name, factory in _plugins():
        if name not in found:
            found[name] = factory()
    return found


@functools.cache
def _plugins() -> tuple[tuple[str, type], ...]:
    """Loaders from installed packages' entry points, scanned once per process (the scan reads every
    installed distribution's metadata, which cost more than reading a small trace file)."""
    out = []
    for ep in entry_points(group="workbench.loaders"):
        try:
            out.append((ep.name, ep.load()))
        except Exception:  # a broken plugin must not take the built-in formats down with it
            continue
    return tuple(out)


def read_head(path: Path, n: int = HEAD_BYTES) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def not_a_trace(path: Path) -> str | None:
    """Why `path` is a known non-trace companion file (e.g. Langfuse's ChatML rendering next to a trace
    export), so a folder ingest lists it as skipped, not failed. Loaders say so through an optional
    `not_trace(path, head) -> str | None`; None when no loader claims the file."""
    head = read_head(path)
    for loader in registry().values():
        check = getattr(loader, "not_trace", None)
        reason = check(path, head) if check else None
        if reason:
            return f"not a trace ({loader.name}): {reason}"
    return None


def detect(path: Path, fmt: str | None = None) -> Loader:
    """The loader for `path`: the forced `fmt`, else the first whose sniff accepts the file."""
    loaders = registry()
    if fmt:
        if fmt not in loaders:
            raise UnknownFormatError(f"unknown format {fmt!r}; known: {', '.join(sorted(loaders))}")
        return loaders[fmt]
    head = read_head(path)
    for loader in loaders.values():
        if loader.sniff(path, head):
            return loader
    raise UnknownFormatError(
        f"{path}: no loader recognized this file (tried: {', '.join(sorted(loaders))}); "
        "use --format to force one"
    )
