"""The DuckDB store: schema, migrations, connections, the writer lock and the data version.

One `Store` owns one database file for the life of a process. DuckDB lets a single process open a file
read-write; every other process that tries fails at once. We turn that failure into `StoreBusyError` with
a message that says what to do, instead of a stack trace.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import duckdb

DEFAULT_DB = Path("data") / "workbench.duckdb"
SCHEMA_VERSION = 7
DEFAULT_MEMORY_LIMIT = "1GB"


class StoreError(RuntimeError):
    """A store problem a user can act on; its message says what to do."""


class StoreBusyError(StoreError):
    """Another process holds the database file."""


def default_db_path() -> Path:
    """The database used when no `--db` is given: `$WORKBENCH_DB`, else `data/workbench.duckdb`."""
    return Path(os.environ.get("WORKBENCH_DB") or DEFAULT_DB)


def import_roots(db: str | os.PathLike[str] | None = None) -> list[Path]:
    """Folders the app may import from by server-side path, resolved.

    `$WORKBENCH_IMPORT_ROOTS` (folders separated by `os.pathsep`) when set, else the database's folder and
    `./data`. A serving connection may read these (and the database's folder, where uploads land), nothing else.
    """
    configured = os.environ.get("WORKBENCH_IMPORT_ROOTS", "")
    raw = [Path(p) for p in configured.split(os.pathsep) if p.strip()] if configured.strip() else [
        Path(db or default_db_path()).parent, DEFAULT_DB.parent]
    roots: list[Path] = []
    for p in raw:
        r = p.expanduser().resolve()
        if r not in roots:
            roots.append(r)
    return roots


def _migrations() -> list[tuple[int, str, str]]:
    folder = resources.files("workbench.store") / "migrations"
    found = []
    for entry in folder.iterdir():
        m = re.match(r"(\d+)_(.+)\.sql$", entry.name)
        if m:
            found.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


def schema_sql() -> str:
    return (resources.files("workbench.store") / "schema.sql").read_text(encoding="utf-8")


class Store:
    """An open workbench database.

    Args:
        path: the DuckDB file; created with the current schema when missing.
        serving: lock the connection down for a web server: no file access outside the database's folder,
            and configuration that queries cannot change.
        memory_limit: DuckDB's memory ceiling; bulk loads spill to disk past it instead of growing.
        read_only: open without write access (several read-only processes may share a file).
        read_roots: when serving, further folders the connection may read (the import roots); the
            database's own folder is always readable.

    Example:
        >>> store = Store("data/workbench.duckdb")          # doctest: +SKIP
        >>> store.sql("SELECT count(*) FROM runs").fetchone()  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_DB,
        *,
        serving: bool = False,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
        read_only: bool = False,
        threads: int | None = None,
        read_roots: Sequence[str | os.PathLike[str]] = (),
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.serving = serving
        self.write_lock = threading.RLock()
        self._data_version = 0
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        config = {
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
            "memory_limit": memory_limit,
            "preserve_insertion_order": "false",
        }
        if threads:
            config["threads"] = str(threads)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only, config=config)
        except duckdb.IOException as exc:
            text = str(exc)
            if "lock" in text.lower():
                pid = re.search(r"PID (\d+)", text)
                holder = f" (process {pid.group(1)})" if pid else ""
                raise StoreBusyError(
                    f"The database {self.path} is in use by another workbench process{holder}. "
                    "DuckDB allows one writer per file: stop `workbench serve`, or import through the app's "
                    "Import page, or use another --db."
                ) from None
            raise StoreError(f"Cannot open the database {self.path}: {text}") from None
        except duckdb.Error as exc:
            raise StoreError(f"{self.path} is not a workbench database DuckDB can open: {exc}") from None
        tmp = self.path.parent / ".duckdb_tmp"
        self.con.execute("SET temp_directory = $1", [str(tmp)])
        if not read_only:
            self._migrate()
        self._data_version = self._read_data_version()
        if serving:
            self._lock_down(read_roots)

    # -- schema ---------------------------------------------------------------------------------------
    def schema_version(self) -> int:
        row = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
        ).fetchone()
        if not row or row[0] == 0:
            return 0
        got = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(got[0]) if got else 0

    def _migrate(self) -> None:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this workbench ({SCHEMA_VERSION}). "
                "Upgrade the workbench package; the file was left untouched."
            )
        if version == SCHEMA_VERSION:
            return
        with self.transaction() as cur:
            if version == 0:
                has_tables = cur.execute(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main'"
                ).fetchone()[0]
                if has_tables:
                    raise StoreError(
                        f"{self.path} holds tables but no workbench schema version; refusing to modify it."
                    )
                cur.execute(schema_sql())
            else:
                for number, _name, sql in _migrations():
                    if number > version:
                        cur.execute(sql)
            cur.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', $1)", [str(SCHEMA_VERSION)]
            )

    def _lock_down(self, read_roots: Sequence[str | os.PathLike[str]]) -> None:
        folders = [str(self.path.resolve().parent)]
        folders += [str(Path(r).resolve()) for r in read_roots if str(Path(r).resolve()) not in folders]
        self.con.execute("SET allowed_directories = $1", [folders])
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET lock_configuration = true")

    # -- connections ----------------------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for the calling thread (DuckDB connections must not be shared across threads)."""
        return self.con.cursor()

    def sql(self, query: str, params: dict | list | None = None) -> duckdb.DuckDBPyConnection:
        """Run a read query on a fresh cursor; values only as parameters."""
        return self.cursor().execute(query, params or [])

    def df(self, query: str, params: dict | list | None = None):
        return self.sql(query, params).df()

    @contextmanager
    def transaction(self, *, bump_version: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """One writer at a time; everything inside lands whole or not at all, then the data version moves.

        Args:
            bump_version: False for writes that add no information (rebuilding derived tables), so caches
                keyed on the data version stay valid.
        """
        if self.read_only:
            raise StoreError(f"{self.path} is open read-only")
        with self.write_lock:
            cur = self.con.cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
                if bump_version:
                    cur.execute(
                        "INSERT OR REPLACE INTO meta SELECT 'data_version', CAST(coalesce((SELECT CAST(value AS "
                        "BIGINT) FROM meta WHERE key = 'data_version'), 0) + 1 AS VARCHAR)"
                    )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            finally:
                cur.close()
            if bump_version:
                self._data_version += 1

    def _read_data_version(self) -> int:
        try:
            row = self.con.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()
        except duckdb.CatalogException:
            return 0
        return int(row[0]) if row else 0

    def data_version(self) -> int:
        """A counter every committed write bumps; UI caches key on it."""
        return self._data_version

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"


_SHARED: dict[tuple[Path, bool], Store] = {}
_SHARED_LOCK = threading.Lock()


def shared_store(path: str | os.PathLike[str] | None = None, *, serving: bool = False) -> Store:
    """The one open `Store` of this process for `path` (opened on first use).

    `workbench serve` opens it before the web server starts, so the server process owns the database file
    from the first second and every page reuses that connection through a cursor per script run. A serving
    store may read the import roots (`import_roots`) so the Import page can load files from them.
    """
    key = (Path(path or default_db_path()).resolve(), serving)
    with _SHARED_LOCK:
        store = _SHARED.get(key)
        if store is None:
            roots = import_roots(key[0]) if serving else ()
            store = _SHARED[key] = Store(key[0], serving=serving, read_roots=roots)
        return store


def open_store(path: str | os.PathLike[str] | None = None, **kwargs) -> Store:
    """Open (and create or migrate) the workbench database at `path`, default `default_db_path()`."""
    return Store(path or default_db_path(), **kwargs)
