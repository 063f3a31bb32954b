"""Uploads: what the browser sends becomes files only after the size, name and archive checks."""

from __future__ import annotations

import io
import json
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from tests import otlp_builder as ob
from workbench.imports import import_uploads
from workbench.uploads import MB, UploadLimits, safe_filename, stage_upload


def otlp_bytes(i: int) -> bytes:
    # one agent trace: a root, 2 llm calls and 2 tool calls = 5 spans (otlp_builder.agent_trace, n_tools=2)
    return (json.dumps(ob.request(ob.agent_trace(ob.trace_id(i)))) + "\n").encode()


def make_zip(members: list[tuple[str | zipfile.ZipInfo, bytes]], level: int = 6) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# -- names ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "safe"), [
    ("trace.jsonl", "trace.jsonl"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\x\\..\\run log.json", "run_log.json"),
    (".hidden.json", "hidden.json"),
    ("..", "upload"),
    ("", "upload"),
    ("<script>.json", "script_.json"),
    ("a" * 300 + ".jsonl", "a" * 114 + ".jsonl"),  # cut to 120 characters, suffix kept
])
def test_safe_filename(raw, safe):
    assert safe_filename(raw) == safe


def test_names_that_collide_do_not_overwrite(tmp_path):
    staged = stage_upload([("a b.json", b"1"), ("a_b.json", b"2"), ("x/a b.json", b"3")], tmp_path, UploadLimits())
    assert staged.errors == []
    assert [p.name for p in staged.targets] == ["a_b.json", "a_b-1.json", "a_b-2.json"]
    assert [p.read_bytes() for p in staged.targets] == [b"1", b"2", b"3"]
    assert staged.folder.parent == tmp_path


# -- size -------------------------------------------------------------------------------------------------
def test_oversize_upload_is_refused_and_leaves_nothing(tmp_path):
    limits = UploadLimits(max_upload_bytes=1 * MB)
    staged = stage_upload([("big.jsonl", b"x" * (MB + 1)), ("ok.jsonl", b"y" * MB)], tmp_path, limits)
    assert staged.errors == [("big.jsonl", "big.jsonl: 1.0 MB, larger than the upload limit of 1 MB")]
    assert files_under(staged.folder) == ["ok.jsonl"]  # exactly 1 MB is allowed


def test_oversize_stream_is_counted_while_copying(tmp_path):
    # a stream that cannot tell its size is still cut at the limit while it is copied
    class Unsized(io.RawIOBase):
        def __init__(self, n):
            self.left = n

        def readable(self):
            return True

        def readinto(self, b):
            n = min(len(b), self.left)
            b[:n] = b"z" * n
            self.left -= n
            return n

        def seek(self, *args):
            raise OSError("not seekable")

    staged = stage_upload([("s.jsonl", io.BufferedReader(Unsized(3 * MB)))], tmp_path,
                          UploadLimits(max_upload_bytes=2 * MB))
    assert staged.errors == [("s.jsonl", "s.jsonl: larger than the upload limit of 2 MB")]
    assert files_under(staged.folder) == []


def test_zip_counts_against_the_upload_limit_compressed(tmp_path):
    data = make_zip([("a.jsonl", b"q" * 100)])
    staged = stage_upload([("t.zip", data)], tmp_path, UploadLimits(max_upload_bytes=len(data) - 1))
    assert len(staged.errors) == 1 and "larger than the upload limit" in staged.errors[0][1]


# -- archives ---------------------------------------------------------------------------------------------
def test_zip_bomb_is_stopped_while_reading(tmp_path):
    # 64 MB of zeros deflate to ~64 KB (about 1000:1); the cap is 200:1 past the first MB
    member = 64 * MB
    data = make_zip([("bomb.jsonl", b"\0" * member)], level=9)
    assert len(data) < member / 500
    staged = stage_upload([("bomb.zip", data)], tmp_path, UploadLimits())
    assert len(staged.errors) == 1
    name, reason = staged.errors[0]
    assert name == "bomb.zip"
    assert reason.startswith("bomb.zip: member 'bomb.jsonl' expands more than 200 times its compressed size")
    assert reason.endswith("refused as a zip bomb")
    assert staged.targets == [] and files_under(staged.folder) == []  # the partial member was removed


def test_total_uncompressed_cap(tmp_path):
    # three honest 1 MB members against a 2 MB budget: refused from the headers, before writing anything
    data = make_zip([(f"m{i}.jsonl", bytes(range(256)) * 4096) for i in range(3)])
    staged = stage_upload([("many.zip", data)], tmp_path, UploadLimits(max_extracted_bytes=2 * MB))
    assert staged.errors == [("many.zip", "many.zip: declares 3 MB uncompressed, more than the 2 MB this "
                                          "upload may unpack")]
    assert files_under(staged.folder) == []


