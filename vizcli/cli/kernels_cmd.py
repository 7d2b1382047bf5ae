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
    from vizcli.kernels import KernelLayer, KernelOptions, kernel_images, kernel_layers

    options = KernelOptions(mode.value, max_filters, cell_size, colormap)  # type: ignore[arg-type]
    loaded = common.load_model(model, source)
    chosen = kernel_layers(loaded.model, layer, type, model)
    report: list[KernelLayer] = []
    with common.open_outputs("kernels", loaded, [], output) as outputs:
        for image in kernel_images(chosen, options, report):
            outputs.write(image)
    from vizcli.report.tables import kernels_renderable

    console.show(kernels_renderable(report))
    common.report_outputs(outputs)
