"""CAM pictures: the heatmap, the heatmap over the image, and a captioned panel of both."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from vizcli import artifacts
from vizcli.render import colormaps

if TYPE_CHECKING:
    import torch


def heatmap(map01: torch.Tensor, colormap: str) -> np.ndarray:
    """``H x W`` values in [0, 1] -> ``H x W x 3`` uint8 colours."""
    rgb = colormaps.apply(map01, colormap)  # 3 x H x W floats
    return (rgb.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def to_pixels(image: torch.Tensor) -> np.ndarray:
    """``3 x H x W`` (or 1 x H x W) floats in [0, 1] -> uint8 RGB."""
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    return (image.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)


def overlay(pixels: np.ndarray, heat: np.ndarray, alpha: float) -> np.ndarray:
    """Blend: ``alpha`` of the heatmap over the image."""
    blend = (1 - alpha) * pixels.astype(np.float32) + alpha * heat.astype(np.float32)
    return blend.round().clip(0, 255).astype(np.uint8)


def panel(tiles: list[np.ndarray], caption: str, gap: int = 4) -> np.ndarray:
    """Tiles side by side on white, with a caption strip above."""
    from PIL import Image, ImageDraw, ImageFont

    height = max(t.shape[0] for t in tiles)
    width = sum(t.shape[1] for t in tiles) + gap * (len(tiles) - 1)
    strip = 18
    canvas = Image.new("RGB", (width, height + strip), (255, 255, 255))
    x = 0
    for tile in tiles:
        canvas.paste(Image.fromarray(tile), (x, strip))
        x += tile.shape[1] + gap
    draw = ImageDraw.Draw(canvas)
    try:  # the scalable default font (Pillow with FreeType); the bitmap one drops spaces
        font = ImageFont.load_default(size=13)
    except (ImportError, OSError, TypeError):
        font = ImageFont.load_default()
    draw.text((4, 2), caption, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def method_slug(method: str) -> str:
    """A name safe in file names and still readable: ``gradcam++`` -> ``gradcampp``."""
    return method.replace("+", "p")


def cam_artifacts(
    image: torch.Tensor,
    big_map: torch.Tensor,
    result: Any,
    method: str,
    options: Any,
    step: int,
) -> Iterator[artifacts.Artifact]:
    """Overlay, raw map (grayscale) and panel for one map; the low-res map as .npy on request."""
    target = result.target
    class_label = target.name.replace(" ", "_")
    label = f"{result.image}__{class_label}"
    if options.targets:  # asked-for classes are named by index, never as if predicted
        rank = f"class{target.index}/"
    else:
        rank = f"top{result.rank + 1}/" if options.topk > 1 else ""
    title, method = method, method_slug(method)
    pixels = to_pixels(image)
    heat = heatmap(big_map, options.colormap)
    blended = overlay(pixels, heat, options.alpha)
    gray = (big_map.numpy() * 255).round().astype(np.uint8)
    caption = f"{target.name} {target.probability:.1%}  {title}"
    yield artifacts.Image(f"cam/{method}/{rank}overlay", blended, step, label)
    yield artifacts.Image(f"cam/{method}/{rank}map", np.stack([gray] * 3, axis=-1), step, label)
    yield artifacts.Image(
        f"cam/{method}/{rank}panel", panel([pixels, heat, blended], caption), step, label
    )
    if options.npy:
        buffer = io.BytesIO()
        np.save(buffer, result.map.numpy().astype(np.float32))
        yield artifacts.File(f"{label}__{method}.npy", buffer.getvalue(), kind="file")
