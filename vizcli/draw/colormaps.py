"""Colormaps as 256-entry lookup tables.

No matplotlib dependency: viridis, inferno and jet are matplotlib's own 256 colours (rounded to
bytes), stored in :mod:`vizcli.draw.colormap_tables` (``scripts/colormap_tables.py`` makes
it); ``gray`` and the diverging blue-white-red ``bwr`` are linear, as matplotlib defines them.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from vizcli.draw.colormap_tables import TABLES
from vizcli.errors import UsageError, suggest

if TYPE_CHECKING:
    import torch

_LINEAR: dict[str, list[tuple[int, int, int]]] = {
    "gray": [(0, 0, 0), (255, 255, 255)],
    "bwr": [(0, 0, 255), (255, 255, 255), (255, 0, 0)],
}
DIVERGING = ("bwr",)
COLORMAPS = ("gray", "viridis", "inferno", "jet", "bwr")


@functools.cache
def lookup_table(name: str) -> np.ndarray:
    """A ``256 x 3`` uint8 table for the colormap ``name``."""
    if name in TABLES:
        data = bytes.fromhex("".join(TABLES[name]))
        return np.frombuffer(data, dtype=np.uint8).reshape(256, 3).copy()
    if name not in _LINEAR:
        hint = suggest(name, COLORMAPS) or "choose from " + ", ".join(COLORMAPS)
        raise UsageError(f"unknown colormap {name!r}", hint=hint)
    anchors = np.array(_LINEAR[name], dtype=np.float64)
    positions = np.linspace(0.0, 1.0, len(anchors))
    samples = np.linspace(0.0, 1.0, 256)
    table = np.stack([np.interp(samples, positions, anchors[:, ch]) for ch in range(3)], axis=1)
    return table.round().astype(np.uint8)


def apply(values: torch.Tensor, name: str) -> torch.Tensor:
    """Map values in [0, 1] of shape ``(..., H, W)`` to RGB floats ``(..., 3, H, W)``."""
    import torch

    table = torch.from_numpy(lookup_table(name)).to(values.device, torch.float32) / 255.0
    index = (values.clamp(0, 1) * 255).round().long()
    return table[index].movedim(-1, -3)