def test_header_sizes_are_not_trusted(tmp_path):
    # a member whose headers claim 10 bytes while it holds 3 MB: the bytes read are what counts
    body = b"A" * (3 * MB)
    data = bytearray(make_zip([("liar.jsonl", body)]))
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header, central directory
        at = data.find(sig)
        struct.pack_into("<I", data, at + offset, 10)
    staged = stage_upload([("liar.zip", bytes(data))], tmp_path, UploadLimits())
    # zipfile stops at the declared 10 bytes, so the checksum of what was read is wrong: refused, named
    assert staged.errors == [("liar.zip", "liar.zip: member 'liar.jsonl' could not be read: "
                                          "Bad CRC-32 for file 'liar.jsonl'")]
    assert files_under(staged.folder) == []


@pytest.mark.parametrize(("member", "reason"), [
    ("../evil.jsonl", "points outside the archive ('..')"),
    ("a/../../evil.jsonl", "points outside the archive ('..')"),
    ("/etc/evil.jsonl", "has an absolute path"),
    ("C:/evil.jsonl", "has an absolute path"),
    ("..\\evil.jsonl", "points outside the archive ('..')"),
])
def test_paths_out_of_the_archive_are_refused(tmp_path, member, reason):
    data = make_zip([("good.jsonl", otlp_bytes(1)), (member, b"{}")])
    staged = stage_upload([("evil.zip", data)], tmp_path / "uploads", UploadLimits())
    assert staged.errors == [("evil.zip", f"evil.zip: member {member!r} {reason}")]
    # the whole archive is refused, and nothing was written anywhere, in or next to the upload folder
    assert files_under(tmp_path) == []


def test_symlink_member_is_refused(tmp_path):
    link = zipfile.ZipInfo("link.jsonl")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    data = make_zip([("good.jsonl", otlp_bytes(1)), (link, b"/etc/passwd")])
    staged = stage_upload([("links.zip", data)], tmp_path, UploadLimits())
    assert staged.errors == [("links.zip", "links.zip: member 'link.jsonl' is a symbolic link")]
    assert files_under(staged.folder) == []


def test_too_many_members(tmp_path):
    data = make_zip([(f"f{i}.jsonl", b"{}") for i in range(6)])
    staged = stage_upload([("six.zip", data)], tmp_path, UploadLimits(max_members=5))
    assert staged.errors == [("six.zip", "six.zip: 6 members, more than the limit of 5")]
    assert files_under(staged.folder) == []


def test_not_a_zip_and_eval_kept_whole(tmp_path):
    inner = make_zip([("header.json", b"{}")])
    staged = stage_upload([("broken.zip", b"PK not really"), ("log.eval", inner)], tmp_path, UploadLimits())
    assert len(staged.errors) == 1 and staged.errors[0][1].startswith("broken.zip: not a readable zip archive")
    # Inspect's .eval is a zip its loader reads: stored byte for byte, not unpacked
    assert files_under(staged.folder) == ["log.eval"]
    assert (staged.folder / "log.eval").read_bytes() == inner


def test_good_zip_of_two_otlp_files_is_ingested(store):
    data = make_zip([("traces/a.jsonl", otlp_bytes(1)), ("traces/deeper/b.json", otlp_bytes(2)),
                     ("README.md", b"notes")])
    report = import_uploads(store, [("batch.zip", data)], limits=UploadLimits())
    frame = report.frame()
    assert list(frame["file"]) == ["batch/traces/a.jsonl", "batch/traces/deeper/b.json"]  # README not a trace
    assert list(frame["status"]) == ["ok", "ok"]
    assert list(frame["runs"]) == [1, 1] and list(frame["steps"]) == [5, 5]
    assert store.sql("SELECT count(*), sum(n_steps) FROM runs").fetchone() == (2, 10)
    assert report.source.parent == store.path.parent / "uploads"
    # the same upload again: same bytes, so both files are skipped and nothing changes
    again = import_uploads(store, [("batch.zip", data)], limits=UploadLimits()).frame()
    assert list(again["status"]) == ["skipped", "skipped"]
    assert store.sql("SELECT count(*) FROM runs").fetchone()[0] == 2


def test_refused_archive_does_not_stop_the_others(store):
    bad = make_zip([("../evil.jsonl", b"{}")])
    report = import_uploads(store, [("bad.zip", bad), ("one.jsonl", otlp_bytes(3)),
                                    ("notes.zip", make_zip([("a.md", b"x")]))], limits=UploadLimits())
    frame = report.frame()
    assert list(frame["status"]) == ["failed", "failed", "ok"]
    assert frame["message"].iloc[0] == "bad.zip: member '../evil.jsonl' points outside the archive ('..')"
    assert frame["message"].iloc[1].startswith("the archive holds no trace files")
    assert store.sql("SELECT count(*) FROM runs").fetchone()[0] == 1
