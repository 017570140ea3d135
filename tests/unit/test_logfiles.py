"""Replica logs as the job server keeps them: rotated at a size into a bounded number of files, read from the end
(tailLines), from a second (sinceSeconds) or a known offset, never whole."""

import os
import threading

import pytest

from ringrun.launcher import logfiles


def write(path, chunks, rotation, clock=lambda: 0.0):
    writer = logfiles.Writer(str(path), rotation, threading.Lock(), users=1, clock=clock)
    for chunk in chunks:
        writer.write(chunk)
    writer.close()


def test_rotation_keeps_at_most_max_files_of_at_most_max_bytes(tmp_path):
    log = tmp_path / "r.log"
    lines = [f"line {i:04d} ".encode() + b"x" * 80 + b"\n" for i in range(1000)]  # 91 bytes each
    write(log, lines, logfiles.Rotation(max_bytes=1000, max_files=3))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["r.log", "r.log.1", "r.log.2", "r.log.times"]
    assert all(os.path.getsize(tmp_path / n) <= 1000 for n in ("r.log", "r.log.1", "r.log.2"))
    kept = b"".join((tmp_path / n).read_bytes() for n in ("r.log.2", "r.log.1", "r.log"))
    assert b"".join(lines).endswith(kept) and len(kept) > 2000  # the newest lines, whole, oldest file first
    write(tmp_path / "one.log", lines, logfiles.Rotation(max_bytes=1000, max_files=1))
    assert not (tmp_path / "one.log.1").exists() and os.path.getsize(tmp_path / "one.log") <= 1000


@pytest.mark.parametrize("final_newline", [True, False])
def test_tail_offset_reads_back_across_blocks(tmp_path, monkeypatch, final_newline):
    monkeypatch.setattr(logfiles, "BLOCK", 7)  # many blocks, lines across their edges
    text = "".join(f"{i}-{'y' * (i % 5)}\n" for i in range(50))
    if not final_newline:
        text = text[:-1]
    path = tmp_path / "t.log"
    path.write_text(text)
    lines = text.splitlines(keepends=True)
    for count in (0, 1, 2, 13, 49, 50, 80):
        offset = logfiles.tail_offset(str(path), count)
        assert text[offset:] == "".join(lines[-count:] if count else []), count
    assert logfiles.tail_offset(str(tmp_path / "missing.log"), 3) == 0


def test_since_offset_finds_the_second_from_the_times_file(tmp_path):
    now = [100.0]
    path = tmp_path / "s.log"
    writer = logfiles.Writer(str(path), logfiles.Rotation(), threading.Lock(), users=1, clock=lambda: now[0])
    writer.write(b"at 100\n")
    now[0] = 101.5
    writer.write(b"at 101\n")
    writer.write(b"at 101 too\n")
    now[0] = 105.2
    writer.write(b"at 105\n")
    writer.close()
    text = path.read_bytes()
    assert text[logfiles.since_offset(str(path), 1, now=106.0):] == b"at 105\n"
    assert text[logfiles.since_offset(str(path), 5, now=106.0):] == b"at 101\nat 101 too\nat 105\n"
    assert logfiles.since_offset(str(path), 100, now=106.0) == 0
    assert logfiles.since_offset(str(path), 1, now=200.0) == len(text)  # nothing that recent


def test_begin_again_keeps_the_last_run_as_previous(tmp_path):
    path = tmp_path / "p.log"
    write(path, [b"a" * 600, b"b" * 600], logfiles.Rotation(max_bytes=1000, max_files=3))
    logfiles.begin_again(str(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.previous.log", "p.previous.log.times"]
    assert (tmp_path / "p.previous.log").read_bytes() == b"b" * 600
