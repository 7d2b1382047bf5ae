"""Pixels of feature-map grids: scaling modes with numbers worked out here, colormaps against
matplotlib's published tables, make_grid's tiling, and fmaps' choices (channels shown, layers
that are not image-like, the input picture)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from tests import tiny_models
from tests.checks import grid_shape
from vizcli.draw import colormaps, grids


def test_scaling_modes_by_hand():
    maps = torch.tensor([[[0.0, 2.0], [4.0, 8.0]], [[-1.0, -1.0], [-1.0, 3.0]]])
    each = grids.normalize(maps, "each")
    torch.testing.assert_close(each[0], torch.tensor([[0.0, 0.25], [0.5, 1.0]]))
    torch.testing.assert_close(each[1], torch.tensor([[0.0, 0.0], [0.0, 1.0]]))
    glob = grids.normalize(maps, "global")  # one range, -1 .. 8
    torch.testing.assert_close(glob[0], (maps[0] + 1) / 9)
    symmetric = grids.normalize(maps, "symmetric")  # 0 -> 0.5, +-8 -> 1 / 0
    torch.testing.assert_close(symmetric, maps / 16 + 0.5)
    bounded = grids.normalize(maps, "symmetric", bound=2.0)  # clipped beyond the bound
    assert bounded[0, 1, 1] == 1.0 and bounded[1, 0, 0] == 0.25
    flat = grids.normalize(torch.full((2, 3, 3), 5.0), "each")  # constant: zeros, no NaN
    assert torch.equal(flat, torch.zeros(2, 3, 3))
    assert torch.equal(
        grids.normalize(torch.zeros(1, 2, 2), "symmetric"), torch.full((1, 2, 2), 0.5)
    )


@pytest.mark.parametrize(
    ("height", "width", "cell", "factor"),
    [(7, 7, 32, 5), (3, 5, 12, 3), (40, 40, 32, 1), (1, 1, 1, 1), (0, 0, 8, 8), (2, 9, 10, 2)],
)
def test_upscale_factor(height, width, cell, factor):
    assert grids.upscale_factor(height, width, cell) == factor


@pytest.mark.parametrize("name", ["viridis", "inferno", "jet", "gray", "bwr"])
def test_colormaps_match_matplotlib(name):
    import matplotlib

    reference = matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255
    ours = colormaps.lookup_table(name).astype(float)
    assert ours.shape == (256, 3)
    assert np.abs(ours - reference).max() <= 0.5 + 1e-6  # the same colours, rounded


def test_colormap_lookup_and_application():
    values = torch.tensor([[[0.0, 0.5], [1.0, 2.0]]])  # 2.0 clipped to 1
    rgb = colormaps.apply(values, "gray")
    assert rgb.shape == (1, 3, 2, 2)
    torch.testing.assert_close(rgb[0, :, 0, 1], torch.full((3,), 128 / 255))  # 0.5 -> 128
    assert torch.equal(rgb[0, :, 1, 0], rgb[0, :, 1, 1]) and rgb[0, 0, 1, 1] == 1.0
    from vizcli.errors import UsageError

    with pytest.raises(UsageError, match="unknown colormap 'viridiss'") as error:
        colormaps.lookup_table("viridiss")
    assert "viridis" in error.value.hint


def test_tiles_follow_make_grids_layout_and_padding():
    cells = torch.zeros(5, 3, 2, 2)
    cells[:, 0] = torch.arange(5.0).view(5, 1, 1) / 4  # red channel: the cell's index / 4
    image = grids.tile(cells, padding=1, pad_value=0.5)
    assert image.shape == (*grid_shape(5, 2, 2, padding=1), 3) == (7, 10, 3)
    for index in range(5):
        row, col = divmod(index, 3)  # ceil(sqrt(5)) = 3 columns
        top, left = 1 + row * 3, 1 + col * 3
        assert (image[top : top + 2, left : left + 2, 0] == round(255 * index / 4)).all()
    assert image[0, 0, 0] == 128 and image[4, 7, 1] == 128  # padding; the empty sixth cell
    big = grids.tile(cells[:1], upscale=3)
    assert big.shape == (6, 6, 3)  # one cell: no padding
    grey_pad = grids.map_grid(torch.randn(4, 3, 3), "bwr")
    white_pad = grids.map_grid(torch.randn(4, 3, 3), "viridis")
    assert tuple(grey_pad[0, 0]) == (89, 89, 89) and tuple(white_pad[0, 0]) == (255, 255, 255)
    assert grids.map_grid(torch.randn(4, 3, 3), cell_size=12).shape[:2] == grid_shape(4, 12, 12)


class _Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 70, 3, padding=1)
        self.row = nn.AdaptiveAvgPool2d((1, 8))  # one row: not image-like
        self.head = nn.Linear(70 * 8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.row(self.conv(x)).flatten(1))


def _loaded(model, size=8):
    return tiny_models.loaded(model, size)


def _photo(tmp_path, name="p.png", seed=0):
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / name)
    return tmp_path / name, pixels


def test_feature_maps_choices(tmp_path):
    from vizcli.errors import UsageError
    from vizcli.fmaps import FmapOptions, feature_maps

    torch.manual_seed(0)
    model = _Mixed()
    path, pixels = _photo(tmp_path)
    layers = {"conv": model.conv, "row": model.row, "head": model.head}
    emitted = []
    report = feature_maps(
        _loaded(model), [path], layers, FmapOptions(max_channels=9), emitted.append, strict=False
    )
    assert [(r.name, r.channels_shown, r.grid, r.note) for r in report] == [
        ("conv", 9, grid_shape(9, 8, 8), ""),
        ("row", 0, None, "not image-like; skipped"),
        ("head", 0, None, "not image-like; skipped"),
    ]
    assert report[0].shape == [1, 70, 8, 8] and report[0].image == "p"
    tags = [(a.tag, a.step, a.label) for a in emitted]
    assert tags == [("input", 0, "p"), ("fmaps/conv", 0, "p")]
    assert np.array_equal(emitted[0].pixels, pixels)  # denormalised back to the photo
    with pytest.raises(UsageError, match="layer 'row' outputs \\(1, 70, 1, 8\\), not an image"):
        feature_maps(_loaded(model), [path], {"row": model.row}, FmapOptions(), lambda a: None)


def test_feature_maps_of_several_images_step_by_step(tmp_path):
    from vizcli.fmaps import FmapOptions, feature_maps

    torch.manual_seed(0)
    model = _Mixed()
    first, _ = _photo(tmp_path, "a.png", 1)
    (tmp_path / "b").mkdir()
    second, _ = _photo(tmp_path / "b", "a.png", 2)
    emitted = []
    report = feature_maps(
        _loaded(model), [first, second], {"conv": model.conv}, FmapOptions(), emitted.append
    )
    assert [r.channels_shown for r in report] == [64, 64]  # the default limit
    labels = [(a.tag, a.step, a.label) for a in emitted]
    first_label = f"{tmp_path.name}/a"  # same file name, two folders: the folder tells
    assert labels == [
        ("input", 0, first_label),
        ("fmaps/conv", 0, first_label),
        ("input", 1, "b/a"),
        ("fmaps/conv", 1, "b/a"),
    ]
    assert labels[0][2] != labels[2][2]  # same file name, two folders: two labels
    assert not np.array_equal(emitted[1].pixels, emitted[3].pixels)


def test_scaling_edges():
    small = torch.tensor([[[0.1, -0.05]]])  # symmetric with no bound: the largest |x| is 0.1
    torch.testing.assert_close(grids.normalize(small, "symmetric"), torch.tensor([[[1.0, 0.25]]]))
    beyond = grids.normalize(torch.tensor([[[-1.0, 1.0]]]), "symmetric", bound=0.5)
    assert beyond.tolist() == [[[0.0, 1.0]]]  # clipped at both ends
    rgb = colormaps.apply(torch.tensor([[[-1.0]]]), "gray")
    assert rgb.flatten().tolist() == [0.0, 0.0, 0.0]  # below 0: the first colour
    assert grid_shape(1, 5, 7) == (5, 7) and grid_shape(2, 5, 7) == (9, 20)
    maps = torch.randn(3, 4, 9)  # non-square maps, upscaled to the cell size on the long side
    assert grids.map_grid(maps, cell_size=18).shape[:2] == grid_shape(3, 8, 18)
    assert grids.map_grid(maps, padding=0).shape[:2] == (8, 18)
    each = grids.map_grid(maps, "gray", padding=0)  # the default scaling: each map its own
    assert np.array_equal(each, grids.map_grid(maps, "gray", "each", padding=0))
    assert not np.array_equal(each, grids.map_grid(maps, "gray", "global", padding=0))


class _Shapes(nn.Module):
    """Outputs that test how fmaps reads layouts: an upsampling, a 2x2 pool, channels-last
    maps, and a window partition (another batch size)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.up = nn.ConvTranspose2d(4, 2, 2, stride=2)  # 16 x 16 from 8 x 8: no stride fits
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.last = nn.Identity()
        self.windows = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        self.up(y)
        self.last(y.permute(0, 2, 3, 1).repeat(1, 1, 1, 4))  # 1 x 8 x 8 x 16
        self.windows(y.reshape(4, 4, 4, 4))  # four 4 x 4 windows
        return self.pool(y).flatten(1)


