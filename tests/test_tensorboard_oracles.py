"""What vizcli writes to TensorBoard, read back with TensorBoard's own reader and compared by
content: image pixels against the PNG files of the same run and against weights set by hand,
histograms and scalars against numpy/torch computed here on the same tensors, and against the
command's own ``-f json``."""

from __future__ import annotations

import importlib.util
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.tb import read_events

FACTORY = '''
import torch
from torch import nn


class Painted(nn.Module):
    def __init__(self):
        super().__init__()
        self.rgb = nn.Conv2d(3, 4, 3)
        self.deep = nn.Conv2d(4, 6, 3)

    def forward(self, x):
        return self.deep(self.rgb(x))


def painted():
    """rgb's filters by hand: 0 pure red, 1 blue up and green down, 2 a white top-left tap
    and a green bottom-right one, 3 random; the rest random."""
    model = Painted()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
        w = model.rgb.weight
        w[:3] = 0.0
        w[0, 0] = 1.0
        w[1, 2] = 1.0
        w[1, 1] = -1.0
        w[2, :, 0, 0] = 1.0
        w[2, 1, 2, 2] = 1.0
    return model


class Seeded(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))


def seeded():
    model = Seeded()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model
'''

SIZE = 20  # the test pictures' size: with --size SIZE --crop squash the model sees them as is
PREP = ["--size", str(SIZE), "--crop", "squash", "--no-normalize"]


@pytest.fixture
def factory(tmp_path) -> Path:
    path = tmp_path / "oracle_nets.py"
    path.write_text(FACTORY)
    return path


