"""``vizcli cam``: class activation maps and saliency, with predictions and optional checks."""

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
from vizcli.cli.options import ImagesArg, ModelArg, QuietOpt

METHOD_HELP = (
    "cam, gradcam, gradcam++, xgradcam, hirescam, layercam, eigencam, scorecam, ablationcam; "
    "saliency, smoothgrad, guided-backprop, integrated-gradients."
)


@with_group("source", ModelOptions)
@with_group("output", OutputOptions)
@with_group("prep", ImageOptions)
def cam(
    model: ModelArg,
    images: ImagesArg,
    method: Annotated[str, typer.Option("--method", "-m", help=METHOD_HELP)] = "gradcam",
    layer: Annotated[
        str | None,
        typer.Option(
            "--layer",
            "-l",
            help="Target layer (default: the last spatial one).",
            show_default=False,
        ),
    ] = None,  # fmt: skip
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            "-c",
            help="Class index or name to explain; repeatable. Default: the top prediction.",
            show_default=False,
        ),
    ] = None,  # fmt: skip
    topk: Annotated[int, typer.Option(min=1, help="One map for each of the top K classes.")] = 1,
    alpha: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Heatmap opacity in overlays.")
    ] = 0.5,
    colormap: Annotated[str, typer.Option(help="Heatmap colormap.")] = "jet",
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 8,
    npy: Annotated[bool, typer.Option(help="Also save each raw map as .npy.")] = False,
    metrics: Annotated[
        bool, typer.Option(help="Deletion/insertion AUC, average drop and increase per map.")
    ] = False,
    sanity: Annotated[
        bool, typer.Option(help="Model-randomisation sanity check (Adebayo et al. 2018).")
    ] = False,
    sanity_depth: Annotated[
        int,
        typer.Option(
            min=1,
            help="--sanity re-initialises the blocks at this depth one by "
            "one (1: top-level children; larger: finer).",
        ),
    ] = 2,
    sanity_images: Annotated[
        int, typer.Option(min=0, help="--sanity on the first N images (0: all).")
    ] = 0,
    frame: Annotated[
        str,
        typer.Option(
            help="original: pictures in the photo's own pixels, the part the crop cut "
            "off greyed out; input: the model's preprocessed input."
        ),
    ] = "original",  # fmt: skip
    seed: Annotated[
        int, typer.Option(help="Seed of the noise SmoothGrad draws; each image starts from it.")
    ] = 0,
    quiet: QuietOpt = False,
    prep: ImageOptions = NO_IMAGE_OPTIONS,
    source: ModelOptions = NO_MODEL_OPTIONS,
    output: OutputOptions = NO_OUTPUT_OPTIONS,
) -> None:
    """Class activation maps (CAM/Grad-CAM family) and gradient saliency over the images."""
    from vizcli.cam.explain import CamOptions, explain
    from vizcli.images import find_images
    from vizcli.report import tables

    options = CamOptions(method, layer, tuple(target or ()), topk, alpha, colormap, batch_size,
                         npy, metrics, sanity, seed, frame, sanity_depth,
                         sanity_images)  # fmt: skip
    paths = find_images(images)
    loaded = common.load_model(model, source, prep)
    loaded.require_single_input("cam")
    with (
        common.open_outputs("cam", loaded, paths, output) as outputs,
        common.progress(len(paths), "explaining", quiet) as advance,
    ):
        report = explain(loaded, paths, options, outputs.write, advance)
        outputs.info.details.update(report.manifest_details(options))
    if report.layer_line():
        console.info(report.layer_line())
    console.show(tables.predictions_renderable(report))
    for warning in (report.labels_warning(loaded), report.constant_warning()):
        if warning:
            console.warn(warning)
    if metrics:
        console.show(tables.cam_metrics_renderable(report))
    if sanity:
        console.show(tables.sanity_renderable(report))
        passed, line = report.sanity_message() or (True, "")
        if line:
            (console.info if passed else console.warn)(line)
    common.report_outputs(outputs)
