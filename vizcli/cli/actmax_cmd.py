"""``vizcli actmax``: pictures optimised to excite chosen channels, units or classes."""

from __future__ import annotations

from pathlib import Path
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
from vizcli.cli.options import ModelArg, QuietOpt

PANEL = "Optimisation"


@with_group("source", ModelOptions)
@with_group("output", OutputOptions)
@with_group("prep", ImageOptions)
def actmax(
    model: ModelArg,
    layer: Annotated[
        str | None,
        typer.Option(
            "--layer",
            "-l",
            show_default=False,
            help="The layer whose channels are maximised. See 'vizcli layers MODEL'.",
        ),
    ] = None,  # fmt: skip
    channel: Annotated[
        list[str] | None,
        typer.Option(
            "--channel",
            show_default=False,
            help="Channel indices: 3,17 or 0-7; repeatable. Default: the first --channels.",
        ),
    ] = None,  # fmt: skip
    channels: Annotated[
        int,
        typer.Option("--channels", min=1, help="How many channels when --channel is not given."),
    ] = 8,
    neuron: Annotated[
        bool, typer.Option("--neuron", help="The centre unit of each channel, not its mean.")
    ] = False,
    classes: Annotated[
        list[str] | None,
        typer.Option(
            "--class",
            "-c",
            show_default=False,
            help="A class name or index: maximise its logit; repeatable.",
        ),
    ] = None,  # fmt: skip
    steps: Annotated[
        int, typer.Option(min=1, help="Optimisation steps.", rich_help_panel=PANEL)
    ] = 256,
    lr: Annotated[
        float, typer.Option(min=0.0, help="Adam's learning rate.", rich_help_panel=PANEL)
    ] = 0.05,
    seed: Annotated[
        int, typer.Option(help="Seed of the start and the transforms.", rich_help_panel=PANEL)
    ] = 0,
    param: Annotated[
        str,
        typer.Option(
            "--param",
            rich_help_panel=PANEL,
            help="fourier (decorrelated spectrum, Olah et al. 2017), maco (fixed "
            "natural magnitude, optimised phase; Fel et al. 2023) or pixel.",
        ),
    ] = "fourier",  # fmt: skip
    transforms: Annotated[
        bool,
        typer.Option(
            "--transforms/--no-transforms",
            rich_help_panel=PANEL,
            help="Random jitter, scale and rotation at every step.",
        ),
    ] = True,  # fmt: skip
    naive: Annotated[
        bool,
        typer.Option(
            "--naive",
            rich_help_panel=PANEL,
            help="Plain pixel ascent without transforms (FlashTorch), for comparison.",
        ),
    ] = False,  # fmt: skip
    examples: Annotated[
        list[Path] | None,
        typer.Option(
            "--examples",
            "-e",
            show_default=False,
            help="Images or folders: show those exciting each target most; repeatable.",
        ),
    ] = None,  # fmt: skip
    top: Annotated[int, typer.Option(min=1, help="Dataset examples per target.")] = 4,
    snapshots: Annotated[
        int, typer.Option(min=0, help="Pictures of the progress kept as TensorBoard steps.")
    ] = 8,
    quiet: QuietOpt = False,
    prep: ImageOptions = NO_IMAGE_OPTIONS,
    source: ModelOptions = NO_MODEL_OPTIONS,
    output: OutputOptions = NO_OUTPUT_OPTIONS,
) -> None:
    """Activation maximisation: what chosen channels, units or classes respond to."""
    from vizcli.actmax import ActmaxOptions, maximize
    from vizcli.actmax.targets import parse_channels
    from vizcli.images import find_images

    options = ActmaxOptions(
        layer, tuple(parse_channels(channel or [])), channels, tuple(classes or ()), neuron,
        steps, lr, seed, "pixel" if naive else param, transforms and not naive, snapshots, top,
    )  # fmt: skip
    paths = find_images(examples) if examples else []
    loaded = common.load_model(model, source, prep)
    loaded.require_single_input("actmax")
    if not loaded.weights.pretrained:
        console.warn("actmax on an untrained network: the pictures show no learned feature")
    with (
        common.open_outputs("actmax", loaded, paths, output) as outputs,
        common.progress(steps, "optimising", quiet) as advance,
    ):
        report = maximize(loaded, options, outputs.write, paths, advance)
        outputs.info.details.update(report.manifest_details())
    from vizcli.report.tables import actmax_renderable

    console.show(actmax_renderable(report))
    common.report_outputs(outputs)
