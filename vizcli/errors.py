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


def failure_in_model(exc: BaseException) -> str | None:
    """One line for an exception raised inside a model's forward (the user's code, or a
    library layer given inputs it cannot take), or None when vizcli itself raised it.

    The traceback is read from vizcli's last frame on: the exception happened in the model
    when a module's ``__call__`` (``torch.nn.Module._call_impl``) ran after that frame. A
    vizcli hook that fails runs inside the call too, but is vizcli's last frame itself.
    The line names the deepest ``forward`` outside torch itself (the user's, torchvision's
    or timm's), else torch's own.
    """
    import os

    frames, tb = [], exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    inside = [i for i, f in enumerate(frames) if f.f_code.co_filename.startswith(package)]
    after = frames[inside[-1] + 1 :] if inside else frames
    calls = [i for i, f in enumerate(after) if f.f_code.co_name == "_call_impl"]
    if not calls:
        return None
    modules = [f for f in after[calls[0] :] if f.f_code.co_name == "forward"]
    torch_files = os.sep + "torch" + os.sep
    own = [f for f in modules if torch_files not in f.f_code.co_filename]  # not torch.nn's
    where = ""
    if modules:
        frame = (own or modules)[-1]
        code = frame.f_code
        owner = frame.f_locals.get(code.co_varnames[0]) if code.co_argcount else None
        name = f"{type(owner).__name__}.forward" if owner is not None else "forward"
        where = f" (in {name}, {frame.f_code.co_filename}:{frame.f_lineno})"
    return f"the model's forward failed: {type(exc).__name__}: {first_line(exc)}{where}"
