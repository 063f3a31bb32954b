"""One conformance check for every registered loader, and for every real file: who claims it, and that
damaged copies never crash the ingest or change what the database already held."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.otlp_builder import agent_trace, request
from workbench.ingest import expand_paths, ingest_file
from workbench.loaders import HEAD_BYTES, Loader, read_head, registry
from workbench.store import Store

LOADERS = registry()
SUFFIXES = (".json", ".jsonl", ".eval", ".traj", ".parquet")
TABLES = ("steps", "label_events", "imports", "rejects")
# what a run *is*; counts, tokens and cost may grow when a file adds steps, these may not change
RUN_FACTS = ("run_id, format, native_id, import_id, agent, agent_version, environment, task_id, session_id, "
             "user_id, outcome, outcome_score, input, output, tags")


@pytest.fixture
def seeded(tmp_path) -> Store:
    """A store that already holds one import, so every check can ask: is it still exactly there?"""
    s = Store(tmp_path / "seeded.duckdb")
    f = tmp_path / "prior.jsonl"
    f.write_text(json.dumps(request(agent_trace("9" * 32))) + "\n")
    assert ingest_file(s, f).status == "ok"
    yield s
    s.close()


def snapshot(store: Store) -> dict[str, list]:
    snap = {t: sorted(map(repr, store.sql(f"SELECT * FROM {t}").fetchall())) for t in TABLES}
    snap["runs"] = sorted(map(repr, store.sql(f"SELECT {RUN_FACTS} FROM runs").fetchall()))
    return snap


def unchanged(before: dict, after: dict) -> bool:
    # an import may add rows (its own record, new runs, new steps); it may never alter or remove old ones
    return all(set(before[t]) <= set(after[t]) for t in (*TABLES, "runs"))


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_loader_shape(name):
    loader = LOADERS[name]
    assert isinstance(loader, Loader) and loader.name == name


@pytest.mark.parametrize("name", sorted(LOADERS))
@pytest.mark.parametrize("content", [b"", b"\x00\xff\x00garbage\xfe", b'{"foo": 1}', b"[1, 2, 3]", b"{{{{"],
                         ids=["empty", "binary", "other-json", "list", "broken"])
def test_loader_rejects_foreign_content_cleanly(name, content, tmp_path, seeded):
    before = snapshot(seeded)
    for suffix in SUFFIXES:
        f = tmp_path / f"x{suffix}"
        f.write_bytes(content)
        assert isinstance(LOADERS[name].sniff(f, read_head(f, HEAD_BYTES)), bool)
        result = ingest_file(seeded, f, fmt=name, force=True)  # forced: the loader must cope, not crash
        assert result.status in ("failed", "rejected", "partial", "ok")
        assert result.status != "ok" or result.n_runs == 0, f"{name} made runs out of {content!r}"
    assert unchanged(before, snapshot(seeded))


def real_files(real: Path) -> list[Path]:
    return expand_paths([real])[0]


def claimants(path: Path) -> list[str]:
    head = read_head(path)
    return [name for name, loader in LOADERS.items() if loader.sniff(path, head)]


def test_no_real_file_is_claimed_by_two_loaders(real_dir):
    doubles = {str(p.relative_to(real_dir)): c for p in real_files(real_dir) if len(c := claimants(p)) > 1}
    assert not doubles


def _claimed_real_files() -> list[Path]:
    from tests.conftest import REAL

    if not REAL.is_dir():
        return []
    # small files keep the property test quick; each loader gets its smallest claimed files
    by_loader: dict[str, list[Path]] = {}
    for p in real_files(REAL):
        names = claimants(p)
        if names:
            by_loader.setdefault(names[0], []).append(p)
    return sorted(p for files in by_loader.values() for p in sorted(files, key=lambda f: f.stat().st_size)[:2])


CLAIMED = _claimed_real_files()


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory) -> Store:
    """A store holding the intact files; each damaged copy must leave what is stored intact."""
    work = tmp_path_factory.mktemp("damaged")
    s = Store(work / "db.duckdb")
    for path in CLAIMED:
        ingest_file(s, path)
    yield s
    s.close()


@pytest.mark.real_data
@pytest.mark.skipif(not CLAIMED, reason="real trace files not found in ../shared/data/real")
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_damaged_real_files_never_crash_or_change_stored_data(data, shared_store, tmp_path_factory):
    path = data.draw(st.sampled_from(CLAIMED), label="file")
    raw = path.read_bytes()
    cut = data.draw(st.integers(0, len(raw)), label="cut")
    kind = data.draw(st.sampled_from(["truncate", "flip", "delete", "duplicate"]), label="kind")
    if kind == "truncate":
        damaged = raw[:cut]
    elif kind == "flip":
        damaged = raw[:cut] + bytes([data.draw(st.integers(0, 255), label="byte")]) + raw[cut + 1:]
    elif kind == "delete":
        damaged = raw[:cut] + raw[cut + data.draw(st.integers(1, 64), label="n"):]
    else:
        damaged = raw[:cut] + raw[max(0, cut - 200):]
    target = tmp_path_factory.mktemp("file") / path.name
    target.write_bytes(damaged)
    before = snapshot(shared_store)
    result = ingest_file(shared_store, target, force=True)  # must return, whatever the bytes
    assert result.status in ("ok", "partial", "rejected", "failed")
    assert unchanged(before, snapshot(shared_store))