@pytest.fixture
def pictures(tmp_path) -> list[Path]:
    rng = np.random.default_rng(7)
    paths = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.png"
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def build(path: Path, name: str) -> torch.nn.Module:
    """The factory's model, built here from the same file (not through vizcli)."""
    spec = importlib.util.spec_from_file_location(f"_oracle_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)().eval()


def as_batch(paths: list[Path]) -> torch.Tensor:
    """What --no-normalize at the picture's own size feeds the model: pixels / 255."""
    arrays = [np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255 for p in paths]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert image.mode == "RGB"
        return np.asarray(image).copy()


def tensorboard_images_equal_pngs(png_run: Path, tb_run: Path) -> dict[tuple[str, int], Path]:
    """Every image in the event file decodes to the very pixels of its PNG file."""
    manifest = json.loads((png_run / "manifest.json").read_text())
    images = [a for a in manifest["artifacts"] if a["kind"] == "image"]
    files = {(a["tag"], a["step"]): png_run / a["file"] for a in images}
    events = read_events(tb_run)
    seen = {}
    for tag in events.Tags()["images"]:
        for event in events.Images(tag):
            seen[(tag, event.step)] = decode(event.encoded_image_string)
            assert seen[(tag, event.step)].shape == (event.height, event.width, 3)
    assert files and set(seen) == set(files)
    for key, path in files.items():
        with Image.open(path) as image:
            assert image.mode == "RGB", path.name
            assert np.array_equal(seen[key], np.asarray(image)), path.name
    return files


def grid_cells(pixels: np.ndarray, count: int, height: int, width: int, pad: int = 2):
    """The cells of a make_grid layout (square-ish, row-major, ``pad`` pixels around each)."""
    if count == 1:
        assert pixels.shape[:2] == (height, width)
        return [pixels]
    ncol = min(math.ceil(math.sqrt(count)), count)
    nrows = math.ceil(count / ncol)
    assert pixels.shape[:2] == (nrows * (height + pad) + pad, ncol * (width + pad) + pad)
    cells = []
    for index in range(count):
        row, col = divmod(index, ncol)
        top, left = row * (height + pad) + pad, col * (width + pad) + pad
        cells.append(pixels[top : top + height, left : left + width])
    return cells


def upscale(array: np.ndarray, factor: int) -> np.ndarray:
    return np.repeat(np.repeat(array, factor, axis=0), factor, axis=1)


# ---------------------------------------------------------------------------------- images


def test_kernels_tensorboard_pixels_are_the_pngs_and_the_weights_colours(cli, tmp_path, factory):
    result = cli(
        "kernels",
        f"{factory}:painted",
        "--cell-size",
        "12",
        "--out",
        str(tmp_path / "png"),
        "--logdir",
        str(tmp_path / "tb"),
        "--run",
        "k",
    )
    assert result.code == 0, result.stderr
    files = tensorboard_images_equal_pngs(tmp_path / "png" / "k", tmp_path / "tb" / "k")
    assert set(files) == {("kernels/rgb", 0), ("kernels/deep", 0)}

    with Image.open(files[("kernels/rgb", 0)]) as image:
        pixels = np.asarray(image)
    weight = build(factory, "painted").rgb.weight.detach().double().numpy()  # 4 x 3 x 3 x 3
    factor = 4  # 3x3 kernels reach --cell-size 12 at x4
    cells = grid_cells(pixels, 4, 3 * factor, 3 * factor)
    red, blue_green, taps = cells[0], cells[1], cells[2]
    # filter 0 is red only: red channel full, green and blue empty, everywhere
    assert (red[..., 0] == 255).all() and (red[..., 1:] == 0).all()
    # filter 1: blue +1 (top of its range), green -1 (bottom), red 0 (the middle)
    assert (blue_green[..., 2] == 255).all() and (blue_green[..., 1] == 0).all()
    assert np.isin(blue_green[..., 0], (127, 128)).all()
    # filter 2: white at the top-left tap, green at the bottom-right tap, black elsewhere
    block = slice(0, factor), slice(0, factor)
    assert (taps[block] == 255).all()
    assert (taps[2 * factor :, 2 * factor :] == (0, 255, 0)).all()
    assert (taps[factor : 2 * factor, : 2 * factor] == 0).all()
    # every filter: min-max over its own three channels, channel 0 drawn as red
    for index, filt in enumerate(weight):
        scaled = (filt - filt.min()) / (filt.max() - filt.min())
        expected = upscale(np.rint(scaled.transpose(1, 2, 0) * 255), factor)
        assert np.abs(cells[index].astype(int) - expected).max() <= 1, index


def test_fmaps_tensorboard_pixels_are_the_pngs_and_the_activations(
    cli, tmp_path, factory, pictures
):
    result = cli(
        "fmaps",
        f"{factory}:seeded",
        *map(str, pictures),
        *PREP,
        "--colormap",
        "gray",
        "--out",
        str(tmp_path / "png"),
        "--logdir",
        str(tmp_path / "tb"),
        "--run",
        "f",
    )
    assert result.code == 0, result.stderr
    files = tensorboard_images_equal_pngs(tmp_path / "png" / "f", tmp_path / "tb" / "f")
    tags = ["input", "fmaps/features.0", "fmaps/features.2"]
    assert set(files) == {(tag, step) for tag in tags for step in (0, 1)}

    model = build(factory, "seeded")
    batch = as_batch(pictures)
    with torch.no_grad():
        outputs = {"features.0": model.features[0](batch)}
        outputs["features.2"] = model.features[2](model.features[1](outputs["features.0"]))
    for step, path in enumerate(pictures):
        with Image.open(files[("input", step)]) as logged, Image.open(path) as original:
            assert np.array_equal(np.asarray(logged), np.asarray(original.convert("RGB")))
        for name, output in outputs.items():
            maps = output[step].double().numpy()
            with Image.open(files[(f"fmaps/{name}", step)]) as image:
                pixels = np.asarray(image)
            cells = grid_cells(pixels, maps.shape[0], *maps.shape[1:])
            for channel, (cell, values) in enumerate(zip(cells, maps, strict=True)):
                # gray: each channel min-max on its own, grey levels equal in R, G and B
                assert (cell == cell[..., :1]).all()
                expected = np.rint((values - values.min()) / (values.max() - values.min()) * 255)
                diff = np.abs(cell[..., 0].astype(int) - expected)
                assert diff.max() <= 1 and (diff == 0).mean() > 0.95, (name, step, channel)


def test_cam_tensorboard_pixels_are_the_pngs(cli, tmp_path, factory, pictures):
    result = cli(
        "cam",
        f"{factory}:seeded",
        str(pictures[0]),
        *PREP,
        "--out",
        str(tmp_path / "png"),
        "--logdir",
        str(tmp_path / "tb"),
        "--run",
        "c",
    )
    assert result.code == 0, result.stderr
    files = tensorboard_images_equal_pngs(tmp_path / "png" / "c", tmp_path / "tb" / "c")
    assert {"overlay", "map", "panel"} <= {tag.rsplit("/", 1)[-1] for tag, _ in files}


# ---------------------------------------------------------------------- histograms, scalars


def numpy_stats(values: np.ndarray) -> dict[str, float]:
    values = values.astype(np.float64).ravel()
    return {
        "count": values.size,
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)),
        "min": float(values.min()),
        "max": float(values.max()),
        "norm": float(np.sqrt(np.dot(values, values))),
        "zero_fraction": float(np.mean(values == 0)),
    }


def assert_histogram(histogram, values: np.ndarray, rel: float, what: str) -> None:
    values = values.astype(np.float64).ravel()
    assert histogram.num == values.size, what
    assert histogram.min == pytest.approx(values.min(), rel=rel, abs=1e-12), what
    assert histogram.max == pytest.approx(values.max(), rel=rel, abs=1e-12), what
    assert histogram.sum == pytest.approx(values.sum(), rel=rel, abs=1e-9), what
    assert histogram.sum_squares == pytest.approx(np.dot(values, values), rel=rel), what
    assert sum(histogram.bucket) == values.size, what
    assert histogram.bucket_limit[-1] >= values.max(), what


def assert_stats(got: dict, expected: dict[str, float], rel: float, what: str) -> None:
    assert got["count"] == expected["count"], what
    for key in ("mean", "std", "min", "max", "norm", "zero_fraction"):
        assert got[key] == pytest.approx(expected[key], rel=rel, abs=1e-12), (what, key)


