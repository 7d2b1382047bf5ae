"""``vizcli fmaps``: feature maps of chosen layers for one or more images."""

from __future__ import annotations

from typing import Annotated

import typer

from vizcli.cli import common, console
from vizcli.cli.groups import (
    NO_IMAGE_OPTIONS,
    NO_MODEL_OPTIONS,
    NO_OUTPUT_OPTIONS,
    ImageOptions,
    ModelOptions,
    OutputOptions,
    with_group,
)
from vizcli.cli.options import ImagesArg, LayerOpt, ModelArg, QuietOpt, TypeOpt


@with_group("source", ModelOptions)
@with_group("output", OutputOptions)
@with_group("prep", ImageOptions)
def fmaps(
    model: ModelArg,
    images: ImagesArg,
    layer: LayerOpt = None,
    type: TypeOpt = None,
    max_channels: Annotated[
        int, typer.Option(min=1, help="At most this many channels per map.")
    ] = 64,
    colormap: Annotated[str, typer.Option(help="gray, viridis, inferno, jet or bwr.")] = "viridis",
    cell_size: Annotated[
        int, typer.Option(min=0, help="Upscale small maps to about this many pixels (0: as is).")
    ] = 0,
    quiet: QuietOpt = False,
    prep: ImageOptions = NO_IMAGE_OPTIONS,
    source: ModelOptions = NO_MODEL_OPTIONS,
    output: OutputOptions = NO_OUTPUT_OPTIONS,
) -> None:
    """Feature maps from one forward pass per image (default: every Conv2d)."""
    from vizcli.fmaps import FmapOptions, feature_maps
    from vizcli.images import find_images
    from vizcli.layers import choose_layers, default_feature_layers

    options = FmapOptions(max_channels, colormap, cell_size)
    paths = find_images(images)
    loaded = common.load_model(model, source, prep)
    loaded.require_single_input("fmaps")
    chosen = choose_layers(loaded.model, layer, type, default_feature_layers)
    explicit = bool(layer or type)  # chosen layers must give maps; default ones may not
    outputs = common.open_outputs("fmaps", loaded, paths, output)
    with outputs, common.progress(len(paths), "drawing feature maps", quiet) as advance:
        report = feature_maps(loaded, paths, chosen, options, outputs.write, explicit, advance)
    from vizcli.report.tables import fmaps_renderable

    console.show(fmaps_renderable(report))
    common.report_outputs(outputs)
