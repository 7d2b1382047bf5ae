"""Options shared by several commands, as ``Annotated`` aliases (one definition each)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

ModelArg = Annotated[
    str,
    typer.Argument(
        help="A torchvision model name (see 'vizcli models'), or module:factory / file.py:factory.",
        show_default=False,
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
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar (none is shown in pipes anyway).")
]


class ListFormat(str, Enum):
    """--format of the commands that print a list: a table, or JSON for scripts."""

    table = "table"
    json = "json"
