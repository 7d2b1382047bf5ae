"""Refuse up front what would not fit: sizes are estimated before anything is allocated.

Every limit names the number, the limit and the variable that raises it:
``VIZCLI_MAX_INPUT_MB`` (one input tensor, default 512 MB) and ``VIZCLI_MAX_PICTURE_MP``
(one drawn picture, default 100 megapixels).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from vizcli.errors import UsageError


def _limit(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    try:
        value = float(text) if text else default
    except ValueError as exc:
        raise UsageError(f"{name} must be a number, got {text!r}") from exc
    if not value > 0:
        raise UsageError(f"{name} must be positive, got {text!r}")
    return value


def check_input(what: str, shape: Sequence[int], element_bytes: int = 4) -> None:
    """One input tensor of ``shape`` must stay under ``VIZCLI_MAX_INPUT_MB``."""
    limit = _limit("VIZCLI_MAX_INPUT_MB", 512.0) * 1e6
    needed = math.prod(int(d) for d in shape) * element_bytes
    if needed > limit:
        dims = "×".join(str(int(d)) for d in shape)
        raise UsageError(
            f"{what} {dims} needs {needed / 1e9:.2f} GB for the input alone, over the "
            f"{limit / 1e6:.0f} MB limit (its activations need many times more)",
            hint="use a smaller size, or raise VIZCLI_MAX_INPUT_MB if the machine has the memory",
        )


def check_picture(what: str, pixels: float) -> None:
    """One drawn picture must stay under ``VIZCLI_MAX_PICTURE_MP`` megapixels."""
    limit = _limit("VIZCLI_MAX_PICTURE_MP", 100.0) * 1e6
    if pixels > limit:
        raise UsageError(
            f"{what} would draw pictures of {pixels / 1e6:.0f} megapixels, over the "
            f"{limit / 1e6:.0f} MP limit",
            hint="use a smaller value, or raise VIZCLI_MAX_PICTURE_MP",
        )
