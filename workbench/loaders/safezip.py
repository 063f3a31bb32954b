"""Reading members of an untrusted zip archive (Inspect `.eval` logs) without being led astray.

Checks before anything is decompressed: member count, total declared size, compression ratio (a zip bomb
declares a modest archive that inflates a thousandfold), and member names (no absolute paths, no `..`,
no drive letters or backslashes). Nothing is ever extracted to disk; each member is read into memory with
a cap, so a header that lies about a member's size cannot make us read more than the cap.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path, PurePosixPath

MAX_MEMBERS = 100_000
MAX_TOTAL_BYTES = 2 * 1024 ** 3
MAX_RATIO = 200
"""Uncompressed / compressed size above which a large member counts as a bomb (deflate tops out near 1030)."""
RATIO_MIN_BYTES = 4 * 1024 * 1024
"""Members smaller than this are not ratio-checked: small, repetitive JSON legitimately compresses well."""

_DRIVE = re.compile(r"^[A-Za-z]:")
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, EOFError, OSError, ValueError)


class ArchiveError(ValueError):
    """The archive, or one member of it, cannot be read safely; the message says why."""


def unsafe_name(name: str) -> bool:
    return (name.startswith(("/", "\\")) or "\\" in name or bool(_DRIVE.match(name))
            or ".." in PurePosixPath(name).parts)


def open_checked(path: Path) -> zipfile.ZipFile:
    """Open `path` as a zip after checking its directory; raise `ArchiveError` with the reason otherwise."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise ArchiveError(f"not a readable zip archive ({exc}); the file may be truncated") from exc
    try:
        _check(zf.infolist())
    except ArchiveError:
        zf.close()
        raise
    return zf


def _check(infos: list[zipfile.ZipInfo]) -> None:
    if len(infos) > MAX_MEMBERS:
        raise ArchiveError(f"archive has {len(infos):,} members, more than the {MAX_MEMBERS:,} allowed")
    bad = [i.filename for i in infos if unsafe_name(i.filename)]
    if bad:
        raise ArchiveError(f"unsafe member path {bad[0]!r} (absolute or with '..'): archive refused")
    total = sum(i.file_size for i in infos)
    if total > MAX_TOTAL_BYTES:
        raise ArchiveError(f"archive would inflate to {total:,} bytes, over the {MAX_TOTAL_BYTES:,}-byte cap")
    for i in infos:
        if i.file_size >= RATIO_MIN_BYTES and i.file_size > MAX_RATIO * max(i.compress_size, 1):
            raise ArchiveError(f"member {i.filename!r} inflates {i.file_size / max(i.compress_size, 1):,.0f}x "
                               f"({i.compress_size:,} -> {i.file_size:,} bytes): looks like a zip bomb")


def read_member(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """A member's bytes, at most `limit` of them; raise `ArchiveError` when it is larger or unreadable."""
    try:
        info = zf.getinfo(name)
        if info.file_size > limit:
            raise ArchiveError(f"member is {info.file_size:,} bytes, over the {limit:,}-byte record limit")
        with zf.open(info) as fh:
            data = fh.read(limit + 1)
    except KeyError as exc:
        raise ArchiveError("member missing from the archive") from exc
    except _READ_ERRORS as exc:
        if isinstance(exc, ArchiveError):
            raise
        raise ArchiveError(f"member unreadable ({type(exc).__name__}: {exc})") from exc
    if len(data) > limit:
        raise ArchiveError(f"member inflates past the {limit:,}-byte record limit")
    return data
