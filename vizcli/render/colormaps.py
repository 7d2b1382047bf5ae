"""Colormaps as 256-entry lookup tables, interpolated from a few anchor colours.

No matplotlib dependency: the anchors below are sampled from the published viridis, inferno
and jet maps at even steps; linear interpolation between them is visually indistinguishable at
the sizes vizcli draws. ``bwr`` is the diverging blue-white-red map for signed values.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

from vizcli.errors import UsageError, suggest

if TYPE_CHECKING:
    import torch

_ANCHORS: dict[str, list[str]] = {
    "gray": ["#000000", "#ffffff"],
    "viridis": [
        "#440154", "#482878", "#3e4989", "#31688e", "#26828e",
        "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725",
    ],
    "inferno": [
        "#000004", "#1b0c41", "#4a0c6b", "#781c6d", "#a52c60",
        "#cf4446", "#ed6925", "#fb9b06", "#f7d13d", "#fcffa4",
    ],
    "jet": ["#00007f", "#0000ff", "#007fff", "#00ffff", "#7fff7f", "#ffff00", "#ff7f00",
            "#ff0000", "#7f0000"],
    "bwr": ["#0000ff", "#ffffff", "#ff0000"],
}  # fmt: skip
DIVERGING = ("bwr",)
COLORMAPS = tuple(_ANCHORS)


@functools.cache
def lookup_table(name: str) -> np.ndarray:
    """A ``256 x 3`` uint8 table for the colormap ``name``."""
    if name not in _ANCHORS:
        hint = suggest(name, _ANCHORS) or "choose from " + ", ".join(_ANCHORS)
        raise UsageError(f"unknown colormap {name!r}", hint=hint)
    anchors = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in _ANCHORS[name]])
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
