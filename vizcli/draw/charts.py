"""Simple charts drawn with Pillow: horizontal bars with their labels and values."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ROW = 16
LABEL_WIDTH = 260
BAR_WIDTH = 360
VALUE_WIDTH = 70


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str) -> np.ndarray:
    """One bar per label, longest for the largest value, value written after each bar;
    ``H x W x 3`` uint8 on white."""
    from PIL import Image, ImageDraw

    from vizcli.draw.overlays import caption_font

    font = caption_font()
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH + 16
    height = 28 + ROW * len(labels) + 8
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((8, 6), title, fill=(0, 0, 0), font=font)
    largest = max((v for v in values if np.isfinite(v)), default=0.0)
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 28 + index * ROW
        text = label if draw.textlength(label, font=font) <= LABEL_WIDTH - 12 else "…" + label[-30:]
        draw.text((8, y), text, fill=(0, 0, 0), font=font)
        finite = np.isfinite(value)
        share = min(value / largest, 1.0) if finite and largest > 0 else (1.0 if not finite else 0)
        x0 = LABEL_WIDTH
        if share > 0:
            draw.rectangle((x0, y + 2, x0 + max(1, round(share * BAR_WIDTH)), y + ROW - 3),
                           fill=(66, 114, 196) if finite else (200, 40, 40))  # fmt: skip
        shown = f"{value:.3g}" if finite else "inf"
        draw.text((x0 + BAR_WIDTH + 6, y), shown, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)
