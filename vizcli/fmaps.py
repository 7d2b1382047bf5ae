"""Feature maps: one forward pass per image, each chosen layer's output drawn as it appears.

The hook callback turns the output into a grid and hands it on at once, so memory holds one
layer's maps at a time, never all of them (vgg16 has 13 conv outputs, 1.2 GB at fp32 for 16
images).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vizcli import artifacts
from vizcli.draw import grids
from vizcli.errors import UsageError
from vizcli.layout import infer_layout

if TYPE_CHECKING:
    import torch
    from torch import nn

    from vizcli.models import LoadedModel

Emit = artifacts.Emit


@dataclass(frozen=True)
class FmapOptions:
    max_channels: int = 64
    colormap: str = "viridis"
    cell_size: int = 0  # upscale small maps (nearest) to about this many pixels; 0 keeps size

    def __post_init__(self) -> None:
        """A bad colormap or a picture too large is refused before any work."""
        from vizcli.draw.colormaps import lookup_table
        from vizcli.limits import check_picture

        lookup_table(self.colormap)
        check_picture("--cell-size", self.max_channels * max(self.cell_size, 1) ** 2)


@dataclass
class FmapLayer:
    """One layer's output for one image (for the terminal table)."""

    image: str
    name: str
    shape: list[int]
    channels_shown: int
    grid: tuple[int, int] | None  # (H, W) of the image written; None when skipped
    note: str = ""


def as_maps(
    output: torch.Tensor, input_size: Sequence[int] | None = None, batch: int | None = None
) -> torch.Tensor | None:
    """First batch item as ``C x H x W`` maps, or None when the output is not image-like.

    The layout comes from :func:`vizcli.layout.infer_layout`: ``B x C x H x W`` is used as it
    is, channels-last maps (Swin) are permuted, tokens ``B x N x D`` (ViT, DeiT, registers)
    become ``D x h x w`` without their class/distillation/register tokens. ``input_size`` is
    the input image's (H, W); without it any 4-D output is read as ``nchw`` and tokens as a
    square grid. Maps of a single row or column are not image-like.
    """
    layout = infer_layout(output.shape, input_size, batch, loose=True)
    if layout is None or min(layout.grid) < 2:
        return None
    return layout.to_maps(output[:1])[0]


def feature_maps(
    loaded: LoadedModel,
    images: Sequence[Path],
    layers: dict[str, nn.Module],
    options: FmapOptions,
    emit: Emit,
    strict: bool = True,
    progress: Callable[[int], None] | None = None,
) -> list[FmapLayer]:
    """Draw every chosen layer's output for every image; ``strict`` rejects non-image outputs."""
    import torch

    from vizcli.hooks import capture
    from vizcli.images import load_tensor, unique_labels

    model, preprocess = loaded.model, loaded.preprocess
    device = loaded.input_device
    report: list[FmapLayer] = []
    labels = unique_labels(images)  # a/cat.png and b/cat.png stay apart
    for step, path in enumerate(images):
        batch = load_tensor(path, preprocess).to(device)
        label = labels[step]
        size, count = tuple(batch.shape[-2:]), batch.shape[0]
        emit(artifacts.Image("input", _input_pixels(batch[0], preprocess), step, label))

        def on_output(
            name: str,
            output: torch.Tensor,
            step: int = step,
            label: str = label,
            size: tuple[int, int] = size,
            count: int = count,
        ) -> None:
            maps = as_maps(output.detach(), size, count)
            shape = list(output.shape)
            if maps is None:
                if strict:
                    raise UsageError(
                        f"layer {name!r} outputs {tuple(shape)}, not an image-like tensor",
                        hint="pick a convolutional layer; see 'vizcli layers MODEL'",
                    )
                report.append(FmapLayer(label, name, shape, 0, None, "not image-like; skipped"))
                return
            maps = maps[: options.max_channels].float().cpu()
            pixels = grids.map_grid(maps, options.colormap, "each", options.cell_size)
            emit(artifacts.Image(f"fmaps/{name}", pixels, step, label))
            report.append(FmapLayer(label, name, shape, maps.shape[0], pixels.shape[:2]))

        with capture(model, layers, on_output), torch.no_grad():
            model.eval()
            model(batch)
        if progress:
            progress(1)
    return report


def _input_pixels(tensor: torch.Tensor, preprocess) -> object:  # noqa: ANN001
    import torch

    image = preprocess.denormalize(tensor.float().cpu())
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    return image.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
