"""``vizcli graph``: TensorBoard's graph view, and a module graph as DOT/SVG/PNG/JSON files."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from vizcli.cli import common, console
from vizcli.cli.groups import (
    NO_MODEL_OPTIONS,
    NO_OUTPUT_OPTIONS,
    ModelOptions,
    OutputOptions,
    with_group,
)
from vizcli.cli.options import DtypeOpt, InputOpt, ModelArg


class GraphFormat(str, Enum):
    dot = "dot"
    svg = "svg"
    png = "png"
    json = "json"


@with_group("source", ModelOptions, weights="none")
@with_group("output", OutputOptions)
def graph(
    model: ModelArg,
    input: InputOpt = None,
    dtype: DtypeOpt = None,
    depth: Annotated[
        int, typer.Option("--depth", "-d", min=1, help="Module depth of the graph file.")
    ] = 2,
    format: Annotated[
        list[GraphFormat] | None,
        typer.Option(
            "--format", "-f", help="Graph files besides graph.dot; repeatable.", show_default=False
        ),
    ] = None,  # fmt: skip
    tensorboard: Annotated[
        bool, typer.Option(help="Also trace the model for TensorBoard's graph view.")
    ] = True,
    source: ModelOptions = NO_MODEL_OPTIONS,
    output: OutputOptions = NO_OUTPUT_OPTIONS,
) -> None:
    """Write the computation graph: TensorBoard (add_graph) and graph.dot (+ svg/png/json)."""
    from vizcli.artifacts import File, Graph
    from vizcli.cli.startup import resume_gc
    from vizcli.graph import build_graphs
    from vizcli.models import resolve_model
    from vizcli.output import graphviz
    from vizcli.report.formats import to_json
    from vizcli.summary import input_specs, make_input

    formats = [f for f in dict.fromkeys(f.value for f in format or []) if f != "dot"]
    loaded = resolve_model(
        model, weights=source.weights, device=source.device, offline=source.offline
    )
    resume_gc()
    specs = input_specs(input, dtype, loaded.default_input_shapes)
    tensors = [make_input(spec, loaded.input_device) for spec in specs]
    to_tensorboard = tensorboard and (
        output.logdir is not None or output.out is None
    )  # a TensorBoard sink?
    result = build_graphs(loaded.model, tensors, depth, loaded.name, to_tensorboard)
    graph_ = result.module_graph
    dot_text = graph_.to_dot()
    missing_dot = [f for f in formats if f in ("svg", "png")] if not graphviz.available() else []
    inputs = [",".join(map(str, s.shape)) for s in specs]
    with common.open_outputs("graph", loaded, inputs, output) as outputs:
        if result.tensorboard is not None:
            outputs.write(Graph(result.tensorboard))
        outputs.write(File("graph.dot", dot_text.encode()))
        for fmt in formats:
            if fmt == "json":
                outputs.write(File("graph.json", to_json(graph_.to_dict()).encode()))
            elif fmt not in missing_dot:
                outputs.write(File(f"graph.{fmt}", graphviz.render(dot_text, fmt)))
    console.info(
        f"{loaded.name}: {len(graph_.nodes)} nodes, {len(graph_.edges)} edges at depth {depth} "
        f"(edges from {graph_.method})"
    )
    if graph_.note:
        console.warn(graph_.note)
    if result.tensorboard_error:
        console.warn(
            f"no TensorBoard graph: {result.tensorboard_error}; graph.dot has the module graph"
        )
    if missing_dot:
        console.warn(
            f"Graphviz 'dot' not found, so no {'/'.join(missing_dot)}: {graphviz.INSTALL_HINT}, "
            "or render graph.dot with any Graphviz viewer"
        )
    common.report_outputs(outputs)
