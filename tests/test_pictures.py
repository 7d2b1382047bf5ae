"""kernels, fmaps, hist and stats: pictures and numbers that follow the model's real values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from tests.checks import grid_shape, has_hooks
from tests.conftest import SAMPLES, TINY
from tests.tiny_models import Shapes, TinyNet
from vizcli import artifacts
from vizcli.draw import colormaps, grids
from vizcli.errors import UsageError
from vizcli.fmaps import FmapOptions, as_maps, feature_maps
from vizcli.hist import parameter_histograms
from vizcli.kernels import KernelOptions, kernel_images
from vizcli.models import resolve_model
from vizcli.stats import layer_health

CHELSEA = SAMPLES / "chelsea.png"


def _kernels(layers, **options):
    report = []
    images = list(kernel_images(layers, KernelOptions(**options), report))
    return images, report


def _cell_centre(pixels, index, cell, count, padding=2):
    ncol = math.ceil(math.sqrt(count))
    row, col = divmod(index, ncol)
    y = padding + row * (cell + padding) + cell // 2
    x = padding + col * (cell + padding) + cell // 2
    return tuple(int(v) for v in pixels[y, x])


def test_signed_kernels_follow_the_weights():
    """Weights set with fill_, as the seeds do: +1 red, -1 blue, 0 white."""
    conv = nn.Conv2d(4, 3, 3)
    with torch.no_grad():
        conv.weight[0].fill_(1.0)
        conv.weight[1].fill_(-1.0)
        conv.weight[2].fill_(0.0)
    (image,), report = _kernels({"conv": conv}, cell_size=30)
    assert report[0].mode == "mean" and image.tag == "kernels/conv"
    lut = colormaps.lookup_table("bwr")
    assert _cell_centre(image.pixels, 0, 30, 3) == tuple(lut[255])
    assert _cell_centre(image.pixels, 1, 30, 3) == tuple(lut[0])
    assert _cell_centre(image.pixels, 2, 30, 3) == tuple(lut[128])
    assert image.pixels.shape[:2] == grid_shape(3, 30, 30)


def test_rgb_kernels_are_drawn_in_colour():
    conv = nn.Conv2d(3, 2, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = 1.0  # filter 0 looks for red
        conv.weight[1, 2] = 1.0  # filter 1 looks for blue
    (image,), report = _kernels({"conv": conv}, cell_size=10)
    assert report[0].mode == "rgb"
    assert _cell_centre(image.pixels, 0, 10, 2) == (255, 0, 0)
    assert _cell_centre(image.pixels, 1, 10, 2) == (0, 0, 255)


def test_every_kind_of_convolution_draws():
    model = Shapes()
    layers = {n: m for n, m in model.named_children() if n != "head"}
    images, report = _kernels(layers, cell_size=8, max_filters=4)
    modes = {r.name: r.mode for r in report}
    assert modes == {
        "rgb": "rgb",
        "grouped": "mean",
        "depthwise": "mean",
        "transposed": "mean",
        "one_d": "mean",
        "three_d": "mean",
    }
    shapes = {i.tag: i.pixels.shape for i in images}
    # Conv1d: each filter is an (in=4) x (k=7) map; Conv3d: depth slices side by side (3 x 2*3).
    assert shapes["kernels/one_d"][:2] == grid_shape(4, 4 * 2, 7 * 2)
    assert shapes["kernels/three_d"][:2] == grid_shape(3, 3 * 2, 6 * 2)
    per_filter, _ = _kernels({"grouped": model.grouped}, mode="filters", max_filters=2, cell_size=3)
    assert [i.tag for i in per_filter] == ["kernels/grouped/filter_0", "kernels/grouped/filter_1"]


def test_kernels_reject_layers_without_kernels():
    with pytest.raises(UsageError, match="no convolution kernel"):
        _kernels({"fc": nn.Linear(2, 2)})
    with pytest.raises(UsageError, match="rgb needs 3"):
        _kernels({"c": nn.Conv2d(4, 2, 3)}, mode="rgb")


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return resolve_model(f"{TINY}:TinyNet", device="cpu")


def test_feature_maps_equal_a_manual_forward(tiny):
    from vizcli.images import load_tensor

    emitted = []
    layers = {"features.0": tiny.model.features[0]}
    report = feature_maps(tiny, [CHELSEA], layers, FmapOptions(colormap="gray"), emitted.append)
    assert [e.tag for e in emitted] == ["input", "fmaps/features.0"]
    with torch.no_grad():
        manual = tiny.model.features[0](load_tensor(CHELSEA, tiny.preprocess))[0]
    pixels = emitted[1].pixels[..., 0]
    assert emitted[1].pixels.shape[:2] == grid_shape(8, 224, 224) == report[0].grid
    for channel in (0, 5):
        cell = pixels_of_cell(pixels, channel, 224, 8)
        expected = grids.normalize(manual[channel : channel + 1], "each")[0]
        assert np.abs(cell.astype(int) - (expected * 255).round().numpy()).max() <= 1
    assert emitted[0].pixels.shape == (224, 224, 3)
    assert not has_hooks(tiny.model)


def pixels_of_cell(pixels, index, cell, count, padding=2):
    ncol = math.ceil(math.sqrt(count))
    row, col = divmod(index, ncol)
    y, x = padding + row * (cell + padding), padding + col * (cell + padding)
    return pixels[y : y + cell, x : x + cell]


def test_feature_maps_catch_values_before_an_in_place_relu():
    """vgg-style conv -> ReLU(inplace=True): the conv's map must keep its negative values."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True)).eval()
    loaded = resolve_model(f"{TINY}:TinyNet", device="cpu")
    loaded.model = model
    seen = []
    from vizcli.hooks import capture

    with capture(model, {"0": model[0]}, lambda n, t: seen.append(float(t.detach().min()))):
        model(torch.randn(1, 3, 8, 8))
    assert seen[0] < 0


