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
Built-in loaders register through the same entry-point group (`workbench.loaders`) a plugin package uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

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
    from workbench.loaders.openinference import OpenInferenceLoader
    from workbench.loaders.otlp import OtlpLoader

    return {OtlpLoader.name: OtlpLoader, OpenInferenceLoader.name: OpenInferenceLoader}


def registry() -> dict[str, Loader]:
    """All loaders by name: the built-in ones and any registered under the `workbench.loaders` entry points."""
    found: dict[str, Loader] = {name: cls() for name, cls in _builtin().items()}
    for ep in entry_points(group="workbench.loaders"):
        if ep.name in found:
            continue
        try:
            found[ep.name] = ep.load()()
        except Exception:  # a broken plugin must not take the built-in formats down with it
            continue
    return found


def read_head(path: Path, n: int = HEAD_BYTES) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


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
