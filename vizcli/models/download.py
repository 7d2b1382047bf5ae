"""Downloading weights with a bound on every wait, progress on a terminal, nothing half-written.

The file is streamed into a hidden ``.NAME.partial-PID`` beside its destination and renamed into
place only when complete (and its SHA-256 matches the prefix torch hub puts in file names).
A server that accepts and then stalls is given ``VIZCLI_DOWNLOAD_TIMEOUT`` seconds (default
30) per read; ``VIZCLI_DOWNLOAD_DEADLINE`` (default 1800) bounds the whole download.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from vizcli.errors import UsageError, WeightsError, first_line

log = logging.getLogger("vizcli")
CHUNK = 1 << 20
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.")


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError as exc:
        raise UsageError(f"{name} must be a number of seconds, got {text!r}") from exc
    if not value > 0:
        raise UsageError(f"{name} must be positive, got {text!r}")
    return value


def read_timeout() -> float:
    return _seconds("VIZCLI_DOWNLOAD_TIMEOUT", 30.0)


def download(url: str, path: Path, what: str) -> None:
    """Fetch ``url`` into ``path`` atomically; any failure is one :class:`WeightsError`."""
    timeout, deadline = read_timeout(), _seconds("VIZCLI_DOWNLOAD_DEADLINE", 1800.0)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(f"cannot create {path.parent}: {exc.strerror or exc}") from exc
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    log.info("downloading %s from %s to %s (gives up after %.0f s without data)",
             what, url, path, timeout)  # fmt: skip
    try:
        _fetch(url, partial, timeout, time.monotonic() + deadline)
        _check_hash(partial, path.name)
        os.replace(partial, path)
    except WeightsError:
        raise
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        raise WeightsError(f"could not download {what}: {first_line(Exception(reason))}") from exc
    finally:  # also on Ctrl-C and SIGTERM: no partial file stays in the cache
        with contextlib.suppress(OSError):
            partial.unlink()


def _fetch(url: str, partial: Path, timeout: float, stop_at: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "vizcli"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        total = int(response.headers.get("Content-Length") or 0)
        if total:
            log.info("%s, %.1f MB", url.rsplit("/", 1)[-1], total / 1e6)
        done, shown = 0, -1
        show = sys.stderr.isatty()
        with partial.open("wb") as handle:
            while True:
                if time.monotonic() > stop_at:
                    raise WeightsError(
                        f"download of {url} took longer than VIZCLI_DOWNLOAD_DEADLINE allows"
                    )
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                handle.write(chunk)
                done += len(chunk)
                percent = int(100 * done / total) if total else -1
                if show and percent != shown:
                    shown = percent
                    sys.stderr.write(f"\r  {done / 1e6:.1f} MB ({percent}%)" if total else "")
            handle.flush()
            os.fsync(handle.fileno())
        if show:
            sys.stderr.write("\n")
        if total and done != total:
            raise WeightsError(f"download of {url} ended early ({done} of {total} bytes)")


def _check_hash(partial: Path, filename: str) -> None:
    """torch hub names files ``NAME-<sha256 prefix>.pth``: check the prefix when present."""
    found = _HASH_IN_NAME.search(filename)
    if not found:
        return
    digest = hashlib.sha256()
    with partial.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    if not digest.hexdigest().startswith(found.group(1)):
        raise WeightsError(f"downloaded {filename} does not match its hash; try again")


def reachable(host: str, port: int = 443) -> bool:
    """Whether a TCP connection to ``host`` opens within the read timeout (a bounded probe)."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=min(read_timeout(), 10.0)):
            return True
    except OSError:
        return False
