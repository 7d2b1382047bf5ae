"""summary's figures against independent oracles: torchvision's own metadata for every
classification model, hand counts for fused kernels, and the same figure on every build."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import torch

from tests.conftest import TINY
from vizcli import units
from vizcli.models import model_tasks
from vizcli.report.columns import Column
from vizcli.report.formats import summary_csv, summary_markdown
from vizcli.summary import summarize


def visible_values(layers: list[dict]) -> list[tuple[str, int, int]]:
    """(name, params, mult-adds) as a reader sees them: expanded rows show their own share."""
    values = []
    for index, row in enumerate(layers):
        expanded = index + 1 < len(layers) and layers[index + 1]["depth"] > row["depth"]
        params = row["own_params"] if expanded else row["params"]
        mult_adds = row["own_mult_adds"] if expanded else row["mult_adds"]
        values.append((row["name"], params, mult_adds))
    return values


def check_every_format_sums_to_the_totals(result, depths=(1, 2, 3, 4)) -> None:
    totals = result.totals
    for depth in depths:
        data = json.loads(json.dumps(result.to_dict(depth)))
        seen = visible_values(data["layers"])
        assert sum(p for _, p, _ in seen) == totals.params, ("params", depth)
        assert sum(m for _, _, m in seen) == totals.mult_adds, ("mult-adds", depth)
        rows = list(csv.DictReader(io.StringIO(summary_csv(result, depth))))
        as_ints = [{**r, "depth": int(r["depth"]), **{k: int(r[k]) for k in (
            "params", "own_params", "mult_adds", "own_mult_adds")}} for r in rows]  # fmt: skip
        assert visible_values(as_ints) == seen
        markdown = summary_markdown(result, depth, (Column.params, Column.mult_adds))
        cells = [line.split("|")[3:5] for line in markdown.splitlines()
                 if line.startswith("| `") or line.startswith("| &nbsp;")]  # fmt: skip
        expected = [[units.count(p) if p else "--", units.si(m) if m else "--"]
                    for _, p, m in seen]  # fmt: skip
        assert [[c.strip() for c in row] for row in cells] == expected


def published(name: str):
    from torchvision.models import get_model_weights

    return get_model_weights(name).DEFAULT.meta


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", sorted(n for n, t in model_tasks().items() if t in ("classification", "segmentation"))
)
def test_weights_none_matches_torchvisions_own_metadata(name):
    """num_params exactly, _ops (GMACs, 3 decimals) exactly; every format sums to the totals."""
    result = summarize(name)
    meta = published(name)
    assert result.totals.params == meta["num_params"]
    assert round(result.totals.mult_adds / 1e9, 3) == pytest.approx(meta["_ops"], abs=1e-9)
    check_every_format_sums_to_the_totals(result)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", sorted(n for n, t in model_tasks().items() if t not in ("classification",
                                                                    "segmentation"))
)  # fmt: skip
def test_other_families_sum_to_their_totals(name):
    check_every_format_sums_to_the_totals(summarize(name))


def test_googlenet_is_built_as_published_without_aux_heads():
    result = summarize("googlenet")
    names = {row.name for row in result.layers}
    assert not {"aux1", "aux2"} & names and result.totals.params == 6_624_904


def test_detection_count_is_reproducible_and_says_why():
    first = summarize("fasterrcnn_mobilenet_v3_large_320_fpn")
    second = summarize("fasterrcnn_mobilenet_v3_large_320_fpn")
    assert first.totals.mult_adds == second.totals.mult_adds > 0
    assert any("seed 0" in note and "depends on the input" in note for note in first.notes)
    assert any(row.type == "FrozenBatchNorm2d" for row in first.layers)  # as published


def _real_build(tmp_path, spec: str, inputs=None):
    """The same model built for real on the CPU, through a checkpoint (as a user would)."""
    from vizcli.models import resolve_model

    loaded = resolve_model(spec, weights="none", device="cpu")
    path = tmp_path / "weights.pth"
    torch.save(loaded.model.state_dict(), path)
    return summarize(spec, weights=str(path), device="cpu", inputs=inputs)


@pytest.mark.parametrize(
    ("spec", "inputs", "hand_count"),
    [
        (f"{TINY}:Recurrent", ["20,1,32"], 20 * 4 * 64 * (32 + 64) + 64 * 3),
        (f"{TINY}:Attention", ["2,10,64"], None),
    ],
)
def test_fused_kernels_are_counted_on_real_builds(tmp_path, spec, inputs, hand_count):
    meta = summarize(spec, inputs=inputs)
    real = _real_build(tmp_path, spec, inputs)
    assert meta.device == "meta" and real.device == "cpu"
    assert real.totals.mult_adds == meta.totals.mult_adds > 0
    if hand_count is not None:  # LSTM: 4 gates x hidden x (input + hidden) per step; head
        assert real.totals.mult_adds == hand_count
    rows = {r.name: r for r in real.layers}
    for name in ("lstm", "attn", "layer"):
        if name in rows:
            assert rows[name].mult_adds == {r.name: r for r in meta.layers}[name].mult_adds > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vit_b_16", "swin_v2_t", "maxvit_t", "mvit_v2_s", "googlenet",
                                  "deeplabv3_mobilenet_v3_large"])  # fmt: skip
def test_real_builds_count_what_the_meta_build_counts(tmp_path, name):
    meta = summarize(name)
    real = _real_build(tmp_path, name)
    assert real.device == "cpu"
    assert real.totals.mult_adds == meta.totals.mult_adds
    assert round(real.totals.mult_adds / 1e9, 3) == pytest.approx(published(name)["_ops"])
    check_every_format_sums_to_the_totals(real, depths=(2,))


def test_markdown_honours_columns():
    result = summarize("resnet18")
    text = summary_markdown(result, 1, (Column.output, Column.memory))
    header = next(line for line in text.splitlines() if line.startswith("| Layer"))
    assert re.sub(r"\s+", " ", header) == "| Layer | Type | Output shape | Output size |"


# --------------------------------------------------------------------- training memory


def test_measured_memory_equals_a_count_on_paper():
    """conv (input 2x3x8x8 kept: 1536 B) + BatchNorm (its input 2048 B, and four 4-float
    vectors: running mean/var, batch mean/invstd, 64 B) + ReLU (its output, 2048 B)."""
    result = summarize(f"{TINY}:ConvBnRelu", inputs=["2,3,8,8"], memory="measured", device="cpu")
    own = {row.name: row.own_saved_bytes for row in result.layers}
    assert own == {"": 0, "conv": 2 * 3 * 8 * 8 * 4, "bn": 2 * 4 * 8 * 8 * 4 + 4 * 16,
                   "relu": 2 * 4 * 8 * 8 * 4}  # fmt: skip
    assert result.totals.saved_bytes == 5696 == result.layers[0].saved_bytes
    assert result.totals.peak_bytes is None and any("only known on CUDA" in n for n in result.notes)


def _saved_by_autograd_graph(model, x) -> int:
    """An independent count: walk the autograd graph of one training forward and add up the
    storages its nodes hold in their ``_saved_*`` attributes (parameters excluded)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    model.train()
    output = model(x)
    seen, total, stack, visited = set(), 0, [output.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in visited:
            continue
        visited.add(id(node))
        for attr in dir(node):
            if not attr.startswith("_saved_"):
                continue
            values = getattr(node, attr)
            for value in values if isinstance(values, (tuple, list)) else [values]:
                if isinstance(value, torch.Tensor):
                    key = value.untyped_storage().data_ptr()
                    if key and key not in seen and key not in params:
                        seen.add(key)
                        total += value.untyped_storage().nbytes()
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return total


def test_measured_memory_of_resnet18_matches_the_autograd_graph():
    from torchvision.models import resnet18

    result = summarize("resnet18", inputs=["2,3,64,64"], memory="measured", device="cpu")
    torch.manual_seed(0)
    independent = _saved_by_autograd_graph(resnet18(), torch.randn(2, 3, 64, 64))
    assert result.totals.saved_bytes == independent
    assert result.totals.saved_bytes < result.totals.forward_backward_bytes  # the estimate
    check = sum(row.own_saved_bytes for row in result.layers)
    assert check == result.totals.saved_bytes


def test_measuring_leaves_the_model_as_it_was():
    from tests.tiny_models import ConvBnRelu
    from vizcli.memory import measure_training_memory

    model = ConvBnRelu().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    measure_training_memory(model, [torch.randn(2, 3, 8, 8)])
    assert not model.training and not model.bn.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert not model.bn._forward_hooks and not model.bn._forward_pre_hooks
