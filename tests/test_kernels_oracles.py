"""``kernels`` pictures checked pixel by pixel against the weights: which filter lands in which
cell, transposed and grouped convolutions, every mode, the diverging map's colours (against
matplotlib's ``bwr`` when installed) and RGB filters' own min-max."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from vizcli.errors import UsageError
from vizcli.kernels import KernelOptions, kernel_images

PAD = 2  # make_grid's padding around every cell
CELL = 12  # --cell-size used below: 3x3 kernels are drawn x4, 5x5 kernels x3


def bwr_reference() -> np.ndarray:
    """256 x 3 colours of the blue-white-red map: matplotlib's own table, else the README's
    definition (blue at -max, white at 0, red at +max, linear in between)."""
    try:
        import matplotlib
    except ImportError:
        anchors = np.array([[0, 0, 255], [255, 255, 255], [255, 0, 0]], dtype=float)
        samples = np.linspace(0, 1, 256)
        return np.stack([np.interp(samples, [0, 0.5, 1], anchors[:, c]) for c in range(3)], 1)
    return matplotlib.colormaps["bwr"](np.arange(256))[:, :3] * 255


BWR = bwr_reference()


def signed_colours(values: np.ndarray, bound: float) -> np.ndarray:
    """Colour of each value when -bound..0..bound spans blue..white..red."""
    index = np.rint((np.clip(values / (2 * bound) + 0.5, 0, 1)) * 255).astype(int)
    return BWR[index]


def factor(size: int) -> int:
    """The smallest nearest-neighbour factor that makes ``size`` reach CELL pixels."""
    return next(f for f in range(1, CELL + 1) if f * size >= CELL)


def upscale(array: np.ndarray, times: int) -> np.ndarray:
    return np.repeat(np.repeat(array, times, axis=0), times, axis=1)


def grid_cells(pixels: np.ndarray, count: int, height: int, width: int) -> list[np.ndarray]:
    """Cells of a make_grid layout: ceil(sqrt(n)) columns, row-major, PAD pixels around."""
    if count == 1:
        assert pixels.shape[:2] == (height, width)
        return [pixels]
    ncol = min(math.ceil(math.sqrt(count)), count)
    nrows = math.ceil(count / ncol)
    assert pixels.shape[:2] == (nrows * (height + PAD) + PAD, ncol * (width + PAD) + PAD)
    cells = []
    for index in range(count):
        row, col = divmod(index, ncol)
        top, left = row * (height + PAD) + PAD, col * (width + PAD) + PAD
        cells.append(pixels[top : top + height, left : left + width])
    return cells


def draw(module: nn.Module, **options):
    report: list = []
    images = list(
        kernel_images({"layer": module}, KernelOptions(cell_size=CELL, **options), report)
    )
    (row,) = report
    return images, row


def set_weight(module: nn.Module, weight: torch.Tensor) -> nn.Module:
    with torch.no_grad():
        module.weight.copy_(weight)
    return module


def assert_signed_cells(pixels, maps: np.ndarray, bound: float, tolerance: int = 3) -> None:
    """Each cell i shows maps[i] on the diverging map, one scale (bound) for all cells.
    ``tolerance`` allows rounding to the neighbouring colour (about 2 levels apart)."""
    times = factor(max(maps.shape[1:]))
    height, width = maps.shape[1] * times, maps.shape[2] * times
    for index, (cell, values) in enumerate(
        zip(grid_cells(pixels, len(maps), height, width), maps, strict=True)
    ):
        expected = upscale(signed_colours(values, bound), times)
        assert np.abs(cell.astype(float) - expected).max() <= tolerance, index


# ----------------------------------------------------------------------- transposed convs


def test_conv_transpose_draws_one_cell_per_output_channel():
    """ConvTranspose2d stores (in, out, kH, kW): each output channel is one filter."""
    module = nn.ConvTranspose2d(2, 4, 3)
    levels = torch.tensor([1.0, -1.0, 0.5, 0.0])  # filter o averages to levels[o]
    spread = torch.tensor([[0.0, 0.25, -0.25], [0.5, 0.0, -0.5], [0.25, 0.0, 0.0]])
    weight = torch.empty(2, 4, 3, 3)
    weight[0] = levels.view(4, 1, 1) + spread  # input channel 0: level + spread
    weight[1] = levels.view(4, 1, 1) - spread  # input channel 1: level - spread
    weight[:, :, 0, 2] = 0.0  # the top-right tap of every filter: zero
    set_weight(module, weight)
    (image,), row = draw(module)
    assert (row.mode, row.filters_shown, row.images) == ("mean", 4, 1)
    assert image.tag == "kernels/layer"
    maps = weight.double().mean(0).numpy()  # out x kH x kW: averaged over the input channels
    assert_signed_cells(image.pixels, maps, bound=1.0, tolerance=1)
    cells = grid_cells(image.pixels, 4, 12, 12)
    assert (cells[0][4:, :] == (255, 0, 0)).all()  # +1: red
    assert (cells[1][4:, :] == (0, 0, 255)).all()  # -1: blue
    assert min(cells[3][0, 0]) >= 250  # 0: (nearly) white
    assert cells[2][4:, :, 0].min() == 255 and 100 < cells[2][4:, :, 1].max() < 150  # +0.5


@pytest.mark.parametrize(("inputs", "outputs", "groups"), [(4, 6, 2), (6, 2, 2), (3, 3, 3)])
def test_grouped_conv_transpose_draws_each_output_channel_over_its_group(inputs, outputs, groups):
    """A grouped ConvTranspose2d stores (in, out / groups, kH, kW); output channel o of group
    g = o // (out / groups) reads input channels g * (in / groups) ... with weight[i, o % ...]."""
    module = nn.ConvTranspose2d(inputs, outputs, 3, groups=groups, bias=False)
    per_in, per_out = inputs // groups, outputs // groups
    weight = torch.zeros(inputs, per_out, 3, 3)
    expected = torch.zeros(outputs, per_in, 3, 3)
    for out in range(outputs):
        group, local = divmod(out, per_out)
        for j in range(per_in):
            value = torch.full((3, 3), (out + 1) / outputs * (-1) ** out * (1 + j))
            value[0, 0] = 0.0
            weight[group * per_in + j, local] = value
            expected[out, j] = value
    set_weight(module, weight)
    images, row = draw(module, mode="mean")
    assert row.filters_shown == outputs
    maps = expected.double().mean(1).numpy()
    bound = float(np.abs(maps).max())
    assert_signed_cells(images[0].pixels, maps, bound=bound, tolerance=1)


