"""Opt-in redaction: mask e-mail addresses, phone numbers, card numbers and secrets before anything is stored.

Runs inside the ingest transaction over the staging tables, after the loader and before the merge, so the
masked values never reach `steps` or `runs`. The patterns are RE2 regular expressions (DuckDB's dialect).
Teams add their own, or turn built-ins off, with a TOML file:

```toml
disable = ["phone"]                 # built-in names to switch off

[[pattern]]
name = "employee-id"
regex = 'EMP-[0-9]{6}'
```

Masked text reads `[REDACTED:<name>]`, so a reviewer still sees that something was there and what kind.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import duckdb

# name -> RE2 pattern. Narrow on purpose: a redaction that eats timestamps and ids makes traces unreadable.
BUILTIN_PATTERNS: dict[str, str] = {
    # applied in this order: keys and cards before phones, whose pattern would eat a card's digit groups
    "api_key": r"(?:\b|\\[nrt])(?:sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}"
               r"|xox[abposr]-[A-Za-z0-9\-]{10,}|AIza[0-9A-Za-z_\-]{35}|glpat-[A-Za-z0-9_\-]{20,})",
    "bearer": r"(?i)bearer\s+[A-Za-z0-9._~+/\-]{12,}=*",
    # 13-19 digits in groups (Visa, Mastercard, Amex, Discover prefixes), spaces or dashes allowed
    "card": r"(?:\b|\\[nrt])(?:4\d{3}|5[1-5]\d{2}|2[2-7]\d{2}|6011|3[47]\d{2})(?:[ \-]?\d{4}){2}[ \-]?\d{1,7}\b",
    "email": r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
    # with separators (555-123-4567, (555) 123 4567, +44 20 7946 0958): bare digit runs are left alone
    "phone": r"(?:\+\d{1,3}[ .\-]?)?(?:\(\d{2,4}\)|\d{2,4})[ .\-]\d{3,4}[ .\-]\d{4}\b",
}

# A leading `\\[nrt]` alternative catches a value right after an escaped newline in JSON text ("\n4111...").

# staged columns holding free text (JSON columns are masked in their text form; masks contain no quotes)
_STEP_TEXT = ("name", "error", "messages", "tool_args", "tool_result", "attributes")
_RUN_TEXT = ("input", "output", "attributes")
_JSON_COLUMNS = {"messages", "tool_args", "attributes"}


class RedactionConfigError(ValueError):
    """The redaction config file is unreadable or names a pattern wrongly."""


@dataclass(frozen=True)
class Redactor:
    patterns: tuple[tuple[str, str], ...]

    @classmethod
    def default(cls) -> Redactor:
        return cls(tuple(BUILTIN_PATTERNS.items()))

    @classmethod
    def from_file(cls, path: Path | str) -> Redactor:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise RedactionConfigError(f"redaction config {path}: {exc}") from exc
        disabled = set(data.get("disable", []))
        unknown = disabled - set(BUILTIN_PATTERNS)
        if unknown:
            raise RedactionConfigError(f"redaction config {path}: unknown built-in(s) in disable: "
                                       f"{', '.join(sorted(unknown))}; known: {', '.join(BUILTIN_PATTERNS)}")
        patterns = [(n, p) for n, p in BUILTIN_PATTERNS.items() if n not in disabled]
        for i, entry in enumerate(data.get("pattern", [])):
            if not isinstance(entry, dict) or not entry.get("name") or not entry.get("regex"):
                raise RedactionConfigError(f"redaction config {path}: [[pattern]] #{i + 1} needs `name` and `regex`")
            patterns.append((str(entry["name"]), str(entry["regex"])))
        return cls(tuple(patterns))

    def validate(self, cur: duckdb.DuckDBPyConnection) -> None:
        """Compile every pattern once so a bad regex fails before any data is touched."""
        for name, regex in self.patterns:
            try:
                cur.execute("SELECT regexp_matches('', $re)", {"re": regex}).fetchone()
            except duckdb.Error as exc:
                raise RedactionConfigError(f"redaction pattern {name!r} is not a valid RE2 regex: {exc}") from exc

    def redact_staged(self, cur: duckdb.DuckDBPyConnection) -> int:
        """Mask every pattern in the staged text columns; returns how many values (matches) were masked."""
        self.validate(cur)
        total = 0
        for table, columns in (("_stage_steps", _STEP_TEXT), ("_stage_runs", _RUN_TEXT)):
            for name, regex in self.patterns:
                params = {"re": regex, "mask": f"[REDACTED:{name}]"}
                # identifiers come from the module constants above; the regex and the mask are parameters
                counted = " + ".join(f"coalesce(len(regexp_extract_all({c}::VARCHAR, $re)), 0)" for c in columns)
                hit = " OR ".join(f"regexp_matches({c}::VARCHAR, $re)" for c in columns)
                n = cur.execute(f"SELECT coalesce(sum({counted}), 0) FROM {table} WHERE {hit}",  # noqa: S608
                                {"re": regex}).fetchone()[0]
                if not n:
                    continue
                total += int(n)
                sets = ", ".join(
                    f"{c} = regexp_replace({c}::VARCHAR, $re, $mask, 'g')" + ("::JSON" if c in _JSON_COLUMNS else "")
                    for c in columns
                )
                cur.execute(f"UPDATE {table} SET {sets} WHERE {hit}", params)  # noqa: S608
        return total
