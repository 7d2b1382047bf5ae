"""Computation graphs: TensorBoard's traced GraphDef, and a module-level graph for DOT files.

The module graph keeps modules down to ``depth`` (deeper ones folded into their parent, as in
torchinfo), functional tensor ops between them (``add`` for residuals, ``flatten``, ``cat``) and
the data edges that torch.fx finds. Runs of identical blocks collapse into one node
(``layer3.1 … layer3.35, 35 × Bottleneck``), so resnet152 stays readable. When fx cannot trace a
model (data-dependent control flow), the graph follows the modules' execution order instead.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import operator
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from vizcli.errors import InputSpecError, VizError, first_line

SCHEMA = "vizcli.graph/1"
_STRUCTURAL = {operator.getitem}


class GraphTraceError(VizError):
    """The model cannot be traced for TensorBoard's graph view."""


@dataclass
class GraphNode:
    id: str
    kind: str  # "input", "module", "function" or "output"
    name: str
    type: str
    shape: list[int] | None = None
    params: int = 0
    names: list[str] = field(default_factory=list)  # every module a collapsed node stands for

    @property
    def count(self) -> int:
        return max(len(self.names), 1)

    def label(self) -> str:
        shape = "×".join(map(str, self.shape)) if self.shape else ""
        if self.kind == "module" and self.count > 1:
            head = f"{self.names[0]} … {self.names[-1]}\n{self.count} × {self.type}"
        elif self.kind == "module":
            head = f"{self.name}\n{self.type}"
        elif self.kind == "input":
            head = f"input {self.name}"
        else:
            head = self.name if self.kind != "function" else self.type
        return f"{head}\n{shape}" if shape else head


@dataclass
class ModuleGraph:
    model: str
    depth: int
    method: str  # "fx" or "execution order"
    nodes: list[GraphNode]
    edges: list[tuple[str, str]]
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "model": self.model,
            "depth": self.depth,
            "method": self.method,
            "note": self.note,
            "nodes": [{**asdict(n), "count": n.count} for n in self.nodes],
            "edges": [list(e) for e in self.edges],
        }

    def to_dot(self) -> str:
        lines = [
            f"digraph {_quote(self.model)} {{",
            "  rankdir=TB;",
            '  node [shape=box, style="rounded,filled", fillcolor="#e8f0fb", '
            'fontname="Helvetica", fontsize=10];',
            '  edge [color="#555555"];',
        ]
        styles = {
            "input": ' shape=ellipse, fillcolor="#ffffff"',
            "output": ' shape=ellipse, fillcolor="#ffffff"',
            "function": ' shape=ellipse, fillcolor="#f4f4f4", fontsize=9',
            "module": "",
        }
        for node in self.nodes:
            extra = ' fillcolor="#d6e4f7", penwidth=2' if node.count > 1 else styles[node.kind]
            lines.append(f"  {node.id} [label={_quote(node.label())}{extra}];")
        lines += [f"  {src} -> {dst};" for src, dst in self.edges]
        lines.append("}")
        return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


# --------------------------------------------------------------------- module graph


def module_graph(
    model: nn.Module, inputs: list[torch.Tensor], depth: int, name: str
) -> ModuleGraph:
    """The module-level graph of ``model`` at ``depth`` (fx first, execution order second)."""
    try:
        graph = _fx_graph(model, inputs, depth, name)
    except Exception as exc:  # fx cannot trace data-dependent control flow
        graph = _execution_order_graph(model, inputs, depth, name)
        reason = first_line(exc).split(". ")[0]
        graph.note = f"torch.fx could not trace the model ({reason}); edges follow execution order"
    _collapse_repeats(graph)
    return graph