def test_conv_transpose_over_rgb_input_is_drawn_in_colour_per_output_channel():
    module = nn.ConvTranspose2d(3, 2, 3)
    generator = torch.Generator().manual_seed(0)
    set_weight(module, torch.randn(3, 2, 3, 3, generator=generator))
    (image,), row = draw(module)
    assert (row.mode, row.filters_shown) == ("rgb", 2)
    filters = module.weight.detach().double().transpose(0, 1).numpy()  # out x RGB x kH x kW
    for cell, filt in zip(grid_cells(image.pixels, 2, 12, 12), filters, strict=True):
        scaled = (filt - filt.min()) / (filt.max() - filt.min())
        expected = upscale(np.rint(scaled.transpose(1, 2, 0) * 255), 4)
        assert np.abs(cell.astype(int) - expected).max() <= 1


def test_conv_transpose_filters_mode_gives_one_image_per_output_channel():
    module = nn.ConvTranspose2d(2, 3, 3)
    generator = torch.Generator().manual_seed(1)
    set_weight(module, torch.randn(2, 3, 3, 3, generator=generator))
    images, row = draw(module, mode="filters")
    assert (row.filters_shown, row.images) == (3, 3)
    assert [image.tag for image in images] == [f"kernels/layer/filter_{o}" for o in range(3)]
    weight = module.weight.detach().double().numpy()
    bound = np.abs(weight).max()
    for out, image in enumerate(images):
        assert_signed_cells(image.pixels, weight[:, out], bound)  # its cells: input channels


# --------------------------------------------------------------------------- grouped convs


def test_grouped_conv_with_three_inputs_per_group_is_not_drawn_as_rgb():
    """Documented in kernels._mode: colour only for an ungrouped layer over RGB input."""
    module = nn.Conv2d(6, 4, 3, groups=2)  # weight 4 x 3 x 3 x 3: three inputs per filter
    generator = torch.Generator().manual_seed(2)
    set_weight(module, torch.randn(4, 3, 3, 3, generator=generator))
    (image,), row = draw(module)
    assert (row.mode, row.filters_shown, row.weight_shape) == ("mean", 4, [4, 3, 3, 3])
    maps = module.weight.detach().double().mean(1).numpy()
    assert_signed_cells(image.pixels, maps, np.abs(maps).max())
    with pytest.raises(UsageError, match="grouped.*not an RGB image") as error:
        draw(module, mode="rgb")
    assert "--mode mean" in (error.value.hint or "")


def test_depthwise_conv_draws_each_filter_on_one_scale():
    module = nn.Conv2d(4, 4, 3, groups=4)
    generator = torch.Generator().manual_seed(3)
    weight = torch.randn(4, 1, 3, 3, generator=generator)
    weight[2] *= 0.2  # a weak filter stays pale: the scale is the layer's, not the filter's
    set_weight(module, weight)
    (image,), row = draw(module)
    assert (row.mode, row.filters_shown) == ("mean", 4)
    maps = weight.double()[:, 0].numpy()
    assert_signed_cells(image.pixels, maps, np.abs(maps).max())


