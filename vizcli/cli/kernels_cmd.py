"""``vizcli kernels``: convolution filters as image grids, to TensorBoard and/or PNG."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from vizcli.cli import common, console
from vizcli.cli.groups import (
    NO_MODEL_OPTIONS,
    NO_OUTPUT_OPTIONS,
    ModelOptions,
    OutputOptions,
    with_group,
)
from vizcli.cli.options import LayerOpt, ModelArg, TypeOpt


class KernelMode(str, Enum):
    auto = "auto"
    rgb = "rgb"
    mean = "mean"
    filters = "filters"


@with_group("source", ModelOptions)
@with_group("output", OutputOptions)
def kernels(
    model: ModelArg,
    layer: LayerOpt = None,
    type: TypeOpt = None,
    mode: Annotated[
        KernelMode,
        typer.Option(
            help="rgb: 3-channel filters in colour; mean: filters averaged over input "
            "channels; filters: one grid per filter; auto: rgb where possible."
        ),
    ] = KernelMode.auto,  # fmt: skip
    max_filters: Annotated[
        int, typer.Option(min=1, help="At most this many filters per layer.")
    ] = 64,
    cell_size: Annotated[
        int, typer.Option(min=1, help="Upscale kernels to about this many pixels.")
    ] = 32,
    colormap: Annotated[str, typer.Option(help="Colormap for signed weights.")] = "bwr",
    source: ModelOptions = NO_MODEL_OPTIONS,
    output: OutputOptions = NO_OUTPUT_OPTIONS,
) -> None:
    """Draw convolution weights (default: every conv layer)."""
    from vizcli.draw.colormaps import lookup_table
    from vizcli.kernels import KernelLayer, KernelOptions, kernel_images
    from vizcli.layers import conv_layers, select_layers

    lookup_table(colormap)  # reject a bad name before any work
    from vizcli.limits import check_picture

    check_picture("--cell-size", max_filters * max(cell_size, 1) ** 2)
    loaded = common.load_model(model, source)
    chosen = (
        select_layers(loaded.model, layer, type) if layer or type else conv_layers(loaded.model)
    )
    if not chosen:
        from vizcli.errors import UsageError

        raise UsageError(f"{model} has no convolution layers")
    options = KernelOptions(mode.value, max_filters, cell_size, colormap)  # type: ignore[arg-type]
    report: list[KernelLayer] = []
    with common.open_outputs("kernels", loaded, [], output) as outputs:
        for image in kernel_images(chosen, options, report):
            outputs.write(image)
    from vizcli.report.tables import kernels_renderable

    console.show(kernels_renderable(report))
    common.report_outputs(outputs)
