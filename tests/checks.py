"""Checks shared by the tests (not part of vizcli)."""

from __future__ import annotations

import math

from torch import nn


def has_hooks(model: nn.Module) -> bool:
    """True if any module still holds a forward, forward-pre or backward hook."""
    return any(
        m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
        for m in model.modules()
    )


def grid_shape(count: int, height: int, width: int, padding: int = 2) -> tuple[int, int]:
    """(H, W) of a make_grid-style grid of ``count`` cells, worked out on paper."""
    if count == 1:  # a single cell comes back unpadded
        return height, width
    ncol = min(math.ceil(math.sqrt(count)), count)
    nrows = math.ceil(count / ncol)
    return nrows * (height + padding) + padding, ncol * (width + padding) + padding
