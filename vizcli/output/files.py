"""Writing files so that a reader never sees half a file and nothing is overwritten silently."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from vizcli.errors import UsageError, VizError


def _special(path: Path) -> str | None:
    """'device', 'pipe' or 'socket' for a special file (after links), else None."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISFIFO(mode):
        return "pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    return None


def check_writable_target(path: Path, force: bool = False) -> None:
    """Fail before any work when ``path`` cannot (or must not) be written.

    Devices and pipes (``/dev/null``, ``/dev/stdout``, a FIFO) are written through, never
    replaced; a symlink is followed, and the file it points to is what gets replaced.
    """
    kind = _special(path)
    if kind == "socket":
        raise UsageError(f"output path {path} is a socket; give a file name")
    if kind is not None:
        return
    if path.is_dir():
        raise UsageError(f"output path {path} is a folder; give a file name")
    if path.exists() and not force:
        raise UsageError(f"{path} already exists", hint="pass --force to replace it")
    parent = path.parent  # "." for a bare file name
    if not parent.is_dir():
        raise UsageError(f"folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"folder {parent} is not writable")


def _file_mode() -> int:
    """What ``open()`` would give a new file (0o644 under the usual umask), not mkstemp's 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_bytes_atomic(path: Path, data: bytes, force: bool = False) -> Path:
    """Write to a temporary file beside ``path`` and rename it into place.

    A device or pipe is written through directly; a symlink's target is the file replaced.
    """
    check_writable_target(path, force)
    if _special(path) is not None:
        try:
            with path.open("wb") as handle:
                handle.write(data)
        except OSError as exc:
            raise VizError(f"could not write {path}: {exc.strerror or exc}") from exc
        return path
    if path.is_symlink():
        path = path.resolve()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if force:
            os.replace(tmp_name, path)
        else:  # link() fails if the name appeared meanwhile: never clobber
            os.link(tmp_name, path)
            os.unlink(tmp_name)
    except FileExistsError as exc:
        raise UsageError(f"{path} already exists", hint="pass --force to replace it") from exc
    except OSError as exc:
        raise VizError(f"could not write {path}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
    return path


def write_text_atomic(path: Path, text: str, force: bool = False) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"), force)
