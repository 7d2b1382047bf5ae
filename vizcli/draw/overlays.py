"""CAM pictures: the heatmap, the heatmap over the image, and a captioned panel of both."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from vizcli import artifacts
from vizcli.draw import colormaps

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
    from PIL import Image, ImageDraw

    height = max(t.shape[0] for t in tiles)
    width = sum(t.shape[1] for t in tiles) + gap * (len(tiles) - 1)
    strip = 18
    canvas = Image.new("RGB", (width, height + strip), (255, 255, 255))
    x = 0
    for tile in tiles:
        canvas.paste(Image.fromarray(tile), (x, strip))
        x += tile.shape[1] + gap
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), caption, fill=(0, 0, 0), font=caption_font())
    return np.asarray(canvas)


def caption_font() -> Any:
    """The scalable default font (Pillow with FreeType); the bitmap one drops spaces."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=13)
    except (ImportError, OSError, TypeError):
        return ImageFont.load_default()


def method_slug(method: str) -> str:
    """A name safe in file names and still readable: ``gradcam++`` -> ``gradcampp``."""
    return method.replace("+", "p")


def in_original_frame(
    photo: np.ndarray, map01: torch.Tensor, box: list[float]
) -> tuple[np.ndarray, np.ndarray]:
    """The map (``h x w`` in [0, 1], over the model's crop) laid into the photo's own frame.

    Returns the map at the photo's size (0 outside the crop) and a boolean mask of the
    region the model saw; ``box`` is the crop box (left, top, right, bottom) in photo pixels.
    """
    import torch

    height, width = photo.shape[:2]
    x0, y0, x1, y1 = (round(v) for v in box)  # beyond the photo where the crop padded it
    left, top, right, bottom = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    full = np.zeros((height, width), np.float32)
    seen = np.zeros((height, width), bool)
    if right > left and bottom > top:
        whole = torch.nn.functional.interpolate(
            map01[None, None].float(), size=(y1 - y0, x1 - x0), mode="bilinear",
            align_corners=False,
        )[0, 0]  # fmt: skip
        inside = whole[top - y0 : bottom - y0, left - x0 : right - x0]
        full[top:bottom, left:right] = inside.clamp(0, 1).numpy()
        seen[top:bottom, left:right] = True
    return full, seen


def mark_unseen(pixels: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Grey out what the model never saw, and outline the crop it did see."""
    marked = pixels.copy()
    marked[~seen] = (0.35 * marked[~seen] + 0.65 * 110).astype(np.uint8)
    if seen.any() and not seen.all():
        rows, cols = np.where(seen)
        top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
        for y0, y1, x0, x1 in (
            (top, top + 1, left, right),
            (bottom - 1, bottom, left, right),
            (top, bottom, left, left + 1),
            (top, bottom, right - 1, right),
        ):
            marked[max(y0, 0) : y1 + 1, max(x0, 0) : x1 + 1] = (255, 255, 255)  # fmt: skip
    return marked


def cam_artifacts(
    image: torch.Tensor,
    big_map: torch.Tensor,
    result: Any,
    method: str,
    options: Any,
    step: int,
    photo: np.ndarray | None = None,
    box: list[float] | None = None,
) -> Iterator[artifacts.Artifact]:
    """Overlay, map (grayscale) and panel for one map; the raw map as .npy on request.

    With ``photo`` and ``box`` (``--frame original``, the default) the pictures are in the
    photo's own pixel frame, the region the crop cut off greyed out; otherwise they show the
    model's input."""
    target = result.target
    class_label = target.name.replace(" ", "_")
    label = f"{result.image}__{class_label}"
    if options.targets:  # asked-for classes are named by index, never as if predicted
        rank = f"class{target.index}/"
    else:
        rank = f"top{result.rank + 1}/" if options.topk > 1 else ""
    title, method = method, method_slug(method)
    if photo is not None and box is not None:
        import torch

        full, seen = in_original_frame(photo, result.map, box)
        colours = heatmap(torch.from_numpy(full), options.colormap)
        blended = np.where(seen[..., None], overlay(photo, colours, options.alpha), photo)
        colours[~seen] = 110  # no map where the model saw nothing
        heat = mark_unseen(colours, seen)
        blended = mark_unseen(blended, seen)
        pixels = mark_unseen(photo, seen)
        gray = (full * 255).round().astype(np.uint8)
    else:
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
        raw = result.raw if getattr(result, "raw", None) is not None else result.map
        np.save(buffer, raw.numpy().astype(np.float32))
        yield artifacts.File(f"{label}__{method}.npy", buffer.getvalue(), kind="file")


def sanity_curve(report: Any, width: int = 640, height: int = 360) -> np.ndarray:
    """Adebayo et al.'s figure: similarity to the original map (y, -1..1) as blocks are
    re-initialised from the logits down (x), one line per measure, drawn with Pillow."""
    from PIL import Image, ImageDraw, ImageFont

    rows = report.sanity
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    try:
        font = ImageFont.load_default(size=12)
    except (ImportError, OSError, TypeError):
        font = ImageFont.load_default()
    left, right, top, bottom = 48, width - 12, 28, height - 64

    def y_of(value: float) -> float:
        return bottom - (value + 1) / 2 * (bottom - top)

    for tick in (-1.0, -0.5, 0.0, 0.5, 1.0):
        draw.line([(left, y_of(tick)), (right, y_of(tick))], fill=(225, 225, 225))
        draw.text((6, y_of(tick) - 7), f"{tick:+.1f}", fill=(0, 0, 0), font=font)
    draw.text((left, 6), f"{report.title}: sanity check (cascading randomisation)",
              fill=(0, 0, 0), font=font)  # fmt: skip
    palette = {"spearman": (214, 39, 40), "spearman_abs": (255, 127, 14),
               "ssim": (31, 119, 180), "hog": (44, 160, 44)}  # fmt: skip
    colours = {key: palette[key] for key in report.sanity_measures()}
    count = max(len(rows), 2)

    def x_of(step: int) -> float:
        return left + step * (right - left) / (count - 1)

    for key, colour in colours.items():
        points = [(x_of(i), y_of(row[key])) for i, row in enumerate(rows)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
    for index, (key, colour) in enumerate(colours.items()):
        draw.text((left + index * 130, height - 20), f"-- {key}", fill=colour, font=font)
    if rows:
        draw.text((left, bottom + 6), f"{rows[0]['randomized_through']} ... "
                  f"{rows[-1]['randomized_through']} (logits -> input)", fill=(0, 0, 0),
                  font=font)  # fmt: skip
    return np.asarray(canvas)
