"""Convolution weights as pictures: colour for RGB input filters, a diverging map otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from vizcli import artifacts
from vizcli.draw import grids
from vizcli.errors import UsageError

if TYPE_CHECKING:
    import torch
    from torch import nn

Mode = Literal["auto", "rgb", "mean", "filters"]


@dataclass(frozen=True)
class KernelOptions:
    mode: Mode = "auto"
    max_filters: int = 64
    cell_size: int = 32  # small kernels are upscaled (nearest) to about this many pixels
    colormap: str = "bwr"  # for signed weights; RGB filters are shown in their own colours

    def __post_init__(self) -> None:
        """A bad colormap or a picture too large is refused before any work."""
        from vizcli.draw.colormaps import lookup_table
        from vizcli.limits import check_picture

        lookup_table(self.colormap)
        check_picture("--cell-size", self.max_filters * max(self.cell_size, 1) ** 2)


def kernel_layers(
    model: nn.Module,
    patterns: list[str] | None = None,
    types: list[str] | None = None,
    name: str = "the model",
) -> dict[str, nn.Module]:
    """The layers ``--layer``/``--type`` name; by default every convolution of ``name``."""
    from vizcli.layers import choose_layers, conv_layers

    chosen = choose_layers(model, patterns, types, conv_layers)
    if not chosen:
        raise UsageError(
            f"{name} has no convolution layers", hint="'vizcli hist' shows any weights"
        )
    return chosen


@dataclass
class KernelLayer:
    """What was drawn for one layer (for the terminal table)."""

    name: str
    weight_shape: list[int]
    mode: str
    filters_shown: int
    images: int


def kernel_images(
    layers: dict[str, nn.Module], options: KernelOptions, report: list[KernelLayer]
) -> Iterator[artifacts.Image]:
    """Yield one grid per layer (or one per filter in ``filters`` mode)."""
    for name, module in layers.items():
        weight = getattr(module, "weight", None)
        if weight is None or weight.dim() < 3:
            raise UsageError(f"layer {name!r} ({type(module).__name__}) has no convolution kernel")
        if weight.is_meta:
            raise UsageError("kernels need real weights; the model was built on the meta device")
        weight = weight.detach().float().cpu()
        if "Transpose" in type(module).__name__:
            weight = _transposed_as_filters(weight, getattr(module, "groups", 1))
        weight = weight[: options.max_filters]
        groups = getattr(module, "groups", 1)
        colour = weight.dim() == 4 and weight.shape[1] == 3 and groups == 1
        mode = _mode(colour, options.mode, name, weight.shape[1], groups)
        images = list(_draw(name, weight, mode, options))
        report.append(
            KernelLayer(name, list(module.weight.shape), mode, weight.shape[0], len(images))
        )
        yield from images


def _transposed_as_filters(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """A transposed conv stores (in, out / groups, ...); return (out, in / groups, ...): one
    filter per output channel over the input channels of its group."""
    in_channels, per_group, *kernel = weight.shape
    grouped = weight.reshape(groups, in_channels // groups, per_group, *kernel)
    return grouped.transpose(1, 2).reshape(groups * per_group, in_channels // groups, *kernel)


def _mode(colour: bool, requested: Mode, name: str, in_channels: int, groups: int) -> str:
    """auto: colour for filters over RGB input (an ungrouped first layer), else the mean."""
    if requested == "rgb" and not colour:
        why = (
            f"is grouped (groups={groups}): each filter sees {in_channels} channels of its "
            "group, not an RGB image"
            if groups > 1
            else f"has {in_channels} input channels per filter; rgb needs 3"
        )
        raise UsageError(f"layer {name!r} {why}", hint="use --mode mean or filters")
    if requested != "auto":
        return requested
    return "rgb" if colour else "mean"


def _draw(
    name: str, weight: torch.Tensor, mode: str, options: KernelOptions
) -> Iterator[artifacts.Image]:
    if mode == "rgb":
        flat = weight.flatten(1)  # each filter min-max over its three colour channels
        low, high = flat.amin(1).view(-1, 1, 1, 1), flat.amax(1).view(-1, 1, 1, 1)
        cells = (weight - low) / (high - low).clamp_min(1e-12)
        height, width = weight.shape[-2:]
        factor = grids.upscale_factor(height, width, options.cell_size)
        yield artifacts.Image(f"kernels/{name}", grids.tile(cells, upscale=factor))
        return
    if mode == "filters":
        bound = float(weight.abs().amax())  # one scale per layer: filters stay comparable
        for index, filt in enumerate(weight):
            maps = filt.unsqueeze(0) if filt.dim() == 2 else _as_maps(filt.unsqueeze(1))
            yield artifacts.Image(
                f"kernels/{name}/filter_{index}",
                grids.map_grid(maps, options.colormap, "symmetric", options.cell_size, bound=bound),
            )
        return
    maps = _as_maps(weight.mean(1, keepdim=True)) if weight.dim() > 3 else weight
    yield artifacts.Image(
        f"kernels/{name}", grids.map_grid(maps, options.colormap, "symmetric", options.cell_size)
    )


def _as_maps(weight: torch.Tensor) -> torch.Tensor:
    """(N, 1, ...) -> (N, H, W): 2-D kernels as they are, 3-D kernels' depth slices side by side."""
    import torch

    weight = weight.squeeze(1)
    if weight.dim() == 4:  # (N, D, H, W) -> (N, H, D*W)
        return torch.cat(list(weight.unbind(1)), dim=-1)
    return weight
