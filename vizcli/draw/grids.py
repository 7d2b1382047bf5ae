"""Image grids from stacks of 2-D maps: normalise, colour, upscale, tile (make_grid)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from vizcli.draw import colormaps

if TYPE_CHECKING:
    import numpy as np
    import torch

Scaling = Literal["each", "global", "symmetric"]


def normalize(maps: torch.Tensor, scaling: Scaling, bound: float | None = None) -> torch.Tensor:
    """Scale ``N x H x W`` maps into [0, 1].

    ``each``: every map min-max on its own (the seeds' ``scale_each``); ``global``: one
    min-max for all; ``symmetric``: zero at 0.5 and +-``bound`` (default max|x|) at the ends,
    for signed values such as weights.
    """
    import torch

    maps = maps.detach().float()
    if scaling == "symmetric":
        limit = max(float(maps.abs().amax()) if bound is None else bound, 1e-12)
        return (maps / (2 * limit) + 0.5).clamp(0, 1)
    if scaling == "each":
        flat = maps.flatten(1)
        low = flat.amin(1).view(-1, 1, 1)
        high = flat.amax(1).view(-1, 1, 1)
    else:
        low, high = maps.amin(), maps.amax()
    span = high - low
    return torch.where(span > 0, (maps - low) / span.clamp_min(1e-12), torch.zeros_like(maps))


def upscale_factor(height: int, width: int, cell_size: int) -> int:
    """Nearest-neighbour factor so that the larger side reaches ``cell_size`` pixels."""
    return max(1, math.ceil(cell_size / max(height, width, 1)))


def tile(
    cells: torch.Tensor,
    nrow: int | None = None,
    padding: int = 2,
    upscale: int = 1,
    pad_value: float = 1.0,
) -> np.ndarray:
    """Tile RGB cells ``N x 3 x H x W`` in [0, 1] into one ``H' x W' x 3`` uint8 image."""
    import torch
    from torchvision.utils import make_grid

    if upscale > 1:
        cells = torch.nn.functional.interpolate(cells, scale_factor=upscale, mode="nearest")
    nrow = nrow or math.ceil(math.sqrt(cells.shape[0]))
    grid = make_grid(cells, nrow=nrow, padding=padding, pad_value=pad_value)
    return grid.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def map_grid(
    maps: torch.Tensor,
    colormap: str = "viridis",
    scaling: Scaling = "each",
    cell_size: int = 0,
    padding: int = 2,
    bound: float | None = None,
) -> np.ndarray:
    """``N x H x W`` maps -> one coloured grid image (sqrt layout), as HxWx3 uint8."""
    cells = colormaps.apply(normalize(maps, scaling, bound), colormap)
    factor = upscale_factor(maps.shape[-2], maps.shape[-1], cell_size) if cell_size else 1
    # white padding would vanish into a diverging map's zero colour: use grey there
    pad_value = 0.35 if colormap in colormaps.DIVERGING else 1.0
    return tile(cells, padding=padding, upscale=factor, pad_value=pad_value)
