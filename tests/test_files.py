"""Atomic file writes, in process: contents and permissions, refusals with their messages,
links followed, pipes and devices written through, a full disk and a name that appears
meanwhile, and never a temporary file left behind."""

from __future__ import annotations

import errno
import os
import socket
import threading

import pytest

from vizcli.errors import UsageError, VizError
from vizcli.output import files
from vizcli.output.files import check_writable_target, write_bytes_atomic, write_text_atomic


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_the_mode_open_would_give(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = write_bytes_atomic(tmp_path / "a.bin", b"\x00\x01")
    finally:
        os.umask(old)
    assert path == tmp_path / "a.bin" and path.read_bytes() == b"\x00\x01"
    assert path.stat().st_mode & 0o777 == mode
    assert _leftovers(tmp_path) == []


def test_existing_files_need_force(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("old")
    with pytest.raises(UsageError, match="a.json already exists") as error:
        write_text_atomic(path, "new")
    assert error.value.hint == "pass --force to replace it" and path.read_text() == "old"
    write_text_atomic(path, "café", force=True)
    assert path.read_bytes() == "café".encode()
    assert _leftovers(tmp_path) == []


def test_links_are_followed(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    with pytest.raises(UsageError, match="already exists"):
        write_text_atomic(link, "new")
    write_text_atomic(link, "new", force=True)
    assert link.is_symlink() and target.read_text() == "new"
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "made.txt")
    write_text_atomic(dangling, "made")
    assert (tmp_path / "made.txt").read_text() == "made" and dangling.is_symlink()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "output path .* is a folder; give a file name"),
        (lambda p: None, "folder .*missing does not exist"),
    ],
)
def test_refusals(tmp_path, make, message):
    path = tmp_path / "out"
    make(path)
    target = path if path.exists() else tmp_path / "missing" / "x.json"
    with pytest.raises(UsageError, match=message):
        write_bytes_atomic(target, b"x")


def test_sockets_are_refused_and_devices_written_through(tmp_path):
    sock_path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    try:
        with pytest.raises(UsageError, match="is a socket; give a file name"):
            check_writable_target(sock_path)
    finally:
        server.close()
    null = files.Path("/dev/null")
    assert files._special(null) == "device"
    assert write_bytes_atomic(null, b"anything") == null  # no temp file in /dev
    assert files._special(tmp_path) is None and files._special(tmp_path / "none") is None


def test_pipes_are_written_through(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert files._special(fifo) == "pipe"
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    write_bytes_atomic(fifo, b"through the pipe")
    reader.join(timeout=10)
    assert received == [b"through the pipe"] and fifo.exists()


def test_a_full_disk_leaves_nothing_and_says_so(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(VizError, match="could not write .*a.bin: No space left on device"):
        write_bytes_atomic(tmp_path / "a.bin", b"x" * 100)
    assert list(tmp_path.iterdir()) == []


def test_a_name_that_appears_meanwhile_is_never_clobbered(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    real_link = os.link

    def someone_else_first(src, dst):
        files.Path(dst).write_text("theirs")
        real_link(src, dst)

    monkeypatch.setattr(files.os, "link", someone_else_first)
    with pytest.raises(UsageError, match="a.txt already exists") as error:
        write_text_atomic(path, "mine")
    assert error.value.hint == "pass --force to replace it"
    assert path.read_text() == "theirs" and _leftovers(tmp_path) == []


def test_writing_into_a_pipe_that_fails_is_a_clear_error(tmp_path, monkeypatch):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def broken(self, *args, **kwargs):
        raise OSError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(files.Path, "open", broken)
    with pytest.raises(VizError, match="could not write .*fifo: Broken pipe"):
        write_bytes_atomic(fifo, b"x")


def test_nothing_is_replaced_unless_asked(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    with pytest.raises(UsageError, match="already exists"):
        check_writable_target(path)
    with pytest.raises(UsageError, match="already exists"):
        write_bytes_atomic(path, b"new")
    assert path.read_bytes() == b"old"


def test_the_partial_file_is_hidden_beside_the_target(tmp_path, monkeypatch):
    """Written as ``.NAME.<random>.part`` in the target's own folder (same file system, so the
    final link is atomic; a leftover is recognisable), never in /tmp."""
    seen = []
    real_fsync = os.fsync

    def look(fd):
        seen.extend(p.name for p in tmp_path.iterdir())
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", look)
    write_bytes_atomic(tmp_path / "a.png", b"x")
    (partial,) = seen
    assert partial.startswith(".a.png.") and partial.endswith(".part")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_a_folder_without_write_permission_is_refused_up_front(tmp_path, monkeypatch):
    monkeypatch.setattr(files.os, "access", lambda path, mode: False)  # root may write anywhere
    with pytest.raises(UsageError) as error:
        check_writable_target(tmp_path / "a.png")
    assert str(error.value) == f"folder {tmp_path} is not writable"


def test_a_bare_file_name_is_checked_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    check_writable_target(files.Path("a.png"))
    monkeypatch.setattr(files.os, "access", lambda path, mode: str(path) != ".")
    with pytest.raises(UsageError, match=r"^folder \. is not writable"):
        check_writable_target(files.Path("a.png"))