def test_hist_histograms_and_json_equal_numpy_on_weights_and_gradients(
    cli, tmp_path, factory, pictures
):
    result = cli(
        "hist",
        f"{factory}:seeded",
        str(pictures[0]),
        *PREP,
        "--logdir",
        str(tmp_path),
        "--run",
        "h",
        "-f",
        "json",
    )
    assert result.code == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)["parameters"]}

    model = build(factory, "seeded")
    params = dict(model.named_parameters())
    score = model(as_batch(pictures[:1])).max(dim=1).values.sum()  # the top class score
    grads = dict(zip(params, torch.autograd.grad(score, list(params.values())), strict=True))
    assert list(rows) == list(params)

    events = read_events(tmp_path / "h")
    assert sorted(events.Tags()["histograms"]) == sorted(
        [f"weights/{n}" for n in params] + [f"grads/{n}" for n in params]
    )
    for name, param in params.items():
        weights = param.detach().numpy()
        (logged,) = events.Histograms(f"weights/{name}")
        assert_histogram(logged.histogram_value, weights, 1e-12, name)
        assert_stats(rows[name]["weights"], numpy_stats(weights), 1e-9, name)
        assert rows[name]["weights"]["shape"] == list(weights.shape)

        gradient = grads[name].numpy()
        (logged,) = events.Histograms(f"grads/{name}")
        assert_histogram(logged.histogram_value, gradient, 1e-5, f"grad of {name}")
        assert_stats(rows[name]["grads"], numpy_stats(gradient), 1e-5, f"grad of {name}")


@pytest.mark.parametrize("batch_size", ["1", "8"])  # the figures do not depend on it
def test_stats_scalars_and_json_equal_torch_on_the_same_batch(
    cli, tmp_path, factory, pictures, batch_size
):
    result = cli(
        "stats",
        f"{factory}:seeded",
        *map(str, pictures),
        *PREP,
        "--batch-size",
        batch_size,
        "--logdir",
        str(tmp_path),
        "--run",
        "s",
        "-f",
        "json",
    )
    assert result.code == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)["layers"]}

    model = build(factory, "seeded")
    features = model.features
    outputs = {"features.0": features[0](as_batch(pictures))}
    outputs["features.1"] = features[1](outputs["features.0"])
    outputs["features.2"] = features[2](outputs["features.1"])
    outputs["pool"] = model.pool(outputs["features.2"])
    outputs["fc"] = model.fc(outputs["pool"].flatten(1))
    score = outputs["fc"].max(dim=1).values.sum()  # each image's top class score, summed
    layers = {"features.0": features[0], "features.2": features[2], "fc": model.fc}
    params = [p for module in layers.values() for p in module.parameters()]
    grads = torch.autograd.grad(score, list(outputs.values()) + params)
    output_grads = dict(zip(outputs, grads[: len(outputs)], strict=True))
    param_grads, start = {}, len(outputs)
    for name, module in layers.items():
        count = len(list(module.parameters()))
        param_grads[name] = grads[start : start + count]
        start += count

    assert list(rows) == list(outputs)
    tolerance = 1e-9 if batch_size == "8" else 1e-5
    expected: dict[str, dict[str, float]] = {}
    for name, output in outputs.items():
        values = output.detach().numpy()
        expected[name] = numpy_stats(values)
        # one batch: the very same float32 outputs; image by image: convolutions may sum in
        # another order (float32 rounding)
        assert_stats(rows[name]["activations"], expected[name], tolerance, name)
        expected[name]["output_grad_norm"] = float(np.linalg.norm(output_grads[name].double()))
        assert rows[name]["output_grad_norm"] == pytest.approx(
            expected[name]["output_grad_norm"], rel=1e-5
        )
        if name in param_grads:
            norm = math.sqrt(sum(float(g.double().pow(2).sum()) for g in param_grads[name]))
            expected[name]["param_grad_norm"] = norm
            assert rows[name]["param_grad_norm"] == pytest.approx(norm, rel=1e-5), name
        else:
            assert rows[name]["param_grad_norm"] is None, name
    assert 0.2 < expected["features.1"]["zero_fraction"] < 0.8  # the ReLU's zeros do show

    events = read_events(tmp_path / "s")
    keys = ("mean", "std", "min", "max", "zero_fraction", "output_grad_norm", "param_grad_norm")
    written = {f"stats/{name}/{key}" for name in outputs for key in keys if key in expected[name]}
    assert set(events.Tags()["scalars"]) == written
    for tag in written:
        _, name, key = tag.split("/")
        (scalar,) = events.Scalars(tag)
        json_value = rows[name][key] if "norm" in key else rows[name]["activations"][key]
        # TensorBoard keeps float32 scalars
        assert scalar.value == pytest.approx(json_value, rel=1e-6, abs=1e-7), tag
        assert scalar.value == pytest.approx(expected[name][key], rel=1e-5, abs=1e-7), tag
