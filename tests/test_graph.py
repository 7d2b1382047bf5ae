"""Graphs: TensorBoard's GraphDef read back, DOT files that Graphviz parses, clean models."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import torch

from tests.checks import has_hooks
from tests.conftest import shared
from tests.modelzoo import build_small, classification_and_segmentation
from tests.tb import read_events
from tests.tiny_models import CREATED
from vizcli.graph import GraphTraceError, module_graph, tensorboard_graph
from vizcli.models import resolve_model

HAVE_DOT = shutil.which("dot") is not None


@pytest.fixture(scope=shared("module"))
def resnet18():
    torch.manual_seed(0)
    return resolve_model("resnet18", device="cpu").model


def _graph(model, depth, size=64):
    return module_graph(model, [torch.randn(1, 3, size, size)], depth, "resnet18")


def test_resnet18_depth_1_and_2(resnet18):
    one = _graph(resnet18, 1)
    names = [n.name if n.kind == "module" else n.type for n in one.nodes]
    assert names == [
        "input",
        "conv1",
        "bn1",
        "relu",
        "maxpool",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
        "avgpool",
        "flatten",
        "fc",
        "output",
    ]
    assert len(one.edges) == 12 and one.method == "fx"
    two = _graph(resnet18, 2)
    assert len(two.nodes) == 17 and len(two.edges) == 16
    assert [n.name for n in two.nodes if n.type == "BasicBlock"] == [
        f"layer{i}.{j}" for i in range(1, 5) for j in range(2)
    ]
    shapes = {n.name: n.shape for n in two.nodes}
    assert shapes["layer3.1"] == [1, 256, 4, 4]


def test_residual_edges_skip_the_block_body(resnet18):
    three = _graph(resnet18, 3)
    by_id = {n.id: n for n in three.nodes}
    adds = [n for n in three.nodes if n.type == "add"]
    assert len(adds) == 8  # one per BasicBlock
    first_add = adds[0]
    sources = {by_id[s].name for s, d in three.edges if d == first_add.id}
    assert sources == {"maxpool", "layer1.0.bn2"}  # the skip connection and the block body


def test_long_stages_collapse_into_one_node():
    model = resolve_model("resnet152", meta=True).model.to_empty(device="cpu")
    graph = module_graph(model, [torch.randn(1, 3, 32, 32)], 2, "resnet152")
    assert len(graph.nodes) == 19  # 500+ modules; stages of 3, 8, 36 and 3 blocks
    labels = [n.label().split("\n")[:2] for n in graph.nodes if n.count > 1]
    assert labels == [
        ["layer2.1 … layer2.7", "7 × Bottleneck"],
        ["layer3.1 … layer3.35", "35 × Bottleneck"],
    ]
    blocks = [n.name for n in graph.nodes if n.type == "Bottleneck"]
    assert blocks == [
        "layer1.0",
        "layer1.1",
        "layer1.2",
        "layer2.0",
        "layer2.1",
        "layer3.0",
        "layer3.1",
        "layer4.0",
        "layer4.1",
        "layer4.2",
    ]


def test_dot_text_is_valid(resnet18):
    dot = _graph(resnet18, 2).to_dot()
    assert dot.startswith('digraph "resnet18" {') and dot.rstrip().endswith("}")
    assert len(re.findall(r"^  n\d+ \[label=", dot, re.M)) == 17
    assert len(re.findall(r"^  n\d+ -> n\d+;", dot, re.M)) == 16
    if HAVE_DOT:
        proc = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True)
        assert proc.returncode == 0 and b"<svg" in proc.stdout


def test_data_dependent_models_fall_back_to_execution_order():
    loaded = resolve_model("fasterrcnn_mobilenet_v3_large_320_fpn", device="cpu")
    graph = module_graph(loaded.model, [torch.randn(1, 3, 96, 96)], 1, "frcnn")
    assert graph.method == "execution order" and "torch.fx could not trace" in graph.note
    assert [n.name for n in graph.nodes[1:]] == ["transform", "backbone", "rpn", "roi_heads"]


def test_tensorboard_graph_of_resnet18_has_20_convolutions(resnet18):
    graph_def, _ = tensorboard_graph(resnet18, [torch.randn(1, 3, 64, 64)])
    scopes = {node.name.split("/")[0] for node in graph_def.node}
    assert scopes == {"ResNet", "input", "output"}  # traced as is: no wrapper scope
    convs = [n for n in graph_def.node if n.op == "aten::_convolution"]
    assert len(convs) == 20
    assert not has_hooks(resnet18) and not resnet18.training


def test_dict_outputs_are_traced():
    loaded = resolve_model("lraspp_mobilenet_v3_large", device="cpu")
    graph_def, _ = tensorboard_graph(loaded.model, [torch.randn(1, 3, 64, 64)])
    assert any(n.op == "aten::_convolution" for n in graph_def.node)


def test_untraceable_model_gives_one_clear_line():
    class Branchy(torch.nn.Module):
        def forward(self, x):
            return [x] if x.sum() > 0 else None  # no tensor out on one branch

    with pytest.raises(GraphTraceError, match="cannot trace Branchy") as info:
        tensorboard_graph(Branchy(), [-torch.ones(2)])
    assert str(info.value) == (
        "cannot trace Branchy for TensorBoard: The traced function didn't return any values! "
        "Side-effects are not captured in traces, so it would be a no-op."
    )  # the tracer's own first line, not the wrapper's retry


def test_graph_cli_writes_event_graph_and_files(cli, tmp_path):
    result = cli(
        "graph",
        "resnet18",
        "--input",
        "1,3,64,64",
        "--depth",
        "1",
        "-f",
        "json",
        "-f",
        "svg",
        "--out",
        str(tmp_path / "files"),
        "--logdir",
        str(tmp_path / "tb"),
    )
    assert result.code == 0, result.stderr
    assert "13 nodes, 12 edges at depth 1" in result.stderr
    files = tmp_path / "files" / "graph-resnet18"
    data = json.loads((files / "graph.json").read_text())
    assert data["schema"] == "vizcli.graph/1" and len(data["nodes"]) == 13
    assert (files / "graph.dot").read_text().startswith("digraph")
    assert (files / "graph.svg").exists() == HAVE_DOT
    events = read_events(tmp_path / "tb" / "graph-resnet18")
    graph_def = events.Graph()
    assert sum(1 for n in graph_def.node if n.op == "aten::_convolution") == 20


def test_graph_cli_keeps_the_model_clean_even_when_it_fails(cli, tmp_path):
    CREATED.clear()
    assert (
        cli(
            "graph", "tests.tiny_models:tracked", "--input", "1,3,8,8", "--logdir", str(tmp_path)
        ).code
        == 0
    )
    CREATED_OK = list(CREATED)
    assert (
        cli(
            "graph", "tests.tiny_models:tracked", "--input", "1,3,8", "--logdir", str(tmp_path)
        ).code
        != 0
    )
    assert all(not has_hooks(m) and not m.training for m in CREATED_OK + CREATED)


@pytest.mark.slow
@pytest.mark.parametrize("name", classification_and_segmentation())
def test_every_classification_and_segmentation_model_graphs(name):
    """Recorded in docs/graph_support.md: all 88 trace for TensorBoard and through torch.fx."""
    model, image = build_small(name)
    graph = module_graph(model, [image], 2, name)
    assert graph.method == "fx" and graph.note is None
    assert graph.nodes[0].kind == "input" and graph.nodes[-1].kind == "output"
    graph_def, _ = tensorboard_graph(model, [image])
    assert any(n.op == "aten::_convolution" for n in graph_def.node)
    assert not has_hooks(model) and not model.training


class SlashNet(torch.nn.Module):
    """Module names only ``add_module`` allows: a slash, a quote, a backslash."""

    def __init__(self, branchy: bool = False) -> None:
        super().__init__()
        self.add_module("a/b", torch.nn.Conv2d(3, 4, 3, padding=1))
        self.body = torch.nn.Sequential()
        self.body.add_module('c/"d\\', torch.nn.ReLU())
        self.fc = torch.nn.Linear(4, 2)
        self.branchy = branchy

    def forward(self, x):
        y = self.body(getattr(self, "a/b")(x))
        if self.branchy and y.sum() > 0:  # fx cannot trace this: execution order instead
            y = y * 2
        return self.fc(y.mean((2, 3)))


def slash_net() -> torch.nn.Module:
    return SlashNet()


@pytest.mark.parametrize("branchy", [False, True])
def test_module_names_with_slashes_and_quotes_are_nodes(branchy):
    model = SlashNet(branchy)
    graph = module_graph(model, [torch.randn(1, 3, 8, 8)], 2, "slash")
    assert graph.method == ("execution order" if branchy else "fx")
    names = [n.name for n in graph.nodes if n.kind == "module"]
    assert names == ["a/b", 'body.c/"d\\', "fc"]
    assert [n["name"] for n in graph.to_dict()["nodes"] if n["kind"] == "module"] == names
    dot = graph.to_dot()
    assert '[label="a/b\\nConv2d\\n1×4×8×8"]' in dot
    assert '[label="body.c/\\"d\\\\\\nReLU\\n1×4×8×8"]' in dot
    if HAVE_DOT:
        proc = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True)
        assert proc.returncode == 0 and b"a/b" in proc.stdout


def test_graph_cli_keeps_modules_named_with_a_slash(cli, tmp_path):
    result = cli(
        "graph", "tests.test_graph:slash_net", "--input", "1,3,8,8", "-f", "json",
        "--out", str(tmp_path), "--run", "r", "--no-tensorboard",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    data = json.loads((tmp_path / "r" / "graph.json").read_text())
    assert data["method"] == "fx" and data["note"] is None  # not the execution-order fallback
    modules = [n["name"] for n in data["nodes"] if n["kind"] == "module"]
    assert modules == ["a/b", 'body.c/"d\\', "fc"]
    assert '"a/b\\nConv2d' in (tmp_path / "r" / "graph.dot").read_text()


def test_fx_tensor_constants_do_not_stay_on_the_model():
    class Scaled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.fc(x * torch.tensor([1.0, 2.0, 3.0]))  # fx: a _tensor_constant0

    model = Scaled()
    before = set(vars(model))
    graph = module_graph(model, [torch.randn(1, 3)], 2, "scaled")
    assert graph.method == "fx" and [n.type for n in graph.nodes][1:3] == ["mul", "Linear"]
    assert set(vars(model)) == before


class Repeated(torch.nn.Module):
    """A stem, three identical blocks in a Sequential, a functional mean and a head; with
    ``branchy`` a data-dependent branch that torch.fx cannot trace."""

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 4, 1)

        def forward(self, x):
            return torch.relu(self.conv(x))

    def __init__(self, branchy: bool = False) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 4, 1)
        self.blocks = torch.nn.Sequential(self.Block(), self.Block(), self.Block())
        self.head = torch.nn.Linear(4, 2)
        self.branchy = branchy

    def forward(self, image):
        y = self.blocks(self.stem(image))
        if self.branchy and y.sum() > 0:
            y = y * 2
        return self.head(y.mean((2, 3)))


STYLE = (
    'digraph "net" {\n  rankdir=TB;\n'
    '  node [shape=box, style="rounded,filled", fillcolor="#e8f0fb", fontname="Helvetica", '
    "fontsize=10];\n"
    '  edge [color="#555555"];\n'
)


def test_a_small_graph_in_full_as_json_and_dot():
    graph = module_graph(Repeated(), [torch.randn(1, 3, 5, 5)], 2, "net")
    module = {"kind": "module", "names": None}
    assert graph.to_dict() == {
        "schema": "vizcli.graph/1", "model": "net", "depth": 2, "method": "fx", "note": None,
        "nodes": [
            {"id": "n0", "kind": "input", "name": "image", "type": "input",
             "shape": [1, 3, 5, 5], "params": 0, "names": [], "count": 1},
            {**module, "id": "n1", "name": "stem", "type": "Conv2d", "shape": [1, 4, 5, 5],
             "params": 3 * 4 + 4, "names": ["stem"], "count": 1},
            {**module, "id": "n2", "name": "blocks.0", "type": "Block", "shape": [1, 4, 5, 5],
             "params": 4 * 4 + 4, "names": ["blocks.0", "blocks.1", "blocks.2"], "count": 3},
            {"id": "n5", "kind": "function", "name": "mean", "type": "mean", "shape": [1, 4],
             "params": 0, "names": [], "count": 1},
            {**module, "id": "n6", "name": "head", "type": "Linear", "shape": [1, 2],
             "params": 4 * 2 + 2, "names": ["head"], "count": 1},
            {"id": "n7", "kind": "output", "name": "output", "type": "output", "shape": [1, 2],
             "params": 0, "names": [], "count": 1},
        ],
        "edges": [["n0", "n1"], ["n1", "n2"], ["n2", "n5"], ["n5", "n6"], ["n6", "n7"]],
    }  # fmt: skip
    assert graph.to_dot() == STYLE + (
        '  n0 [label="input image\\n1×3×5×5" shape=ellipse, fillcolor="#ffffff"];\n'
        '  n1 [label="stem\\nConv2d\\n1×4×5×5"];\n'
        '  n2 [label="blocks.0 … blocks.2\\n3 × Block\\n1×4×5×5" fillcolor="#d6e4f7", '
        "penwidth=2];\n"
        '  n5 [label="mean\\n1×4" shape=ellipse, fillcolor="#f4f4f4", fontsize=9];\n'
        '  n6 [label="head\\nLinear\\n1×2"];\n'
        '  n7 [label="output\\n1×2" shape=ellipse, fillcolor="#ffffff"];\n'
        "  n0 -> n1;\n  n1 -> n2;\n  n2 -> n5;\n  n5 -> n6;\n  n6 -> n7;\n}\n"
    )


def test_execution_order_keeps_the_depth_and_the_shallower_leaves():
    two = module_graph(Repeated(branchy=True), [torch.randn(1, 3, 5, 5)], 2, "net")
    assert two.method == "execution order" and two.depth == 2
    assert two.note == (
        "torch.fx could not trace the model (symbolically traced variables cannot be used as "
        "inputs to control flow); edges follow execution order"
    )
    assert [(n.id, n.name, n.params, n.count) for n in two.nodes] == [
        ("n0", "image", 0, 1), ("n1", "stem", 16, 1), ("n2", "blocks.0", 20, 3),
        ("n5", "head", 10, 1),
    ]  # fmt: skip
    assert two.edges == [("n0", "n1"), ("n1", "n2"), ("n2", "n5")]
    assert (two.nodes[0].kind, two.nodes[0].type) == ("input", "input")
    assert two.to_dot().startswith(STYLE + '  n0 [label="input image\\n1×3×5×5" shape=ellipse')
    three = module_graph(Repeated(branchy=True), [torch.randn(1, 3, 5, 5)], 3, "net")
    assert [n.name for n in three.nodes] == [
        "image", "stem", "blocks.0.conv", "blocks.1.conv", "blocks.2.conv", "head"
    ]  # fmt: skip
    assert len(three.edges) == 5  # different parents (blocks.0, blocks.1...): no collapse


class DictOfList(torch.nn.Module):
    def forward(self, x):
        return {"out": x * 2, "aux": [x, x + 1]}


class NestedDict(torch.nn.Module):
    def forward(self, x):
        return {"out": x * 3, "more": {"deep": x - 1}}


class ListOfDicts(torch.nn.Module):  # a detector's output
    def forward(self, x):
        return [{"boxes": x * 4}]


@pytest.mark.parametrize(("model", "ops"), [(DictOfList(), {"aten::mul", "aten::add"}),
                                            (NestedDict(), {"aten::mul", "aten::sub"}),
                                            (ListOfDicts(), {"aten::mul"})])  # fmt: skip
def test_outputs_the_tracer_refuses_are_traced_as_tuples(model, ops):
    graph_def, _ = tensorboard_graph(model, [torch.randn(1, 3)])
    assert ops <= {n.op for n in graph_def.node}


def test_build_graphs_keeps_the_module_graph_when_tensorboard_cannot_trace():
    from vizcli.graph import build_graphs

    class Branchy(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(2, 2)

        def forward(self, x):
            y = self.fc(x)
            return None if y.sum() < 1e9 else [y]  # no tensor out: nothing to trace

    result = build_graphs(Branchy(), [torch.ones(1, 2)], 2, "branchy")
    assert result.tensorboard is None and result.module_graph.nodes[1].name == "fc"
    assert result.tensorboard_error.startswith("cannot trace Branchy for TensorBoard: ")
    plain = build_graphs(Repeated(), [torch.randn(1, 3, 5, 5)], 1, "net", tensorboard=False)
    assert plain.tensorboard is None and plain.tensorboard_error is None
    traced = build_graphs(Repeated(), [torch.randn(1, 3, 5, 5)], 1, "net")
    assert traced.tensorboard is not None and traced.tensorboard_error is None


def test_an_input_the_model_cannot_take_names_every_input():
    from vizcli.errors import InputSpecError
    from vizcli.graph import build_graphs

    with pytest.raises(InputSpecError) as error:
        build_graphs(Repeated(), [torch.randn(1, 2, 5, 5), torch.randn(3)], 1, "net")
    assert str(error.value).startswith("net cannot run on input 1,2,5,5 and 3: ")


class Pair(torch.nn.Module):
    def forward(self, x):
        return x * 2, x + 1


class Indexing(torch.nn.Module):
    """A submodule returning a tuple (indexing it is not a node), an in-place add, a slice of a
    tensor (a node) and a size() (not data)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 3)
        self.pair = Pair()

    def forward(self, x):
        a, b = self.pair(self.fc(x))
        a += b
        return a[:, :2].view(a.size(0), -1)


