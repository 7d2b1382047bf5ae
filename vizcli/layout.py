"""Where a layer's output keeps the picture: its layout, found from shapes alone.

A layer's output is read as ``B x C x H x W`` maps when its shape fits the input image:

* ``nchw``: 4-D, the input's batch, and ``(H, W)`` a downsampling of the input by some
  stride (convolutional stages);
* ``nhwc``: 4-D channels-last, dims 1 and 2 fit the input and dims 2 and 3 do not (Swin
  stages, MaxViT and ConvNeXt internals);
* ``tokens``: 3-D ``B x N x D`` with ``N = prefix + h * w``, ``(h, w)`` the input's grid for
  some stride and ``prefix`` (class, distillation and register tokens, 0 to 16) the smallest
  count that fits: ViT-B/16 at 224 has 197 tokens (1 + 14x14), a distilled DeiT 198
  (2 + 14x14), a ViT with 4 registers 201 (5 + 14x14);
* anything else is not spatial: flat vectors, attention heads, window partitions
  (``B * windows x ...``, the batch differs).

No class or module name is looked at, so torchvision and timm models (and a user's own) are
read alike. A shape both 4-D layouts fit (``1 x 7 x 7 x 7``) is read as ``nchw``. On
non-square inputs a few token counts fit two readings: 5 + 5x7 tokens at 40x56 pixels are
also 0 + 5x8 at stride 7, and the smallest prefix wins. A square input's grid is square,
so it cannot be misread once it is 8x8 or larger ((g + 1)^2 - g^2 > 16 prefix tokens).

Strides are integers; a 4-D map may come out a little smaller than ``size / stride`` (valid
convolutions and pooling shave a pixel or two per stage: AlexNet's 55 and Inception's 8 at
299 pixels), tokens may not (a patch embedding rounds its grid down, or up when it pads).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

KINDS = ("nchw", "nhwc", "tokens")
MAX_PREFIX = 16  # class + distillation tokens + up to 14 registers
SHRINK = 0.05  # a 4-D map may be up to 5% + 1 pixel smaller than size / stride


@dataclass(frozen=True)
class Layout:
    """How a layer's output maps to ``B x C x h x w``."""

    kind: str = "nchw"  # one of KINDS
    grid: tuple[int, int] = (0, 0)  # (h, w) of the maps; (0, 0): not known yet
    prefix: int = 0  # tokens before the grid (class, distillation, registers); tokens only

    @property
    def channel_dim(self) -> int:
        return {"nchw": 1, "nhwc": 3, "tokens": 2}[self.kind]

    @property
    def positions(self) -> int:
        return self.grid[0] * self.grid[1]

    def describe(self) -> str:
        h, w = self.grid
        if self.kind == "tokens":
            return f"tokens ({self.prefix} + {h}x{w})" if self.prefix else f"tokens ({h}x{w})"
        return f"{self.kind} ({h}x{w})"

    def to_maps(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` (in this layout) as ``B x C x h x w``; prefix tokens are dropped."""
        if self.kind == "nhwc":
            return tensor.permute(0, 3, 1, 2)
        if self.kind == "tokens":
            h, w = self.grid
            patches = tensor[:, self.prefix :]
            return patches.transpose(1, 2).reshape(tensor.shape[0], -1, h, w)
        return tensor


def infer_layout(
    shape: Sequence[int],
    input_size: Sequence[int] | None = None,
    batch: int | None = None,
    loose: bool = False,
) -> Layout | None:
    """The layout of an output of ``shape`` for an input of ``input_size`` (H, W), or None.

    ``batch`` is the input's batch size; an output with another one is not spatial.
    ``input_size=None`` (size unknown) reads any 4-D output as ``nchw`` and tokens as a
    square grid. ``loose=True`` also reads a 4-D output with the input's batch that fits no
    grid (an upsampling layer, an odd crop) as ``nchw``: for a layer the user named.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) not in (3, 4) or min(shape) < 1 or (batch is not None and shape[0] != batch):
        return None
    if len(shape) == 4:
        _, d1, d2, d3 = shape
        if input_size is None:
            return Layout("nchw", (d2, d3))
        size = (int(input_size[-2]), int(input_size[-1]))
        if _fits(d2, d3, size):
            return Layout("nchw", (d2, d3))
        if _fits(d1, d2, size):
            return Layout("nhwc", (d1, d2))
        return Layout("nchw", (d2, d3)) if loose else None
    tokens = shape[1]
    for prefix in range(min(MAX_PREFIX, tokens - 1) + 1):
        grid = _token_grid(tokens - prefix, input_size)
        if grid is not None:
            return Layout("tokens", grid, prefix)
    return None


def _fits(h: int, w: int, size: tuple[int, int]) -> bool:
    """True if ``(h, w)`` is ``size`` divided by one integer stride (slightly shrunk allowed).

    Each side may be rounded up by under a pixel or shrunk by up to 5% plus a pixel; both
    sides move alike (same kernels, same rounding), within a pixel of each other, so a
    ``3 x 1`` grid is no ``2 x 2`` one.
    """
    (height, width), low, high = size, 1.0, float(max(size) + 1)
    for n, total in ((h, height), (w, width)):
        # n <= total / s + 1  and  n >= (1 - SHRINK) * total / s - 1
        low = max(low, (1 - SHRINK) * total / (n + 1))
        if n > 1:
            high = min(high, total / (n - 1))
    return any(
        abs((h - height / s) - (w - width / s)) <= 1
        for s in range(math.ceil(low - 1e-9), math.floor(high + 1e-9) + 1)
    )


def _token_grid(count: int, input_size: Sequence[int] | None) -> tuple[int, int] | None:
    """The ``(h, w)`` grid of ``count`` tokens for this input size, or None."""
    if input_size is None:
        side = math.isqrt(count)
        return (side, side) if side * side == count else None
    size = (int(input_size[-2]), int(input_size[-1]))
    best: tuple[float, tuple[int, int]] | None = None
    for h in range(1, math.isqrt(count) + 1):
        if count % h:
            continue
        for grid in {(h, count // h), (count // h, h)}:
            if _strided(grid, size):
                error = abs(math.log(grid[0] * size[1] / (grid[1] * size[0])))
                if best is None or error < best[0]:
                    best = (error, grid)
    return best[1] if best else None


def _strided(grid: tuple[int, int], size: tuple[int, int]) -> bool:
    """True if ``grid`` is ``size`` divided by one integer stride, both rounded down or up."""
    floor_low, floor_high, ceil_low, ceil_high = 1, math.inf, 1, math.inf
    for n, total in zip(grid, size, strict=True):
        floor_low = max(floor_low, total // (n + 1) + 1)  # total // s == n
        floor_high = min(floor_high, total // n)
        ceil_low = max(ceil_low, -(-total // n))  # ceil(total / s) == n
        if n > 1:
            ceil_high = min(ceil_high, -(-total // (n - 1)) - 1)
    return floor_low <= floor_high or ceil_low <= ceil_high
