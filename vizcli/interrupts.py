"""Ctrl-C and SIGTERM that are never lost.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be; when that is a
finalizer run by the garbage collector, the exception is printed and dropped, and the run
would finish as if nothing happened. The CLI's signal handlers also record the request here,
and run folders check it before they are committed.
"""

from __future__ import annotations

_requested: list[str] = []


def request(kind: str) -> None:
    """Record a signal: ``interrupted`` (Ctrl-C) or ``terminated`` (SIGTERM)."""
    _requested.append(kind)


def requested() -> str | None:
    return _requested[-1] if _requested else None


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a signal arrived, even one whose exception was lost."""
    if _requested:
        raise KeyboardInterrupt(_requested[-1])


def clear() -> None:
    _requested.clear()
