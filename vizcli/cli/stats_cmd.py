"""``vizcli stats``: per-layer activation and gradient health, with problems flagged."""

from __future__ import annotations

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
from vizcli.cli.options import ImagesArg, LayerOpt, ListFormat, ModelArg, QuietOpt, TypeOpt


@with_group("source", ModelOptions)
@with_group("output", LogdirOptions)
@with_group("prep", ImageOptions)
def stats(
    model: ModelArg,
    images: ImagesArg,
    layer: LayerOpt = None,
    type: TypeOpt = None,
    format: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
    dead: Annotated[
        float, typer.Option(help="Flag layers with more zeros than this fraction.")
    ] = 0.9,
    vanishing: Annotated[float, typer.Option(help="Flag output-gradient norms below this.")] = 1e-7,
    exploding: Annotated[float, typer.Option(help="Flag output-gradient norms above this.")] = 1e3,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 8,
    quiet: QuietOpt = False,
    prep: ImageOptions = NO_IMAGE_OPTIONS,
    source: ModelOptions = NO_MODEL_OPTIONS,
    output: LogdirOptions = NO_LOGDIR_OPTIONS,
) -> None:
    """Activation mean/std/min/max, dead units, NaN/Inf and gradient norms per layer."""
    from vizcli.images import find_images
    from vizcli.layers import choose_layers, leaf_layers
    from vizcli.stats import Thresholds, layer_health

    limits = Thresholds(dead, vanishing, exploding)  # bad thresholds fail before any work
    paths = find_images(images)
    loaded = common.load_model(model, source, prep)
    loaded.require_single_input("stats")
    chosen = choose_layers(loaded.model, layer, type, leaf_layers)
    outputs = common.open_outputs("stats", loaded, paths, output)
    with outputs, common.progress(len(paths), "layer statistics", quiet) as advance:
        rows = layer_health(loaded, paths, chosen, outputs.write, limits, batch_size, advance)
    if format is ListFormat.json:
        from vizcli.report.formats import to_json

        data = {
            "model": loaded.describe(),
            "weights": loaded.weights.to_dict(),
            "images": [str(p) for p in paths],
            "layers": [r.to_dict() for r in rows],
        }
        console.emit_text(to_json(data), None, False)
    else:
        from vizcli.report.tables import stats_renderable

        console.show(stats_renderable(rows))
    flagged = [r for r in rows if r.flags]
    if flagged:
        console.warn(f"{len(flagged)} of {len(rows)} layers flagged")
    common.report_outputs(outputs)
