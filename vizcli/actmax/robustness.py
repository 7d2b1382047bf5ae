"""Transformation robustness: every step the model sees each picture moved, scaled and turned.

A feature that survives small random jitter, scaling and rotation is one the network really
responds to, not an adversarial pattern tied to exact pixel positions (Olah et al. 2017).
Each picture of the batch gets its own random transform, drawn from the run's generator, and
the whole move is one affine resampling (bilinear), the area it uncovers filled with grey,
as a padded picture would be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Robustness:
    """Ranges of the random transform: shift as a fraction of the side, scale, degrees."""

    shift: float = 16 / 224  # up to +-16 pixels at 224
    scale: tuple[float, float] = (0.9, 1.1)
    degrees: float = 10.0
    fill: float = 0.5  # grey where the moved picture leaves no pixels

    def matrices(self, count: int, generator: torch.Generator) -> torch.Tensor:
        """``count x 2 x 3`` affine maps from output to input coordinates ([-1, 1] grid)."""
        import torch

        draws = torch.rand((count, 4), generator=generator, dtype=torch.float64)
        low, high = self.scale
        scale = low + (high - low) * draws[:, 0]
        angle = (2 * draws[:, 1] - 1) * math.radians(self.degrees)
        shift = (2 * draws[:, 2:] - 1) * 2 * self.shift  # the grid spans 2 units per side
        cos, sin = angle.cos() / scale, angle.sin() / scale
        matrices = torch.stack(
            [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)],
            1,
        )
        return matrices.float()

    def apply(self, pictures: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Each picture (``B x C x H x W``) moved by its own random transform."""
        import torch.nn.functional as F

        matrices = self.matrices(pictures.shape[0], generator).to(pictures.device)
        grid = F.affine_grid(matrices, list(pictures.shape), align_corners=False)
        moved = F.grid_sample(pictures - self.fill, grid, "bilinear", "zeros", align_corners=False)
        return moved + self.fill
