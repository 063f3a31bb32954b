"""The failure taxonomy: label codes with names, descriptions and Review-page keys, versioned by content.

A taxonomy comes from TOML (`[[label]]` entries; the default is `workbench/data/taxonomy.toml`). Its version is
a hash of its content, every version stays in table `taxonomy`, and `meta.taxonomy_version` names the one in use,
so a label made under an older version keeps its meaning.
"""

from __future__ import annotations

import hashlib
import json
import threading
import tomllib
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workbench.store import Store

REVIEW_KEYS = frozenset("jkeltnsug")
"""Keys the Review page uses itself: replay J/K/E/T/L (next/previous step, next error, tool call, loop),
N next, S skip, U undo, G run-or-step target."""
STREAMLIT_KEYS = frozenset("cr")
"""Keys Streamlit refuses as button shortcuts (it keeps them for clear-cache and rerun)."""
RESERVED_KEYS = REVIEW_KEYS | STREAMLIT_KEYS

# Names end up in button labels, which Streamlit renders as Markdown: keep them to plain words so a taxonomy
# file cannot put a link, an image or HTML there.
_PLAIN = r"^[^\[\]()<>!`*_~\\|#$\n]+$"


class TaxonomyLabel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)*$", max_length=80)
    """Dotted code; the part before the first dot is the group (tool, control, content ...)."""
    name: str = Field(pattern=_PLAIN, max_length=60)
    """Short plain-text name shown on the label's button."""
    description: str | None = None
    """When the label applies (shown as text in the taxonomy table)."""
    key: str | None = Field(default=None, pattern=r"^[a-z0-9]$")
    """One letter or digit that applies the label on the Review page; not one of `RESERVED_KEYS`."""

    @field_validator("key", mode="before")
    @classmethod
    def _lower_key(cls, value: object) -> object:
        key = value.lower() if isinstance(value, str) else value
        if isinstance(key, str) and key in RESERVED_KEYS:
            raise ValueError(f"key {key!r} is taken (the Review page or Streamlit uses "
                             f"{', '.join(sorted(RESERVED_KEYS))})")
        return key

    @property
    def group(self) -> str:
        return self.code.split(".", 1)[0]


class Taxonomy(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: str
    """Content hash (12 hex digits) of the labels."""
    labels: tuple[TaxonomyLabel, ...]

    def codes(self) -> list[str]:
        return [lb.code for lb in self.labels]

    def by_key(self) -> dict[str, str]:
        return {lb.key: lb.code for lb in self.labels if lb.key}

    def names(self) -> dict[str, str]:
        return {lb.code: lb.name for lb in self.labels}

    def to_toml(self) -> str:
        """The taxonomy as TOML text that `parse_taxonomy` reads back to the same version (for editing)."""
        out = []
        for lb in self.labels:
            out.append("[[label]]")
            out += [f"{field} = {json.dumps(value, ensure_ascii=False)}"  # a JSON string is a TOML basic string
                    for field, value in (("code", lb.code), ("name", lb.name), ("description", lb.description),
                                         ("key", lb.key)) if value is not None]
            out.append("")
        return "\n".join(out)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def parse_taxonomy(text: str) -> Taxonomy:
    """A taxonomy from TOML text (`[[label]]` entries); its version is the hash of the content.

    Raises ValueError (pydantic's ValidationError is one) with the offending entry when the text is not a valid
    taxonomy: bad TOML, no labels, a malformed code or name, a duplicate code or key, a reserved key.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML: {exc}") from None
    entries = data.get("label", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError("labels must be [[label]] tables")
    labels = tuple(TaxonomyLabel(**entry) for entry in entries)
    if not labels:
        raise ValueError("a taxonomy needs at least one [[label]] entry")
    codes = [lb.code for lb in labels]
    dupes = {c for c in codes if codes.count(c) > 1}
    keys = [lb.key for lb in labels if lb.key]
    if dupes or len(keys) != len(set(keys)):
        raise ValueError(f"duplicate codes or keys in taxonomy: {sorted(dupes) or sorted(keys)}")
    canonical = "\n".join(f"{lb.code}\x1f{lb.name}\x1f{lb.description}\x1f{lb.key}" for lb in labels)
    return Taxonomy(version=hashlib.sha256(canonical.encode()).hexdigest()[:12], labels=labels)


def default_taxonomy() -> Taxonomy:
    return parse_taxonomy((resources.files("workbench") / "data" / "taxonomy.toml").read_text(encoding="utf-8"))


def load_taxonomy(store: Store, source: Path | str | Taxonomy | None = None) -> Taxonomy:
    """Make a taxonomy (a file, TOML text, or the default) the current one; a new content is a new version."""
    if isinstance(source, Taxonomy):
        tax = source
    elif source is None:
        tax = default_taxonomy()
    elif isinstance(source, Path) or (isinstance(source, str) and "[[label]]" not in source):
        tax = parse_taxonomy(Path(source).read_text(encoding="utf-8"))
    else:
        tax = parse_taxonomy(source)
    with store.transaction() as cur:
        known = cur.execute("SELECT count(*) FROM taxonomy WHERE version = $v", {"v": tax.version}).fetchone()[0]
        if not known:
            cur.executemany(
                "INSERT INTO taxonomy VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(tax.version, lb.code, lb.group if "." in lb.code else None, lb.name, lb.description, lb.key,
                  _now()) for lb in tax.labels])
        cur.execute("INSERT OR REPLACE INTO meta VALUES ('taxonomy_version', $v)", {"v": tax.version})
    _remember(store, tax)
    return tax


# A version's content never changes (the version is its hash), so a taxonomy read once is kept per database
# file and version: storing a label then costs one primary-key lookup in `meta` instead of rebuilding the
# taxonomy from its table.
_CACHE: dict[tuple[str, str], Taxonomy] = {}
_CACHE_LOCK = threading.Lock()


def _remember(store: Store, tax: Taxonomy) -> None:
    with _CACHE_LOCK:
        _CACHE[(str(store.path.resolve()), tax.version)] = tax


def current_taxonomy(store: Store) -> Taxonomy:
    """The taxonomy in use; the default one is loaded on first use."""
    row = store.sql("SELECT value FROM meta WHERE key = 'taxonomy_version'").fetchone()
    if row is None:
        return load_taxonomy(store)
    cached = _CACHE.get((str(store.path.resolve()), row[0]))
    if cached is not None:
        return cached
    rows = store.sql("SELECT code, name, description, key FROM taxonomy WHERE version = $v ORDER BY rowid",
                     {"v": row[0]}).fetchall()
    # model_construct: rows stored by an older release may hold a key that is reserved now; the page skips
    # such a key rather than refusing the whole taxonomy
    tax = Taxonomy(version=row[0], labels=tuple(
        TaxonomyLabel.model_construct(code=c, name=n, description=d, key=k) for c, n, d, k in rows))
    _remember(store, tax)
    return tax
