"""Invariants under hypothesis: preprocessing equals torchvision's transforms for any picture
size, summary rows add up to their totals for any small network, and hooks hand back any
module tree exactly as it was, on error too."""

from __future__ import annotations

import contextlib
import copy
import itertools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from torch import nn

from tests.checks import has_hooks
from tests.conftest import shared
from vizcli.hooks import capture, intercept, preserved_state
from vizcli.images import Preprocess

SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# ------------------------------------------------------------------ preprocessing


@SETTINGS
@given(
    width=st.integers(1, 400),
    height=st.integers(1, 400),
    crop=st.tuples(st.integers(1, 64), st.integers(1, 64)),
    resize=st.one_of(st.none(), st.integers(1, 96)),
    interpolation=st.sampled_from(["bilinear", "bicubic", "nearest"]),
    seed=st.integers(0, 2**16),
)
def test_preprocessing_equals_torchvision_for_any_size(
    width, height, crop, resize, interpolation, seed
):
    from torchvision import transforms as T

    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    ours = Preprocess(resize, crop, mean, std, interpolation)(image)
    mode = T.InterpolationMode(interpolation)
    first = T.Resize(resize if resize is not None else list(crop), mode, antialias=True)
    theirs = T.Compose([first, T.CenterCrop(list(crop)), T.ToTensor(), T.Normalize(mean, std)])
    expected = theirs(image)
    assert ours.shape == (3, *crop)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-6)


@SETTINGS
@given(
    width=st.integers(8, 2000),
    height=st.integers(8, 2000),
    crop=st.integers(8, 256),
    ratio=st.floats(1.0, 1.5),
)
def test_crop_box_is_where_torchvision_takes_the_input_from(width, height, crop, ratio):
    """The reported crop box, mapped back through the resize, is the centre crop's window."""
    resize = max(crop, int(crop * ratio))
    geometry = Preprocess(resize, (crop, crop), (0.5,) * 3, (0.5,) * 3).geometry(width, height)
    new_w, new_h = geometry["resize"]
    assert min(new_w, new_h) == resize
    left, top, right, bottom = geometry["crop_box"]
    assert right - left == pytest.approx(crop * width / new_w, abs=0.02)
    assert bottom - top == pytest.approx(crop * height / new_h, abs=0.02)
    # torchvision's center_crop: offsets round((size - crop) / 2); the box is rounded to 0.01
    sx, sy = new_w / width, new_h / height
    assert left * sx == pytest.approx(round((new_w - crop) / 2), abs=0.006 * sx)
    assert top * sy == pytest.approx(round((new_h - crop) / 2), abs=0.006 * sy)


# ------------------------------------------------------------------ summary

LAYER_KINDS = ["conv", "bn", "relu", "pool", "block", "shared"]


class _Net(nn.Module):
    def __init__(self, kinds: list[str], width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1)]
        self.shared = nn.Conv2d(width, width, 1)
        for kind in kinds:
            if kind == "conv":
                layers.append(nn.Conv2d(width, width, 3, padding=1, bias=False))
            elif kind == "bn":
                layers.append(nn.BatchNorm2d(width))
            elif kind == "relu":
                layers.append(nn.ReLU())
            elif kind == "pool":
                layers.append(nn.AvgPool2d(2, ceil_mode=True))
            elif kind == "block":
                layers.append(nn.Sequential(nn.Conv2d(width, width, 1), nn.ReLU()))
            else:
                layers.append(self.shared)  # the same module at several places
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean((2, 3)))


@pytest.fixture(scope=shared("module"))
def net_file(tmp_path_factory):
    """A factory file that builds ``_Net`` from the environment (one file, many networks)."""
    path = tmp_path_factory.mktemp("nets") / "random_nets.py"
    path.write_text(
        "import json, os\n"
        "from tests.test_properties import _Net\n"
        "def net():\n"
        "    spec = json.loads(os.environ['VIZCLI_TEST_NET'])\n"
        "    return _Net(spec['kinds'], spec['width'])\n",
        encoding="utf-8",
    )
    return path


