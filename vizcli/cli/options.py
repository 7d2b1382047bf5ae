"""Options shared by several commands, as ``Annotated`` aliases (one definition each)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

WEIGHTS_HELP = (
    "none (random init), auto (pretrained if cached or downloadable, else random with a "
    "warning), DEFAULT, a weights name such as IMAGENET1K_V2, or a checkpoint file."
)

ModelArg = Annotated[
    str,
    typer.Argument(
        help="A torchvision model name (see 'vizcli models'), or module:factory / file.py:factory.",
        show_default=False,
    ),
]
WeightsOpt = Annotated[str, typer.Option("--weights", "-w", help=WEIGHTS_HELP)]
DeviceOpt = Annotated[
    str, typer.Option("--device", help="auto (CUDA, then MPS, then CPU), cpu, cuda or mps.")
]
OfflineOpt = Annotated[
    bool,
    typer.Option(
        "--offline",
        envvar="VIZCLI_OFFLINE",
        help="Never touch the network; use only the torch hub cache. Also VIZCLI_OFFLINE=1.",
    ),
]
InputOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--input",
        "-i",
        help="Input shape such as 1,3,224,224; repeat for models taking several inputs. "
        "Default: from the weights' transforms.",
        show_default=False,
    ),
]
DtypeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--dtype", help="Input dtype (float32, int64, ...); one for all inputs or one per --input."
    ),
]
SizeOpt = Annotated[
    int | None,
    typer.Option("--size", help="Crop size for images (resize keeps the weights' ratio).", min=1),
]
OutputFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o", help="Write to this file instead of stdout (atomically).", dir_okay=False
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace an existing output file.")]

ImagesArg = Annotated[
    list[Path],
    typer.Argument(help="Image files or folders (every image inside, sorted).", show_default=False),
]
LayerOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--layer",
        "-l",
        help="Layer name (features.3, layer4.1.conv2) or glob (layer*.conv1); repeat or "
        "comma-separate. See 'vizcli layers MODEL'.",
        show_default=False,
    ),
]
TypeOpt = Annotated[
    list[str] | None,
    typer.Option("--type", "-t", help="Only layers of this class (Conv2d, ReLU...); repeatable.",
                 show_default=False),
]  # fmt: skip
OutDirOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Write PNG files into a new run folder under this folder.",
                 file_okay=False, show_default=False),
]  # fmt: skip
LogdirOpt = Annotated[
    Path | None,
    typer.Option("--logdir", help="Write TensorBoard event files into a new run folder under "
                 "this folder. Default when --out is not given: runs/.", file_okay=False,
                 show_default=False),
]  # fmt: skip
RunOpt = Annotated[
    str | None,
    typer.Option("--run", help="Run folder name (default: COMMAND-MODEL, numbered if taken).",
                 show_default=False),
]  # fmt: skip
ImageWeightsOpt = Annotated[str, typer.Option("--weights", "-w", help=WEIGHTS_HELP)]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar (none is shown in pipes anyway).")
]