def _fx_graph(model: nn.Module, inputs: list[torch.Tensor], depth: int, name: str) -> ModuleGraph:
    import torch.fx
    from torch.fx.passes.shape_prop import TensorMetadata

    class DepthTracer(torch.fx.Tracer):
        def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
            too_deep = qualified_name.count(".") + 1 >= depth
            return too_deep or super().is_leaf_module(module, qualified_name)

    tracer = DepthTracer()
    attributes = set(vars(model))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = tracer.trace(model)
            with torch.no_grad():
                _ShapeProp(tracer.root, traced).run(*inputs)
    finally:  # the tracer stores tensor constants on the model (_tensor_constant0...)
        for attribute in set(vars(model)) - attributes:
            delattr(model, attribute)

    modules = dict(model.named_modules())
    nodes: list[GraphNode] = []
    alias: dict[Any, str | None] = {}  # fx node -> graph node id (None: not data)
    edges: list[tuple[str, str]] = []
    for fx_node in traced.nodes:
        meta = fx_node.meta.get("tensor_meta")
        is_tensor = isinstance(meta, TensorMetadata)
        shape = list(meta.shape) if is_tensor else None
        sources = [alias.get(i) for i in fx_node.all_input_nodes]
        sources = [s for s in dict.fromkeys(sources) if s is not None]
        if fx_node.op == "get_attr" or (fx_node.op != "output" and meta is None):
            alias[fx_node] = None  # parameters, sizes, shapes: not data flow
            continue
        if fx_node.target in _STRUCTURAL and not _tensor_input(fx_node.args[0]):
            alias[fx_node] = sources[0] if sources else None  # tuple indexing: pass through
            continue
        node_id = f"n{len(nodes)}"
        if fx_node.op == "placeholder":
            node = GraphNode(node_id, "input", fx_node.name, "input", shape)
        elif fx_node.op == "call_module":
            sub = modules[fx_node.target]
            node = GraphNode(
                node_id, "module", fx_node.target, type(sub).__name__, shape,
                sum(p.numel() for p in sub.parameters()), [fx_node.target],
            )  # fmt: skip
        elif fx_node.op == "output":
            node = GraphNode(node_id, "output", "output", "output", _output_shape(fx_node))
        else:
            node = GraphNode(node_id, "function", fx_node.name, _function_name(fx_node), shape)
        nodes.append(node)
        alias[fx_node] = node_id
        edges += [(src, node_id) for src in sources]
    return ModuleGraph(name, depth, "fx", nodes, edges)


class _ShapeProp(torch.fx.Interpreter):
    """torch.fx's ShapeProp, run on the model itself instead of a ``GraphModule``.

    A ``GraphModule`` compiles the graph to Python source, with module names pasted into
    string literals: a name only ``add_module`` allows (``'say "hi"'``, a backslash, a line
    break) is a syntax error there, and the whole model fell back to execution order. The
    interpreter looks modules up by name (``getattr``), so every name works, and nothing is
    copied.
    """

    def __init__(self, root: nn.Module, graph: Any) -> None:
        super().__init__(root, graph=graph)

    def run_node(self, n: Any) -> Any:
        from torch.fx.node import map_aggregate
        from torch.fx.passes.shape_prop import _extract_tensor_metadata

        result = super().run_node(n)
        found = False

        def extract(value: Any) -> Any:
            nonlocal found
            if isinstance(value, torch.Tensor):
                found = True
                return _extract_tensor_metadata(value)
            return value

        meta = map_aggregate(result, extract)
        if found:
            n.meta["tensor_meta"] = meta
        return result


def _tensor_input(arg: Any) -> bool:
    from torch.fx.passes.shape_prop import TensorMetadata

    return isinstance(getattr(arg, "meta", {}).get("tensor_meta"), TensorMetadata)


def _function_name(fx_node: Any) -> str:
    target = fx_node.target
    name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
    return {"iadd": "add", "getitem": "slice"}.get(name, name)


def _output_shape(fx_node: Any) -> list[int] | None:
    from torch.fx.passes.shape_prop import TensorMetadata

    arg = fx_node.args[0]
    meta = getattr(arg, "meta", {}).get("tensor_meta")
    return list(meta.shape) if isinstance(meta, TensorMetadata) else None


def _execution_order_graph(
    model: nn.Module, inputs: list[torch.Tensor], depth: int, name: str
) -> ModuleGraph:
    """Modules at ``depth`` (or shallower leaves) chained in the order they ran."""
    from vizcli.hooks import capture

    shown = {
        n: m
        for n, m in model.named_modules()
        if n and (n.count(".") + 1 == depth or (n.count(".") + 1 < depth and not any(m.children())))
    }
    order: list[tuple[str, list[int] | None]] = []

    def record(layer: str, tensor: torch.Tensor | None) -> None:
        order.append((layer, list(tensor.shape) if tensor is not None else None))

    with capture(model, shown, record, tensors_only=False), torch.no_grad():
        model.eval()
        model(*inputs)
    argument = next(iter(inspect.signature(model.forward).parameters), "input")
    nodes = [GraphNode("n0", "input", argument, "input", list(inputs[0].shape))]
    for layer, shape in order:
        module = shown[layer]
        params = sum(p.numel() for p in module.parameters())
        nodes.append(
            GraphNode(
                f"n{len(nodes)}", "module", layer, type(module).__name__, shape, params, [layer]
            )
        )
    edges = [(a.id, b.id) for a, b in zip(nodes, nodes[1:], strict=False)]
    return ModuleGraph(name, depth, "execution order", nodes, edges)