@SETTINGS
@given(
    kinds=st.lists(st.sampled_from(LAYER_KINDS), max_size=6),
    width=st.integers(1, 12),
    size=st.integers(1, 20),
)
def test_summary_rows_add_up_for_any_small_network(net_file, monkeypatch, kinds, width, size):
    import json

    from vizcli.summary import summarize

    monkeypatch.setenv("VIZCLI_TEST_NET", json.dumps({"kinds": kinds, "width": width}))
    summary = summarize(f"{net_file}:net", inputs=[f"2,3,{size},{size}"])
    model = _Net(kinds, width)
    rows, totals = summary.layers, summary.totals
    assert totals.params == sum(p.numel() for p in model.parameters())
    assert sum(r.own_params for r in rows) == totals.params
    assert sum(r.own_mult_adds for r in rows) == totals.mult_adds
    top = [r for r in rows if r.depth == 1]
    assert sum(r.params for r in top) + rows[0].own_params == totals.params
    assert sum(r.mult_adds for r in top) + rows[0].own_mult_adds == totals.mult_adds
    # mult-adds of the convolutions and the head, counted on paper
    on_paper, side = 0, size
    x = torch.zeros(2, 3, size, size)
    with torch.no_grad():
        for layer in itertools.chain(model.body, [model.head]):
            if isinstance(layer, nn.Linear):
                on_paper += 2 * layer.in_features * layer.out_features
                continue
            for conv in [m for m in layer.modules() if isinstance(m, nn.Conv2d)]:
                y = conv(x)
                on_paper += y.numel() * conv.in_channels * conv.kernel_size[0] ** 2
            x = layer(x)
            side = x.shape[-1]
    assert side >= 1
    assert totals.mult_adds == on_paper


# ------------------------------------------------------------------ hooks


def _tree(draw_kinds: list[int], seed: int) -> nn.Module:
    torch.manual_seed(seed)
    blocks = []
    for kind in draw_kinds:
        blocks.append(
            [
                lambda: nn.Sequential(nn.Linear(6, 6), nn.BatchNorm1d(6), nn.ReLU()),
                lambda: nn.Sequential(nn.Dropout(0.5), nn.Linear(6, 6)),
                lambda: nn.Sequential(nn.Sequential(nn.Linear(6, 6), nn.LayerNorm(6))),
                lambda: nn.BatchNorm1d(6, momentum=None),
            ][kind]()
        )
    return nn.Sequential(*blocks, nn.Linear(6, 2))


def _snapshot(model: nn.Module) -> dict:
    return {
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        "grad_ids": [id(p.grad) for p in model.parameters()],
        "data_ptrs": [p.data_ptr() for p in model.parameters()],
        "state": copy.deepcopy(model.state_dict()),
        "hooks": has_hooks(model),
    }


def _same(a: dict, b: dict) -> bool:
    if {k: a[k] for k in ("training", "requires_grad", "grad_ids", "data_ptrs", "hooks")} != {
        k: b[k] for k in ("training", "requires_grad", "grad_ids", "data_ptrs", "hooks")
    }:
        return False
    grads = all(
        (x is None and y is None) or (x is not None and y is not None and torch.equal(x, y))
        for x, y in zip(a["grads"], b["grads"], strict=True)
    )
    return grads and all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])


@SETTINGS
@given(
    kinds=st.lists(st.integers(0, 3), min_size=1, max_size=4),
    seed=st.integers(0, 1000),
    flags=st.lists(st.booleans(), min_size=12, max_size=12),
    guard=st.sampled_from(["preserved_state", "capture", "intercept"]),
    fail=st.booleans(),
)
def test_hooks_hand_back_any_module_tree(kinds, seed, flags, guard, fail):
    model = _tree(kinds, seed)
    modules = list(model.modules())
    for module, flag in zip(modules, flags, strict=False):
        module.training = flag
    for param, flag in zip(model.parameters(), reversed(flags), strict=False):
        param.requires_grad_(flag)
        if flag and seed % 2:
            param.grad = torch.full_like(param, 0.5)
    before = _snapshot(model)
    chosen = {n: m for n, m in model.named_modules() if n}
    contexts = {
        "preserved_state": lambda: preserved_state(model),
        "capture": lambda: capture(model, chosen, lambda name, out: None),
        "intercept": lambda: intercept(model, chosen, lambda name, out: out * 2),
    }
    with pytest.raises(RuntimeError) if fail else contextlib.nullcontext(), contexts[guard]():
        model.train()  # whatever the body does: train mode, moved statistics, new grads
        out = model(torch.randn(4, 6, requires_grad=True))
        out.sum().backward()
        with torch.no_grad():
            for param in model.parameters():
                param.mul_(1.0)  # same storage, same values
        for module in model.modules():
            if isinstance(module, nn.BatchNorm1d):
                module.running_mean.add_(1.0)
        if fail:
            raise RuntimeError("the body failed")
    assert _same(before, _snapshot(model))
