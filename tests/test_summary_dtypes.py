"""Summary byte counts for inputs and models that are not float32, and trainable parameters
per row, checked against the tensors themselves (forward hooks, ``element_size``)."""

from __future__ import annotations

import json

import pytest
import torch

from tests import tiny_models
from tests.conftest import TINY


def _summary(cli, *args):
    result = cli("summary", *args, "-f", "json", "--depth", "9")
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def _outputs_by_hand(model, *inputs):
    """Bytes of each module's output, from forward hooks on a real forward pass."""
    sizes = {}

    def record(name):
        def hook(module, args, output):
            sizes.setdefault(name, output.numel() * output.element_size())

        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in model.named_modules() if n]
    with torch.no_grad():
        model(*inputs)
    for handle in handles:
        handle.remove()
    return sizes


@pytest.mark.parametrize(
    ("factory", "shape", "dtype", "make"),
    [
        ("double_net", (2, 3, 20, 20), "float64", lambda s: torch.randn(s, dtype=torch.float64)),
        ("Tokens", (2, 10), "int64", lambda s: torch.randint(0, 100, s)),
        ("Tokens", (3, 7), "int32", lambda s: torch.randint(0, 100, s, dtype=torch.int32)),
    ],
)
def test_byte_counts_follow_the_dtypes(cli, factory, shape, dtype, make):
    size = ",".join(map(str, shape))
    data = _summary(cli, f"{TINY}:{factory}", "--input", size, "--dtype", dtype)
    model = getattr(tiny_models, factory)()
    example = make(shape)
    totals = data["totals"]
    assert totals["input_bytes"] == example.numel() * example.element_size()
    assert totals["params_bytes"] == sum(p.numel() * p.element_size() for p in model.parameters())
    expected = _outputs_by_hand(model, example)
    rows = {r["name"]: r for r in data["layers"] if r["name"]}
    assert {n: rows[n]["output_bytes"] for n in expected} == expected
    leaves = [n for n, m in model.named_modules() if n and not any(m.children())]
    assert totals["forward_backward_bytes"] == 2 * sum(expected[n] for n in leaves)


def test_trainable_parameters_per_row(cli):
    data = _summary(cli, f"{TINY}:PartlyFrozen", "--input", "1,3,16,16")
    model = tiny_models.PartlyFrozen()
    rows = [r for r in data["layers"] if r["name"]]
    block_rows = [r for r in rows if r["name"] == "block"]
    assert len(block_rows) == 2  # called twice: parameters on the first call only
    assert block_rows[1]["params"] == block_rows[1]["trainable_params"] == 0
    first = {r["name"]: r for r in reversed(rows)}
    for name, module in model.named_children():
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        assert first[name]["trainable_params"] == trainable, name
        assert first[name]["params"] == sum(p.numel() for p in module.parameters()), name
    totals = data["totals"]
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert (totals["trainable_params"], totals["non_trainable_params"]) == (
        trainable,
        sum(p.numel() for p in model.parameters()) - trainable,
    )
    assert trainable == 8 * 8 * 9 + 8 + 5  # block, and the head's bias


def test_a_dtype_the_model_cannot_take_is_a_clear_error(cli):
    result = cli("summary", f"{TINY}:tiny_net", "--input", "1,3,16,16", "--dtype", "float16")
    assert result.code != 0
    assert result.stderr.startswith("error:")
    assert "Traceback" not in result.stderr
