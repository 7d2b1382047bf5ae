"""``vizcli models``: list torchvision or timm models and their pretrained weights."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from vizcli.cli import console
from vizcli.cli.options import ListFormat


class Task(str, Enum):
    classification = "classification"
    detection = "detection"
    segmentation = "segmentation"
    video = "video"
    optical_flow = "optical_flow"
    quantized = "quantized"


class Source(str, Enum):
    torchvision = "torchvision"
    timm = "timm"


def models(
    pattern: Annotated[
        str | None, typer.Argument(help="Substring or glob such as 'resnet*'.", show_default=False)
    ] = None,
    task: Annotated[Task | None, typer.Option("--task", help="Only this task.")] = None,
    source: Annotated[
        Source, typer.Option("--source", help="torchvision names, or timm's (as timm/NAME).")
    ] = Source.torchvision,
    format: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
) -> None:
    """List model names (with their pretrained weight names) that every command accepts."""
    from dataclasses import asdict

    from vizcli.models import list_model_entries
    from vizcli.report.formats import to_json

    if source is Source.timm:
        from vizcli.models.timm import list_model_entries as list_timm

        if task not in (None, Task.classification):
            raise typer.BadParameter("timm models are classification models", param_hint="--task")
        entries = list_timm(pattern)
    else:
        entries = list_model_entries(pattern, task.value if task else None)
    if format is ListFormat.json:
        console.emit_text(to_json([asdict(e) for e in entries]), None, False)
        return
    from vizcli.report.tables import models_renderable

    console.show(models_renderable(entries, source.value))