def test_strict_fmaps_refuse_flat_outputs_and_clean_up(tiny):
    with pytest.raises(UsageError, match="not an image-like tensor"):
        feature_maps(tiny, [CHELSEA], {"fc": tiny.model.fc}, FmapOptions(), lambda a: None)
    assert not has_hooks(tiny.model)
    report = feature_maps(
        tiny, [CHELSEA], {"fc": tiny.model.fc}, FmapOptions(), lambda a: None, strict=False
    )
    assert report[0].grid is None and "skipped" in report[0].note


def test_vit_tokens_become_a_grid():
    tokens = torch.randn(1, 197, 768)
    maps = as_maps(tokens)
    assert maps.shape == (768, 14, 14)
    assert torch.equal(maps[:, 0, 1], tokens[0, 2])  # class token dropped, row-major patches
    assert as_maps(torch.randn(1, 10)) is None


def test_histograms_cover_every_parameter_and_gradient(tiny):
    emitted = []
    rows = parameter_histograms(tiny, CHELSEA, emitted.append)
    names = [n for n, _ in tiny.model.named_parameters()]
    assert [r.name for r in rows] == names
    hists = {e.tag: e.values for e in emitted if isinstance(e, artifacts.Histogram)}
    assert set(hists) == {f"weights/{n}" for n in names} | {f"grads/{n}" for n in names}
    weight = tiny.model.fc.weight
    assert hists["weights/fc.weight"].numel() == weight.numel()
    assert rows[-2].weights.mean == pytest.approx(float(weight.detach().mean()), rel=1e-6)
    assert rows[-2].grads.norm > 0
    assert all(p.grad is None for p in tiny.model.parameters())  # the caller's .grad untouched


def test_stats_flag_dead_layers_and_nans():
    torch.manual_seed(0)
    model = TinyNet().eval()
    with torch.no_grad():
        model.features[0].bias.fill_(-100.0)  # every ReLU output is zero: dead
    loaded = resolve_model(f"{TINY}:TinyNet", device="cpu")
    loaded.model = model
    layers = {"features.0": model.features[0], "features.1": model.features[1], "fc": model.fc}
    emitted = []
    rows = {r.name: r for r in layer_health(loaded, [CHELSEA], layers, emitted.append)}
    assert rows["features.1"].activations.zero_fraction == 1.0
    assert any("dead" in f for f in rows["features.1"].flags)
    assert rows["features.0"].activations.mean == pytest.approx(-100, abs=1)
    assert rows["fc"].output_grad_norm == pytest.approx(1.0)  # d(max score)/d(logits) is one-hot
    assert any(
        "vanishing" in f for f in rows["features.0"].flags
    )  # nothing flows through dead ReLUs
    with torch.no_grad():
        model.fc.weight[0, 0] = float("nan")
    rows = {r.name: r for r in layer_health(loaded, [CHELSEA], layers, lambda a: None)}
    assert rows["fc"].activations.nans == 1 and "NaN" in rows["fc"].flags[0]
    tags = {e.tag for e in emitted}
    assert "stats/features.1/zero_fraction" in tags and "stats/fc/output_grad_norm" in tags
    assert not has_hooks(model) and not model.training