def _collapse_repeats(graph: ModuleGraph, minimum: int = 3) -> None:
    """Fold runs of ``minimum`` or more identical sibling blocks into one node.

    Identical: same type, parent, output shape and parameter count, chained one to the next
    with no other edge in or out (layer3.1 … layer3.35 of resnet152).
    """
    succ: dict[str, list[str]] = {}
    pred: dict[str, list[str]] = {}
    for src, dst in graph.edges:
        succ.setdefault(src, []).append(dst)
        pred.setdefault(dst, []).append(src)
    by_id = {n.id: n for n in graph.nodes}
    merged: dict[str, str] = {}  # removed node id -> the node that absorbed it
    for node in graph.nodes:
        if node.id in merged:
            continue
        run = [node]
        while len(succ.get(run[-1].id, [])) == 1:
            nxt = by_id[succ[run[-1].id][0]]
            if len(pred.get(nxt.id, [])) != 1 or not _same_block(node, nxt):
                break
            run.append(nxt)
        if len(run) >= minimum:
            for other in run[1:]:
                node.names += other.names
                merged[other.id] = node.id
    if not merged:
        return
    graph.nodes = [n for n in graph.nodes if n.id not in merged]
    edges = [(merged.get(s, s), merged.get(d, d)) for s, d in graph.edges]
    graph.edges = list(dict.fromkeys(e for e in edges if e[0] != e[1]))


def _same_block(a: GraphNode, b: GraphNode) -> bool:
    if a.kind != "module" or b.kind != "module":
        return False
    parent = a.names[-1].rpartition(".")[0]
    return (
        a.type == b.type
        and b.name.rpartition(".")[0] == parent
        and parent != ""
        and a.shape == b.shape
        and a.params == b.params
        and a.params > 0
    )


# --------------------------------------------------------------------- TensorBoard


def tensorboard_graph(model: nn.Module, inputs: list[torch.Tensor]) -> Any:
    """Trace ``model`` as ``SummaryWriter.add_graph`` does; a clear error when it cannot.

    Models returning dicts or namedtuples (segmentation models) are traced through a wrapper
    that turns the output into a tuple; the graph then sits under one extra scope.
    """
    from torch.utils.tensorboard._pytorch_graph import graph

    from vizcli.hooks import preserved_state

    quiet = contextlib.redirect_stdout(io.StringIO())  # the tracer prints its own failures
    with preserved_state(model), warnings.catch_warnings(), torch.no_grad(), quiet:
        warnings.simplefilter("ignore")
        model.eval()
        try:
            return graph(model, tuple(inputs), verbose=False, use_strict_trace=False)
        except Exception as exc:
            try:
                return graph(
                    _TupleOutput(model), tuple(inputs), verbose=False, use_strict_trace=False
                )
            except Exception:
                raise GraphTraceError(
                    f"cannot trace {type(model).__name__} for TensorBoard: {first_line(exc)}"
                ) from exc


def _as_tuple(value: Any) -> Any:
    """Dicts, namedtuples and lists of tensors become plain tuples, which tracing accepts."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, dict):
        return tuple(_as_tuple(v) for v in value.values())
    if isinstance(value, list | tuple):
        return tuple(_as_tuple(v) for v in value)
    return value


class _TupleOutput(nn.Module):
    """Runs the model unchanged; only the container of its outputs changes."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Any) -> Any:
        return _as_tuple(self.model(*args))


# --------------------------------------------------------------------- both at once


@dataclass
class GraphResult:
    module_graph: ModuleGraph
    tensorboard: Any | None  # the traced profile, or None
    tensorboard_error: str | None


def build_graphs(
    model: nn.Module, inputs: list[torch.Tensor], depth: int, name: str, tensorboard: bool = True
) -> GraphResult:
    """The module graph always; TensorBoard's traced graph when asked and possible."""
    _check_runs(model, inputs, name)
    graph = module_graph(model, inputs, depth, name)
    profile, error = None, None
    if tensorboard:
        try:
            profile = tensorboard_graph(model, inputs)
        except GraphTraceError as exc:
            error = str(exc)
    return GraphResult(graph, profile, error)


def _check_runs(model: nn.Module, inputs: list[torch.Tensor], name: str) -> None:
    """One plain forward first, so a wrong --input is a usage error, not a trace failure."""
    from vizcli.hooks import preserved_state

    try:
        with preserved_state(model), torch.no_grad():
            model.eval()
            model(*inputs)
    except Exception as exc:
        shapes = " and ".join(",".join(map(str, t.shape)) for t in inputs)
        raise InputSpecError(
            f"{name} cannot run on input {shapes}: {first_line(exc)}",
            hint="check --input (rank, channels, size) against what the model expects",
        ) from exc
