"""Grids, colormaps and sinks: geometry, colours, and files TensorBoard reads back."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tests.checks import grid_shape
from tests.tb import read_events
from vizcli import artifacts
from vizcli.draw import colormaps, grids
from vizcli.errors import UsageError
from vizcli.output import fastcrc
from vizcli.output.sinks import RunInfo, RunOutputs, safe_name


def test_colormap_end_points():
    assert tuple(colormaps.lookup_table("viridis")[0]) == (0x44, 0x01, 0x54)
    assert tuple(colormaps.lookup_table("viridis")[255]) == (0xFD, 0xE7, 0x25)
    bwr = colormaps.lookup_table("bwr")
    assert tuple(bwr[0]) == (0, 0, 255) and tuple(bwr[255]) == (255, 0, 0)
    assert min(bwr[127]) >= 250  # the middle is (nearly) white
    with pytest.raises(UsageError, match="viridis"):
        colormaps.lookup_table("viridiss")


def test_normalize_modes():
    maps = torch.tensor([[[0.0, 2.0]], [[10.0, 30.0]]])
    assert torch.equal(grids.normalize(maps, "each"), torch.tensor([[[0.0, 1.0]], [[0.0, 1.0]]]))
    assert grids.normalize(maps, "global")[1, 0, 1] == 1.0
    signed = grids.normalize(torch.tensor([[[-2.0, 0.0, 1.0]]]), "symmetric")
    assert signed.tolist() == [[[0.0, 0.5, 0.75]]]
    flat = grids.normalize(torch.ones(1, 2, 2), "each")
    assert torch.equal(flat, torch.zeros(1, 2, 2))


@pytest.mark.parametrize(("count", "size"), [(1, 5), (7, 4), (64, 3), (10, 2)])
def test_grid_geometry(count, size):
    pixels = grids.map_grid(torch.randn(count, size, size + 1), "gray")
    assert pixels.dtype == np.uint8 and pixels.shape[2] == 3
    assert pixels.shape[:2] == grid_shape(count, size, size + 1)


def test_gray_grid_pixels_are_the_normalised_values():
    maps = torch.tensor([[[0.0, 1.0], [2.0, 4.0]]])
    pixels = grids.map_grid(maps, "gray", padding=0)
    assert pixels[..., 0].tolist() == [[0, 64], [128, 255]]


@pytest.mark.parametrize("tag", ["../../etc/passwd", "a/b", ".hidden", "x" * 500, "weird name!"])
def test_safe_names_stay_inside_the_folder(tag):
    name = safe_name(tag)
    assert "/" not in name and not name.startswith(".") and ".." not in name and len(name) <= 120


def _info():
    return RunInfo(
        "fmaps", {"name": "tiny", "class": "TinyNet"}, {"kind": "random", "pretrained": False}
    )


def test_both_sinks_write_what_tensorboard_and_pil_read_back(tmp_path):
    assert fastcrc.install()  # the C CRC32C is in use; the reader below verifies every checksum
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)
    with RunOutputs(_info(), out=tmp_path / "png", logdir=tmp_path / "tb") as outputs:
        outputs.write(artifacts.Image("fmaps/conv1", image, 0, "cat"))
        outputs.write(artifacts.Image("fmaps/conv1", image[:10], 1, "dog"))
        outputs.write(artifacts.Histogram("weights/fc", torch.arange(100.0)))
        outputs.write(artifacts.Scalar("stats/fc/mean", 0.25))
    png_dir, tb_dir = tmp_path / "png" / "fmaps-tiny", tmp_path / "tb" / "fmaps-tiny"
    assert {s.kind: s.folder for s in outputs.sinks} == {"png": png_dir, "tensorboard": tb_dir}
    assert sorted(p.name for p in png_dir.iterdir()) == [
        "cat__fmaps__conv1.png",
        "dog__fmaps__conv1.png",
        "manifest.json",
    ]
    assert np.array_equal(np.asarray(Image.open(png_dir / "cat__fmaps__conv1.png")), image)
    events = read_events(tb_dir)
    assert events.Tags()["images"] == ["fmaps/conv1"]
    steps = events.Images("fmaps/conv1")
    assert [(s.step, s.width, s.height) for s in steps] == [(0, 40, 30), (1, 40, 10)]
    assert events.Histograms("weights/fc")[0].histogram_value.num == 100
    assert events.Scalars("stats/fc/mean")[0].value == pytest.approx(0.25)
    assert "vizcli/run/text_summary" in events.Tags()["tensors"]
    manifest = json.loads((tb_dir / "manifest.json").read_text())
    assert manifest["command"] == "fmaps" and len(manifest["artifacts"]) == 5
    assert not list(tmp_path.rglob("*.partial"))


def test_a_second_run_gets_a_new_folder_and_keeps_the_first(tmp_path):
    for _ in range(2):
        with RunOutputs(_info(), out=tmp_path) as outputs:
            outputs.write(artifacts.Image("x", np.zeros((2, 2, 3), np.uint8)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fmaps-tiny", "fmaps-tiny-2"]


def test_a_failed_run_leaves_nothing(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    outputs = RunOutputs(_info(), out=tmp_path, logdir=tmp_path / "tb")
    with pytest.raises(KeyboardInterrupt), outputs:
        outputs.write(artifacts.Image("x", np.zeros((2, 2, 3), np.uint8)))
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]  # tb/ was ours, and empty
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_default_logdir_is_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with RunOutputs(_info()) as outputs:
        pass
    assert outputs.sinks[0].folder.resolve() == tmp_path / "runs" / "fmaps-tiny"


def test_output_path_that_is_a_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        RunOutputs(_info(), out=blocker)
