"""``vizcli summary``: a torchinfo-style per-layer table, or JSON/CSV/Markdown for scripts."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from vizcli.cli import console
from vizcli.cli.groups import NO_MODEL_OPTIONS, ModelOptions, with_group
from vizcli.cli.options import DtypeOpt, ForceOpt, InputOpt, ModelArg, OutputFileOpt, SizeOpt
from vizcli.report.columns import Column, parse_columns


class MemoryMode(str, Enum):
    estimated = "estimated"
    measured = "measured"


class SummaryFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


@with_group("source", ModelOptions, weights="none")
def summary(
    model: ModelArg,
    input: InputOpt = None,
    dtype: DtypeOpt = None,
    depth: Annotated[
        int, typer.Option("--depth", "-d", min=0, help="Show layers down to this depth.")
    ] = 3,
    columns: Annotated[
        list[str] | None,
        typer.Option(
            "--columns",
            "-c",
            help="Table columns, comma-separated or repeated: "
            + ", ".join(c.value for c in Column)
            + ". Default: output,params,mult_adds.",
            show_default=False,
        ),
    ] = None,
    format: Annotated[SummaryFormat, typer.Option("--format", "-f")] = SummaryFormat.table,
    image: Annotated[
        Path | None,
        typer.Option("--image", help="Use this image, preprocessed, as the input."),
    ] = None,
    size: SizeOpt = None,
    memory: Annotated[
        MemoryMode,
        typer.Option(
            "--memory",
            help="estimated: sum of layer outputs (meta device, no memory needed). measured: "
            "build for real, run one training step, count what autograd saves for backward "
            "per layer (and the allocator peak on CUDA).",
        ),
    ] = MemoryMode.estimated,
    output: OutputFileOpt = None,
    force: ForceOpt = False,
    source: ModelOptions = NO_MODEL_OPTIONS,
) -> None:
    """Per-layer output shapes, parameters, mult-adds and memory, with exact totals.

    Weights default to none: the model is built on the meta device, so even vit_h_14
    needs no memory for its parameters.
    """
    from vizcli.output.files import check_writable_target
    from vizcli.summary import summarize

    chosen = parse_columns(columns)
    if memory is MemoryMode.measured and not columns:
        chosen = (*chosen, Column.saved)
    if output is not None:
        check_writable_target(output, force)
    result = summarize(
        model,
        inputs=input,
        dtypes=dtype,
        weights=source.weights,
        device=source.device,
        offline=source.offline,
        image=image,
        size=size,
        memory=memory.value,
    )
    if result.weights.get("warning"):
        console.warn(result.weights["warning"])
    for note in result.notes:
        console.info(f"note: {note}")
    if format is SummaryFormat.table:
        _print_table(result, depth, chosen, output, force)
        return
    from vizcli.report import formats

    text = {
        SummaryFormat.json: lambda: formats.to_json(result.to_dict(depth)),
        SummaryFormat.csv: lambda: formats.summary_csv(result, depth),
        SummaryFormat.markdown: lambda: formats.summary_markdown(result, depth, chosen),
    }[format]()
    console.emit_text(text, output, force)


def _print_table(result, depth, columns, output, force) -> None:  # noqa: ANN001
    import io

    from rich.console import Console

    from vizcli.report.tables import summary_renderable

    renderable = summary_renderable(result, depth, columns)
    if output is None:
        console.show(renderable)
        return
    recorder = Console(record=True, width=160, file=io.StringIO())
    recorder.print(renderable)
    console.emit_text(recorder.export_text(), output, force)