def test_tuples_in_place_ops_slices_and_sizes():
    graph = module_graph(Indexing(), [torch.randn(1, 3)], 1, "idx")
    assert [(n.id, n.kind, n.type, n.shape) for n in graph.nodes] == [
        ("n0", "input", "input", [1, 3]), ("n1", "module", "Linear", [1, 3]),
        ("n2", "module", "Pair", None), ("n3", "function", "add", [1, 3]),
        ("n4", "function", "slice", [1, 2]), ("n5", "function", "view", [1, 2]),
        ("n6", "output", "output", [1, 2]),
    ]  # fmt: skip
    assert graph.edges == [(f"n{i}", f"n{i + 1}") for i in range(6)]
    assert graph.nodes[2].label() == "pair\nPair"  # no shape for a tuple
    inner = module_graph(Indexing(), [torch.randn(1, 3)], 2, "idx")  # Pair's own ops
    assert [n.type for n in inner.nodes][2:5] == ["mul", "add", "add"]
    assert ("n1", "n2") in inner.edges and ("n1", "n3") in inner.edges  # fc feeds both


def test_in_place_additions_are_named_add():
    class InPlace(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(3, 3)

        def forward(self, x):
            y = self.fc(x)
            y += x
            return y

    graph = module_graph(InPlace(), [torch.randn(1, 3)], 1, "inplace")
    kinds = [(n.kind, n.type) for n in graph.nodes]
    assert kinds == [("input", "input"), ("module", "Linear"), ("function", "add"),
                     ("output", "output")]  # fmt: skip
    assert graph.nodes[2].label() == "add\n1×3"


def test_a_tuple_output_keeps_its_output_node():
    class TwoOut(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)

        def forward(self, x):
            y = self.fc(x)
            return y, y * 2

    graph = module_graph(TwoOut(), [torch.randn(1, 4)], 1, "two")
    assert [(n.kind, n.type, n.shape) for n in graph.nodes] == [
        ("input", "input", [1, 4]), ("module", "Linear", [1, 4]), ("function", "mul", [1, 4]),
        ("output", "output", None)]  # fmt: skip
    assert ("n1", "n3") in graph.edges and ("n2", "n3") in graph.edges  # both feed the output


def test_the_fallback_note_gives_the_first_sentence_of_the_reason():
    class Loop(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 4)

        def forward(self, x):
            return torch.stack([self.fc(row) for row in x])  # fx cannot iterate a traced tensor

    graph = module_graph(Loop(), [torch.randn(2, 4)], 1, "loop")
    assert graph.note == (
        "torch.fx could not trace the model (Proxy object cannot be iterated); "
        "edges follow execution order"
    )
