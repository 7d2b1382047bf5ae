"""``vizcli layers``: the names ``--layer`` accepts, with types, output shapes and params."""

from __future__ import annotations

from typing import Annotated

import typer

from vizcli.cli import console
from vizcli.cli.options import InputOpt, ListFormat, ModelArg, TypeOpt


def layers(
    model: ModelArg,
    type: TypeOpt = None,
    input: InputOpt = None,
    format: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.table,
) -> None:
    """List every layer's qualified name, type, output shape and parameter count."""
    from vizcli.report.formats import to_json
    from vizcli.summary import summarize

    result = summarize(model, inputs=input, types=type)
    rows = [r for r in result.layers if r.name]
    if format is ListFormat.json:
        keys = ("name", "type", "output_shape", "params", "is_leaf")
        data = [{k: getattr(r, k) for k in keys} for r in rows]
        console.emit_text(to_json(data), None, False)
        return
    from vizcli.report.tables import layers_renderable

    console.show(layers_renderable(rows, result.model["name"]))