def test_feature_maps_read_each_layout(tmp_path):
    from vizcli.fmaps import FmapOptions, feature_maps
    from vizcli.images import Preprocess

    torch.manual_seed(0)
    model = _Shapes()
    path, pixels = _photo(tmp_path)
    loaded = _loaded(model)
    loaded.preprocess = Preprocess(None, (8, 8), (0.5,), (0.25,), channels=1)  # grey model
    layers = {n: getattr(model, n) for n in ("up", "pool", "last", "windows")}
    emitted, ticks = [], []
    report = feature_maps(
        loaded, [path, path], layers, FmapOptions(cell_size=16), emitted.append, False, ticks.append
    )
    rows = {(r.name, r.image): r for r in report}
    label = report[0].image
    assert rows[("up", label)].grid == grid_shape(2, 16, 16)  # read as it is (loose)
    assert rows[("pool", label)].grid == grid_shape(4, 16, 16)  # 2 x 2 maps are drawn
    assert rows[("last", label)].channels_shown == 16  # channels-last: 16 maps of 8 x 8
    assert rows[("last", label)].grid == grid_shape(16, 16, 16)
    windows = rows[("windows", label)]
    assert (windows.channels_shown, windows.grid, windows.shape) == (0, None, [4, 4, 4, 4])
    assert windows.note == "not image-like; skipped"
    assert ticks == [1, 1]  # one tick per image
    grey = np.asarray(Image.fromarray(pixels).convert("L"))
    assert np.array_equal(emitted[0].pixels, np.stack([grey] * 3, axis=-1))  # grey, as RGB
    from vizcli.errors import UsageError

    with pytest.raises(UsageError) as error:
        feature_maps(loaded, [path], {"windows": model.windows}, FmapOptions(), lambda a: None)
    assert error.value.hint == "pick a convolutional layer; see 'vizcli layers MODEL'"


