"""One exception family for every failure a user can cause or meet.

The CLI maps each class to an exit code and prints ``str(error)`` as a single line;
``--debug`` shows the traceback instead. Library callers can catch :class:`VizError`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

EXIT_RUNTIME = 1
EXIT_USAGE = 2


class VizError(Exception):
    """Base class: something went wrong while running (exit code 1)."""

    exit_code = EXIT_RUNTIME

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        message = " ".join(super().__str__().split())  # always a single line
        return f"{message} ({self.hint})" if self.hint else message


class UsageError(VizError):
    """The command line asks for something that cannot be: a bad name, value or path."""

    exit_code = EXIT_USAGE


class ModelNotFoundError(UsageError):
    """The model spec names no torchvision model and no importable factory."""


class WeightsError(VizError):
    """Weights could not be resolved or loaded."""


class WeightsUsageError(WeightsError, UsageError):
    """The ``--weights`` value itself is wrong (unknown enum name, missing file)."""

    exit_code = EXIT_USAGE


class ImageError(VizError):
    """An image file could not be read or converted."""


class InputSpecError(UsageError):
    """An ``--input`` shape or dtype is malformed or does not fit the model."""


class ModelRunError(VizError):
    """The model's forward pass failed for a reason the input spec does not explain."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def suggest(name: str, candidates: Iterable[str], n: int = 3) -> str | None:
    """Return a 'did you mean ...?' hint for ``name``, or None when nothing is close."""
    pool = list(candidates)
    matches = difflib.get_close_matches(name, pool, n=n, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in pool}
        matches = [lowered[m] for m in difflib.get_close_matches(name.lower(), lowered, n=n)]
    if not matches:
        return None
    return "did you mean " + ", ".join(repr(m) for m in matches) + "?"
