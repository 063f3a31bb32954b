"""Uploaded bytes -> files on disk, safely: size limits, sanitized names, zip archives checked while read.

The Import page hands over what the browser sent (a file name and its content); this module writes it into a
fresh folder per upload under the database's folder (`<db folder>/uploads/<upload id>/`), where the serving
connection may read it. Nothing here trusts the sender:

* every uploaded file is capped (`UploadLimits.max_upload_bytes`, counted while copying);
* file names are reduced to a safe base name (no folders, no leading dots, a short ASCII alphabet);
* `.zip` archives are unpacked with every member checked: no absolute or `..` paths, no symlinks, no
  encrypted members, at most `max_members` members, and the bytes actually decompressed are counted against
  the declared size, a per-member compression-ratio cap and a total cap, so a zip bomb stops after at most
  one chunk past a limit, whatever its headers claim. An archive lands whole or not at all.
* `.eval` files are zips too, but Inspect's own format: they are kept as they are for its loader.

Example:
    >>> staged = stage_upload([("traces.zip", data)], Path("data/uploads"))   # doctest: +SKIP
    >>> staged.files, staged.errors                                         # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

MB = 1024 * 1024
CHUNK = MB
DEFAULT_MAX_UPLOAD_MB = 500
"""Per uploaded file; `server.maxUploadSize` in .streamlit/config.toml says the same to the browser."""


class UploadError(ValueError):
    """An upload (or one member of an archive) that was refused; the message names it and says why."""


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may hold. `from_env` reads the overrides a deployment sets."""

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * MB
    """Size of one uploaded file, as sent (an archive counts compressed)."""
    max_extracted_bytes: int = 4 * 1024 * MB
    """Bytes written to disk for one upload, archives unpacked, all files together."""
    max_members: int = 10_000
    """Entries in one archive, folders included."""
    max_ratio: float = 200.0
    """Uncompressed over compressed size of one archive member (deflate tops out near 1032:1)."""
    ratio_floor_bytes: int = MB
    """Members smaller than this are not held to `max_ratio`: a few KB of repeated JSON compresses well."""

    @classmethod
    def from_env(cls) -> UploadLimits:
        """Defaults, with `$WORKBENCH_MAX_UPLOAD_MB` and `$WORKBENCH_MAX_EXTRACT_MB` when set."""
        kwargs = {}
        for env, name in (("WORKBENCH_MAX_UPLOAD_MB", "max_upload_bytes"),
                          ("WORKBENCH_MAX_EXTRACT_MB", "max_extracted_bytes")):
            raw = os.environ.get(env, "").strip()
            if raw:
                try:
                    kwargs[name] = int(float(raw) * MB)
                except ValueError:
                    raise UploadError(f"{env}={raw!r} is not a number of megabytes") from None
        return cls(**kwargs)

    @property
    def max_upload_mb(self) -> int:
        """The per-file limit in whole megabytes (Streamlit's `server.maxUploadSize` unit), at least 1."""
        return max(1, self.max_upload_bytes // MB)


@dataclass
class StagedUpload:
    """Where an upload landed: the folder, what to ingest from it, and what was refused."""

    folder: Path
    targets: list[Path] = field(default_factory=list)
    """Plain files (always tried) and unpacked archive folders (scanned for trace files)."""
    errors: list[tuple[str, str]] = field(default_factory=list)
    """(uploaded name, reason) for every file or archive refused whole."""
    bytes_written: int = 0


# -- names ------------------------------------------------------------------------------------------------
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 120


def safe_filename(name: str, default: str = "upload") -> str:
    """A base name safe to create anywhere: no folders, no leading dot, `[A-Za-z0-9._-]` only, <= 120 chars.

    >>> safe_filename("../../etc/pass wd.json")
    'pass_wd.json'
    >>> safe_filename("C:\\\\temp\\\\..\\\\x.JSONL")
    'x.JSONL'
    """
    base = re.split(r"[/\\]", name or "")[-1]
    base = _UNSAFE.sub("_", base).lstrip("._-")
    if not base:
        return default
    if len(base) > _MAX_NAME:
        stem, dot, suffix = base.rpartition(".")
        suffix = suffix[:16] if dot and stem else ""
        base = base[: _MAX_NAME - len(suffix) - 1] + ("." + suffix if suffix else "")
    return base


def new_upload_dir(root: Path) -> Path:
    """A fresh, never-reused folder under `root`: time stamp plus random suffix."""
    root.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    folder = root / f"{stamp}-{secrets.token_hex(4)}"
    folder.mkdir()
    return folder


# -- staging ----------------------------------------------------------------------------------------------
def stage_upload(files: Iterable[tuple[str, bytes | BinaryIO]], root: Path,
                 limits: UploadLimits | None = None) -> StagedUpload:
    """Write uploaded files into a new folder under `root`; unpack `.zip` archives after checking them.

    Args:
        files: (name as the browser sent it, content as bytes or a readable binary file).
        root: the uploads folder, e.g. `<db folder>/uploads`.
        limits: defaults to `UploadLimits.from_env()`.

    A refused file or archive is listed in `errors` and leaves nothing behind; the others still land.
    """
    limits = limits or UploadLimits.from_env()
    staged = StagedUpload(folder=new_upload_dir(root))
    used: set[str] = set()
    for name, content in files:
        stream = _as_stream(content)
        base = safe_filename(name)
        try:
            size = _size(stream)
            if size is not None and size > limits.max_upload_bytes:
                raise UploadError(f"{name}: {size / MB:,.1f} MB, larger than the upload limit of "
                                  f"{limits.max_upload_mb} MB")
            if base.lower().endswith(".zip"):
                dest = staged.folder / _unique(base[:-4] or "archive", used)
                dest.mkdir()
                try:
                    staged.bytes_written += extract_zip(stream, dest, limits, name=name,
                                                        budget=limits.max_extracted_bytes - staged.bytes_written)
                except BaseException:
                    shutil.rmtree(dest, ignore_errors=True)
                    raise
                staged.targets.append(dest)
            else:
                target = staged.folder / _unique(base, used)
                staged.bytes_written += _copy_capped(stream, target, limits, name)
                staged.targets.append(target)
        except UploadError as exc:
            staged.errors.append((name, str(exc)))
        except OSError as exc:  # disk full, a name the file system refuses ...: this file only
            staged.errors.append((name, f"{name}: could not be saved ({exc.strerror or exc})"))
    return staged


def _as_stream(content: bytes | BinaryIO) -> BinaryIO:
    return io.BytesIO(content) if isinstance(content, bytes | bytearray | memoryview) else content


def _size(stream: BinaryIO) -> int | None:
    """Bytes left in a seekable stream (an upload held in memory), without reading them."""
    try:
        here = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(here)
    except (AttributeError, OSError, ValueError):
        return None
    return end - here


def _unique(base: str, used: set[str]) -> str:
    # two uploads named alike ("a.json" twice, or "a b.json" and "a_b.json") must not overwrite each other
    candidate, n = base, 1
    while candidate.lower() in used:
        stem, dot, suffix = base.rpartition(".")
        candidate = f"{stem}-{n}.{suffix}" if dot and stem else f"{base}-{n}"
        n += 1
    used.add(candidate.lower())
    return candidate


def _copy_capped(stream: BinaryIO, target: Path, limits: UploadLimits, name: str) -> int:
    written = 0
    try:
        with open(target, "xb") as out:
            while chunk := stream.read(CHUNK):
                written += len(chunk)
                if written > limits.max_upload_bytes:
                    raise UploadError(f"{name}: larger than the upload limit of {limits.max_upload_mb} MB")
                if written > limits.max_extracted_bytes:
                    raise UploadError(f"{name}: the upload passes its total limit of "
                                      f"{limits.max_extracted_bytes // MB} MB")
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return written


# -- archives ---------------------------------------------------------------------------------------------
_DRIVE = re.compile(r"^[A-Za-z]:")


def _member_parts(info: zipfile.ZipInfo, archive: str) -> list[str] | None:
    """Safe relative path parts of a member; None for a folder entry; raises for anything unsafe."""
    raw = info.filename
    shown = f"{archive}: member {raw!r}"
    if "\x00" in raw:
        raise UploadError(f"{shown} has a NUL byte in its name")
    if raw.startswith(("/", "\\")) or _DRIVE.match(raw):
        raise UploadError(f"{shown} has an absolute path")
    parts = [p for p in re.split(r"[/\\]", raw) if p not in ("", ".")]
    if ".." in parts:
        raise UploadError(f"{shown} points outside the archive ('..')")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UploadError(f"{shown} is a symbolic link")
    if info.flag_bits & 0x1:
        raise UploadError(f"{shown} is encrypted")
    if info.is_dir():
        return None
    if not parts:
        raise UploadError(f"{shown} has an empty name")
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the archiver wrote permissions only
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        raise UploadError(f"{shown} is not a regular file")
    return [safe_filename(p, default="_") for p in parts]


def extract_zip(stream: BinaryIO, dest: Path, limits: UploadLimits, *, budget: int | None = None,
                name: str | None = None) -> int:
    """Unpack a zip archive into the empty folder `dest`, checking every member; returns bytes written.

    Raises `UploadError` naming the archive and the member at the first problem; the caller removes `dest`.
    Header sizes are only a first filter: the bytes actually decompressed are what is counted and capped.
    """
    archive = name or dest.name + ".zip"
    budget = limits.max_extracted_bytes if budget is None else budget
    try:
        zf = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise UploadError(f"{archive}: not a readable zip archive ({exc})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_members:
            raise UploadError(f"{archive}: {len(infos):,} members, more than the limit of {limits.max_members:,}")
        plan = [(info, _member_parts(info, archive)) for info in infos]  # refuse before writing anything
        declared = sum(info.file_size for info, parts in plan if parts)
        if declared > budget:
            raise UploadError(f"{archive}: declares {declared // MB:,} MB uncompressed, more than the "
                              f"{budget // MB:,} MB this upload may unpack")
        total = 0
        seen: set[str] = set()
        for info, parts in plan:
            if parts is None:
                continue
            key = "/".join(parts)
            if key in seen:
                raise UploadError(f"{archive}: member {info.filename!r} appears twice")
            seen.add(key)
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            total += _extract_member(zf, info, target, limits, budget - total, archive)
    return total


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, limits: UploadLimits,
                    budget: int, archive: str) -> int:
    shown = f"{archive}: member {info.filename!r}"
    ratio_cap = limits.max_ratio * max(info.compress_size, 1)
    n = 0
    try:
        with zf.open(info) as src, open(target, "xb") as out:
            while chunk := src.read(CHUNK):
                n += len(chunk)
                if n > info.file_size:
                    raise UploadError(f"{shown} holds more bytes than its header declares "
                                      f"({info.file_size:,})")
                if n > limits.ratio_floor_bytes and n > ratio_cap:
                    raise UploadError(f"{shown} expands more than {limits.max_ratio:.0f} times its "
                                      f"compressed size ({info.compress_size:,} bytes): refused as a zip bomb")
                if n > budget:
                    raise UploadError(f"{shown} passes the upload's unpacked-size limit of "
                                      f"{limits.max_extracted_bytes // MB:,} MB")
                out.write(chunk)
    except UploadError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, OSError) as exc:
        raise UploadError(f"{shown} could not be read: {exc}") from None
    return n
