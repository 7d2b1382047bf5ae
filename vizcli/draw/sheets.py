"""Contact sheets: pictures in a grid, each with its caption underneath."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

CAPTION = 18  # pixels of the caption strip under each tile
GAP = 4


def tile_sheet(
    tiles: Sequence[np.ndarray], captions: Sequence[str], columns: int | None = None
) -> np.ndarray:
    """``H x W x 3`` uint8 tiles in rows of ``columns`` on white, captions under each.

    Tiles of different sizes keep their size in cells as large as the largest tile.
    """
    from PIL import Image, ImageDraw

    from vizcli.draw.overlays import caption_font

    if len(tiles) != len(captions):
        raise ValueError("one caption per tile")
    columns = columns or math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    cell_h = max(t.shape[0] for t in tiles) + CAPTION
    cell_w = max(t.shape[1] for t in tiles)
    width = columns * cell_w + (columns - 1) * GAP
    height = rows * cell_h + (rows - 1) * GAP
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = caption_font()
    for index, (tile, caption) in enumerate(zip(tiles, captions, strict=True)):
        x = (index % columns) * (cell_w + GAP)
        y = (index // columns) * (cell_h + GAP)
        canvas.paste(Image.fromarray(tile), (x, y))
        text = _fit(draw, caption, font, tile.shape[1])
        draw.text((x + 2, y + tile.shape[0] + 2), text, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def picture_grid(
    pictures: torch.Tensor, captions: Sequence[str], columns: int | None = None
) -> np.ndarray:
    """``B x 3 x H x W`` pictures in [0, 1] as one captioned sheet."""
    from vizcli.draw.overlays import to_pixels

    tiles = [to_pixels(p.detach().float().cpu().clamp(0, 1)) for p in pictures]
    return tile_sheet(tiles, captions, columns)


def _fit(draw: object, text: str, font: object, width: int) -> str:
    """``text`` cut with an ellipsis so that it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width - 4:  # type: ignore[attr-defined]
        return text
    while text and draw.textlength(text + "…", font=font) > width - 4:  # type: ignore[attr-defined]
        text = text[:-1]
    return text + "…"