# ------------------------------------------------------------------------- one channel, maps


def test_one_channel_conv_cells_follow_the_signed_colormap():
    module = nn.Conv2d(1, 4, 5)
    generator = torch.Generator().manual_seed(4)
    weight = torch.randn(4, 1, 5, 5, generator=generator)
    weight[3] *= 0.25
    set_weight(module, weight)
    (image,), row = draw(module)
    assert (row.mode, row.filters_shown, row.images) == ("mean", 4, 1)
    maps = weight.double()[:, 0].numpy()
    bound = np.abs(maps).max()
    assert_signed_cells(image.pixels, maps, bound)
    # the largest magnitude is the map's end colour, pure red or pure blue
    index = np.unravel_index(np.abs(maps).argmax(), maps.shape)
    cell = grid_cells(image.pixels, 4, 15, 15)[index[0]]
    end = (255, 0, 0) if maps[index] > 0 else (0, 0, 255)
    assert tuple(cell[index[1] * 3, index[2] * 3]) == end


def test_signed_weights_zero_is_white_positive_red_negative_blue():
    values = torch.tensor([[-1.0, -0.75, -0.5], [-0.25, 0.0, 0.25], [0.5, 0.75, 1.0]])
    module = set_weight(nn.Conv2d(1, 1, 3), values.view(1, 1, 3, 3))
    (image,), _ = draw(module)
    pixels = image.pixels
    assert pixels.shape == (12, 12, 3)  # one cell: no padding
    taps = pixels[::4, ::4].astype(int)  # one pixel per tap
    # matplotlib's bwr (or the README's definition) at value / (2 max|w|) + 1/2
    expected = signed_colours(values.double().numpy(), 1.0)
    assert np.abs(taps - expected).max() <= 1
    assert tuple(taps[0, 0]) == (0, 0, 255) and tuple(taps[2, 2]) == (255, 0, 0)
    assert taps[1, 1].min() >= 250  # zero: white
    assert taps[2, 0, 0] == 255 and taps[2, 0, 2] < 160  # +0.5: red, half saturated
    assert taps[0, 2, 2] == 255 and taps[0, 2, 0] < 160  # -0.5: blue, half saturated


# --------------------------------------------------------------------------------- modes


def test_filters_mode_draws_each_filter_with_its_channels_as_cells():
    module = nn.Conv2d(2, 3, 3)
    generator = torch.Generator().manual_seed(5)
    weight = torch.randn(3, 2, 3, 3, generator=generator)
    weight[1:] *= 0.3  # one layer-wide scale: these stay paler than filter 0
    set_weight(module, weight)
    images, row = draw(module, mode="filters")
    assert (row.mode, row.filters_shown, row.images) == ("filters", 3, 3)
    assert [image.tag for image in images] == [f"kernels/layer/filter_{i}" for i in range(3)]
    values = weight.double().numpy()
    bound = np.abs(values).max()
    for filt, image in zip(values, images, strict=True):
        assert_signed_cells(image.pixels, filt, bound)


def test_rgb_mode_scales_each_filter_over_its_own_three_channels():
    module = nn.Conv2d(3, 2, 3)
    generator = torch.Generator().manual_seed(6)
    weight = torch.randn(2, 3, 3, 3, generator=generator)
    weight[1] = 5 + 0.01 * weight[1]  # far from filter 0's range: needs its own min-max
    set_weight(module, weight)
    for mode in ("auto", "rgb"):
        (image,), row = draw(module, mode=mode)
        assert row.mode == "rgb"
        filters = weight.double().numpy()
        cells = grid_cells(image.pixels, 2, 12, 12)
        for cell, filt in zip(cells, filters, strict=True):
            channel, y, x = np.unravel_index(filt.argmax(), filt.shape)
            assert (cell[4 * y : 4 * y + 4, 4 * x : 4 * x + 4, channel] == 255).all()
            channel, y, x = np.unravel_index(filt.argmin(), filt.shape)
            assert (cell[4 * y : 4 * y + 4, 4 * x : 4 * x + 4, channel] == 0).all()
            scaled = (filt - filt.min()) / (filt.max() - filt.min())
            expected = upscale(np.rint(scaled.transpose(1, 2, 0) * 255), 4)
            assert np.abs(cell.astype(int) - expected).max() <= 1


def test_rgb_mode_on_a_non_rgb_layer_is_a_usage_error(cli, tmp_path):
    factory = tmp_path / "two_channels.py"
    factory.write_text(
        "from torch import nn\n\n"
        "def build():\n"
        "    return nn.Sequential(nn.Conv2d(3, 3, 3), nn.Conv2d(3, 2, 3), nn.Conv2d(2, 4, 3))\n"
    )
    out = tmp_path / "out"
    result = cli("kernels", f"{factory}:build", "--mode", "rgb", "--out", str(out))
    assert result.code == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors and "'2'" in errors[0] and "2 input channels" in errors[0]
    assert "rgb needs 3" in errors[0] and "--mode mean" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists() or not list(out.iterdir())  # nothing half-written