def test_small_spans_and_out_of_range_cells():
    narrow = grids.normalize(torch.tensor([[[0.0, 0.25, 0.5]]]), "each")  # span 0.5
    torch.testing.assert_close(narrow, torch.tensor([[[0.0, 0.5, 1.0]]]))
    cells = torch.tensor([-0.5, 1.5, 0.5]).view(3, 1, 1, 1).expand(3, 3, 1, 1)
    tiled = grids.tile(cells.contiguous(), nrow=3, padding=0)
    assert tiled[0, :, 0].tolist() == [0, 255, 128]  # clipped at both ends, never wrapped
    assert grids.upscale_factor(9, 2, 18) == 2  # the longer side decides, whichever it is


def test_feature_maps_of_a_model_without_parameters(tmp_path):
    from vizcli.fmaps import FmapOptions, feature_maps

    model = nn.Sequential(nn.AvgPool2d(2))
    path, _ = _photo(tmp_path)
    emitted = []
    report = feature_maps(_loaded(model), [path], {"0": model[0]}, FmapOptions(), emitted.append)
    assert [(r.name, r.channels_shown, r.shape) for r in report] == [("0", 3, [1, 3, 4, 4])]


def test_tall_maps_are_upscaled_by_their_height():
    maps = torch.randn(2, 9, 4)  # taller than wide: the height reaches the cell size
    assert grids.map_grid(maps, cell_size=18, padding=0).shape[:2] == (18, 16)
