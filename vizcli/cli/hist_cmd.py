"""``vizcli hist``: histograms of every parameter (and its gradient, given an image)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vizcli.cli import common, console
from vizcli.cli.groups import (
    NO_IMAGE_OPTIONS,
    NO_LOGDIR_OPTIONS,
    NO_MODEL_OPTIONS,
    ImageOptions,
    LogdirOptions,
    ModelOptions,
    with_group,
)
from vizcli.cli.options import ListFormat, ModelArg


@with_group("source", ModelOptions)
@with_group("output", LogdirOptions)
@with_group("prep", ImageOptions)
def hist(
    model: ModelArg,
    image: Annotated[
        Path | None,
        typer.Argument(
            help="Also histogram the gradients of this image's top class score.", show_default=False
        ),
    ] = None,  # fmt: skip
    format: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
    prep: ImageOptions = NO_IMAGE_OPTIONS,
    source: ModelOptions = NO_MODEL_OPTIONS,
    output: LogdirOptions = NO_LOGDIR_OPTIONS,
) -> None:
    """Parameter (and gradient) histograms to TensorBoard; statistics in the terminal."""
    from vizcli.hist import parameter_histograms
    from vizcli.images import find_images

    paths = find_images([image]) if image is not None else []
    loaded = common.load_model(model, source, prep)
    if paths:
        loaded.require_single_input("hist")
    with common.open_outputs("hist", loaded, paths, output) as outputs:
        rows = parameter_histograms(loaded, paths[0] if paths else None, outputs.write)
    if format is ListFormat.json:
        from vizcli.report.formats import to_json

        data = {"model": loaded.describe(), "weights": loaded.weights.to_dict(),
                "parameters": [r.to_dict() for r in rows]}  # fmt: skip
        console.emit_text(to_json(data), None, False)
    else:
        from vizcli.report.tables import hist_renderable

        console.show(hist_renderable(rows))
    common.report_outputs(outputs)
