"""``vizcli diff``: two models, two checkpoints or two saved summaries, compared."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from vizcli.cli import console
from vizcli.cli.groups import NO_OUTPUT_OPTIONS, OutputOptions, with_group
from vizcli.cli.options import ForceOpt, InputOpt, OutputFileOpt


class DiffFormat(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


@with_group("output", OutputOptions)
def diff(
    a: Annotated[
        str,
        typer.Argument(
            help="A model (as every command takes it) or a 'summary -f json' file.",
            show_default=False,
        ),
    ],  # fmt: skip
    b: Annotated[
        str | None,
        typer.Argument(
            help="The other one (default: A again, for two checkpoints of A).", show_default=False
        ),
    ] = None,  # fmt: skip
    weights_a: Annotated[
        str | None,
        typer.Option(
            "--weights-a",
            show_default=False,
            help="A's weights (a checkpoint file or a weights name); with --weights-b, "
            "the weights are compared too.",
        ),
    ] = None,  # fmt: skip
    weights_b: Annotated[
        str | None, typer.Option("--weights-b", show_default=False, help="B's weights.")
    ] = None,
    input: InputOpt = None,
    top: Annotated[int, typer.Option(min=1, help="Layers listed as having moved most.")] = 15,
    format: Annotated[DiffFormat, typer.Option("--format", "-f")] = DiffFormat.table,
    device: Annotated[
        str, typer.Option(help="auto (CUDA, then MPS, then CPU), cpu, cuda or mps.")
    ] = "auto",
    offline: Annotated[
        bool, typer.Option("--offline", envvar="VIZCLI_OFFLINE", help="Never touch the network.")
    ] = False,
    output_file: OutputFileOpt = None,
    force: ForceOpt = False,
    output: OutputOptions = NO_OUTPUT_OPTIONS,
) -> None:
    """Architecture changes (layers added, removed, changed) and, with --weights-a/-b, how far
    each layer's weights moved (relative change, cosine, frozen layers, NaN/Inf introduced)."""
    from vizcli.diff import compare
    from vizcli.output.files import check_writable_target

    if output_file is not None:
        check_writable_target(output_file, force)
    result = compare(a, b, weights_a, weights_b, input, device, offline or None)
    if result.weights is not None and (output.out or output.logdir):
        _write_chart(result, output)
    if format is DiffFormat.table:
        from vizcli.report.diff import diff_renderable

        console.show(diff_renderable(result, top))
        return
    from vizcli.report import formats
    from vizcli.report.diff import diff_markdown

    text = (formats.to_json(result.to_dict()) if format is DiffFormat.json
            else diff_markdown(result, top))  # fmt: skip
    console.emit_text(text, output_file, force)


def _write_chart(result, output) -> None:  # noqa: ANN001
    import math

    from vizcli import artifacts
    from vizcli.draw.charts import bar_chart
    from vizcli.output.sinks import RunInfo, RunOutputs

    layers = result.weights.layers
    values = [math.inf if m.relative is None else m.relative for m in layers]
    chart = bar_chart([m.layer for m in layers], values, "relative weight change per layer")
    from pathlib import Path

    name = Path(str(result.b.get("spec") or result.b.get("file"))).stem.split(":")[-1]
    info = RunInfo("diff", {"name": name, "a": result.a, "b": result.b}, {}, [])
    with RunOutputs(info, run=output.run, **output.folders()) as outputs:
        outputs.write(artifacts.Image("diff/weights", chart))
        for step, value in enumerate(values):
            if math.isfinite(value):
                outputs.write(artifacts.Scalar("diff/relative_change", value, step))
        outputs.write(artifacts.Text("diff/layers", "\n".join(
            f"{step}: {m.layer}" for step, m in enumerate(layers))))  # fmt: skip
    for line in outputs.summary_lines():
        console.info(line)