def test_filters_mode_through_the_cli_writes_one_png_per_filter(cli, tmp_path):
    factory = tmp_path / "depth.py"
    factory.write_text(
        "import torch\nfrom torch import nn\n\n"
        "def build():\n"
        "    conv = nn.Conv2d(2, 3, 5)\n"
        "    with torch.no_grad():\n"
        "        conv.weight.copy_(torch.randn(3, 2, 5, 5, generator=torch.Generator()"
        ".manual_seed(8)))\n"
        "    return nn.Sequential(conv)\n"
    )
    out = tmp_path / "out"
    args = ["kernels", f"{factory}:build", "--mode", "filters", "--cell-size", str(CELL)]
    result = cli(*args, "--out", str(out), "--run", "r")
    assert result.code == 0, result.stderr
    names = sorted(p.name for p in (out / "r").glob("*.png"))
    assert names == [f"kernels__0__filter_{i}.png" for i in range(3)]
    weight = torch.randn(3, 2, 5, 5, generator=torch.Generator().manual_seed(8)).double().numpy()
    bound = np.abs(weight).max()
    for index, name in enumerate(names):
        with Image.open(out / "r" / name) as image:
            assert image.mode == "RGB"
            assert_signed_cells(np.asarray(image), weight[index], bound)


def test_one_by_k_kernels_in_mean_mode():
    """Inception's 1 x 7 convolutions: each filter one row of cells."""
    module = set_weight(nn.Conv2d(4, 2, (1, 3), bias=False), torch.ones(2, 4, 1, 3))
    with torch.no_grad():
        module.weight[1] = -1.0
    (image,), row = draw(module)
    assert row.mode == "mean"
    cells = grid_cells(image.pixels, 2, 4, 12)  # 1 x 3 upscaled x4
    assert (cells[0] == (255, 0, 0)).all() and (cells[1] == (0, 0, 255)).all()


def test_filters_mode_of_a_one_dimensional_conv_draws_one_map_per_filter():
    weight = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4) - 12
    module = set_weight(nn.Conv1d(3, 2, 4, bias=False), weight)
    images, row = draw(module, mode="filters")
    assert (row.mode, row.images) == ("filters", 2)
    times = factor(4)
    for index, image in enumerate(images):
        assert image.tag == f"kernels/layer/filter_{index}"
        assert image.pixels.shape[:2] == (3 * times, 4 * times)  # one cell: in x kernel
        expected = upscale(signed_colours(weight[index].numpy(), 12.0), times)
        assert np.abs(image.pixels.astype(float) - expected).max() <= 3


def test_layers_without_kernels_and_meta_weights_are_refused():
    with pytest.raises(UsageError, match=r"layer 'layer' \(ReLU\) has no convolution kernel"):
        draw(nn.ReLU())
    with pytest.raises(UsageError, match=r"layer 'layer' \(Linear\) has no convolution kernel"):
        draw(nn.Linear(3, 3))
    with torch.device("meta"):
        meta = nn.Conv2d(3, 2, 3)
    with pytest.raises(UsageError) as error:
        draw(meta)
    assert str(error.value) == "kernels need real weights; the model was built on the meta device"


class _OwnConv(nn.Module):
    """A user's convolution-like module with a 4-D weight and no ``groups`` attribute."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)


class _OwnTranspose(_OwnConv):
    """The same, laid out as a transposed conv (in, out, kH, kW)."""


def test_modules_without_a_groups_attribute_count_as_ungrouped():
    rgb = torch.zeros(2, 3, 3, 3)
    rgb[0, 0] = 1.0  # a red filter
    (image,), row = draw(_OwnConv(rgb))
    assert row.mode == "rgb"
    transposed = torch.zeros(3, 2, 3, 3)  # 3 inputs, 2 outputs: two RGB filters
    transposed[1, 0] = 1.0  # output 0 is green
    (image,), row = draw(_OwnTranspose(transposed))
    assert (row.mode, row.filters_shown) == ("rgb", 2)
    cells = grid_cells(image.pixels, 2, 12, 12)
    assert (cells[0] == (0, 255, 0)).all()


def test_refusal_hints():
    module = nn.Conv2d(6, 4, 3, groups=2)
    with pytest.raises(UsageError) as error:
        draw(module, mode="rgb")
    assert error.value.args[0] == (
        "layer 'layer' is grouped (groups=2): each filter sees 3 channels of its group, "
        "not an RGB image"
    )
    assert error.value.hint == "use --mode mean or filters"
