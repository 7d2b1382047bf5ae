"""Human-readable numbers: counts with separators, SI units for mult-adds and bytes (for the
terminal, text formats and the lines of `check`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def count(value: int) -> str:
    return f"{value:,}"


def si(value: float, unit: str = "") -> str:
    """``1814073344 -> '1.81 G'``; small values are printed whole."""
    for scale, prefix in _SI:
        if abs(value) >= scale:
            return f"{value / scale:.2f} {prefix}{unit}"
    return f"{value:g} {unit}".rstrip()


def size(num_bytes: int) -> str:
    """Decimal bytes, as torchinfo's MB: ``46758048 -> '46.76 MB'``."""
    return si(num_bytes, "B").replace(" kB", " KB")


def shape(value: Sequence[Any]) -> str:
    """``[1, 64, 56, 56] -> '1×64×56×56'``; nested output lists are joined with ', '."""
    if not value:
        return "--"
    if isinstance(value[0], list | tuple):
        return ", ".join(shape(v) for v in value)
    return "×".join(str(v) for v in value)
