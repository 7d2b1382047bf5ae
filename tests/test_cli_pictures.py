"""kernels, fmaps, hist, stats and layers through the CLI, read back as a user would."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tests.checks import grid_shape, has_hooks
from tests.conftest import SAMPLES
from tests.tb import read_events
from tests.tiny_models import CREATED

CHELSEA = str(SAMPLES / "chelsea.png")
COFFEE = str(SAMPLES / "coffee.png")
TRACKED = "tests.tiny_models:tracked"  # same module object as CREATED below


def test_fmaps_to_png_and_tensorboard(cli, tmp_path):
    result = cli(
        "fmaps",
        "alexnet",
        CHELSEA,
        COFFEE,
        "--out",
        str(tmp_path / "png"),
        "--logdir",
        str(tmp_path / "tb"),
        "--size",
        "112",
        "--max-channels",
        "16",
    )
    assert result.code == 0, result.stderr
    assert "RANDOM weights" in result.stderr and "tensorboard --logdir" in result.stderr
    convs = ["features.0", "features.3", "features.6", "features.8", "features.10"]
    events = read_events(tmp_path / "tb" / "fmaps-alexnet")
    assert sorted(events.Tags()["images"]) == sorted(["input"] + [f"fmaps/{c}" for c in convs])
    conv1 = events.Images("fmaps/features.0")
    assert [e.step for e in conv1] == [0, 1]
    side = (112 + 2 * 2 - 11) // 4 + 1  # alexnet conv1: kernel 11, stride 4, padding 2
    assert (conv1[0].height, conv1[0].width) == grid_shape(16, side, side)
    png = tmp_path / "png" / "fmaps-alexnet"
    with Image.open(png / "coffee__fmaps__features.0.png") as image:
        assert image.size[::-1] == grid_shape(16, side, side)
    manifest = json.loads((png / "manifest.json").read_text())
    assert manifest["weights"]["kind"] == "random"
    assert len([a for a in manifest["artifacts"] if a["kind"] == "image"]) == 2 * 6


def test_kernels_of_chosen_layers(cli, tmp_path):
    result = cli("kernels", "vgg11", "--layer", "features.0,features.3", "--out", str(tmp_path))
    assert result.code == 0, result.stderr
    files = sorted(p.name for p in (tmp_path / "kernels-vgg11").iterdir())
    assert files == ["kernels__features.0.png", "kernels__features.3.png", "manifest.json"]
    with Image.open(tmp_path / "kernels-vgg11" / "kernels__features.0.png") as image:
        assert image.size == grid_shape(64, 33, 33)[::-1]  # 3x3 kernels upscaled x11


def test_hist_histogram_counts_equal_parameter_sizes(cli, tmp_path):
    result = cli("hist", TRACKED, CHELSEA, "--logdir", str(tmp_path), "--format", "json")
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    sizes = {p["name"]: p["weights"]["count"] for p in data["parameters"]}
    events = read_events(tmp_path / "hist-tracked")
    for name, size in sizes.items():
        assert events.Histograms(f"weights/{name}")[0].histogram_value.num == size
        assert events.Histograms(f"grads/{name}")[0].histogram_value.num == size


def test_stats_json_and_scalars(cli, tmp_path):
    result = cli(
        "stats",
        TRACKED,
        CHELSEA,
        COFFEE,
        "--logdir",
        str(tmp_path),
        "-f",
        "json",
        "--type",
        "Conv2d,Linear",
    )
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [row["name"] for row in data["layers"]] == ["features.0", "fc"]
    assert data["layers"][0]["activations"]["count"] == 2 * 8 * 224 * 224
    events = read_events(tmp_path / "stats-tracked")
    assert "stats/fc/output_grad_norm" in events.Tags()["scalars"]


def test_layers_listing(cli):
    result = cli("layers", "resnet18", "--type", "Conv2d", "--format", "json")
    rows = json.loads(result.stdout)
    assert len(rows) == 20 and rows[0] == {
        "name": "conv1",
        "type": "Conv2d",
        "output_shape": [1, 64, 112, 112],
        "params": 9408,
        "is_leaf": True,
    }
    assert "layer4.1.conv2" in cli("layers", "resnet18").stdout
    # --type reads as in every command: any case, comma lists, and base classes take subclasses
    both = json.loads(
        cli("layers", "resnet18", "--type", "conv2d,batchnorm2d", "-f", "json").stdout
    )
    assert len(both) == 40 and {r["type"] for r in both} == {"Conv2d", "BatchNorm2d"}
    based = json.loads(cli("layers", "resnet18", "--type", "_ConvNd", "-f", "json").stdout)
    assert [r["name"] for r in based] == [r["name"] for r in rows]


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["fmaps", TRACKED, CHELSEA, "--layer", "fc"], 2, "not an image-like tensor"),
        (["fmaps", TRACKED, CHELSEA, "--layer", "featurs.0"], 2, "did you mean 'features.0'"),
        (["fmaps", TRACKED, "missing.png"], 2, "image not found"),
        (["fmaps", TRACKED, CHELSEA, "--colormap", "rainbow"], 2, "unknown colormap"),
        (["fmaps", TRACKED, "x.png", "--cell-size", "2000"], 2, "--cell-size would draw pictures"),
        (["kernels", TRACKED, "--layer", "fc"], 2, "no convolution kernel"),
        (["kernels", TRACKED, "--type", "Conv3d"], 2, "no layer of type"),
        (
            ["kernels", "tests.tiny_models:Recurrent"],
            2,
            "tests.tiny_models:Recurrent has no convolution layers ('vizcli hist' shows any",
        ),
        (["kernels", TRACKED, "--colormap", "rainbow"], 2, "unknown colormap"),
        (["kernels", TRACKED, "--cell-size", "2000"], 2, "--cell-size would draw pictures of 256"),
        (["stats", TRACKED, CHELSEA, "--layer", "nope*"], 2, "matches no layer"),
        (["layers", TRACKED, "--type", "Conv9d"], 2, "no layer of type"),
    ],
)
def test_picture_command_errors(cli, tmp_path, args, code, text):
    CREATED.clear()
    result = cli(*args, "--logdir", str(tmp_path)) if args[0] != "layers" else cli(*args)
    assert result.code == code, result.stderr
    assert text in result.stderr and "Traceback" not in result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")]
    if args[0] != "layers":
        assert not [p for p in tmp_path.iterdir()], "a failed run must leave no files"
    assert not any(has_hooks(m) for m in CREATED)


@pytest.mark.parametrize(
    "command", [["kernels"], ["fmaps", CHELSEA], ["hist", CHELSEA], ["stats", CHELSEA]]
)
def test_every_command_leaves_the_model_clean(cli, tmp_path, command):
    CREATED.clear()
    result = cli(command[0], TRACKED, *command[1:], "--logdir", str(tmp_path))
    assert result.code == 0, result.stderr
    (model,) = CREATED
    assert not has_hooks(model)
    assert not model.training  # resolve_model hands out eval-mode models; commands keep it
    assert all(p.requires_grad for p in model.parameters())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.slow
def test_progress_bar_on_a_terminal_only(tmp_path):
    """A pseudo-terminal gets a rich progress bar; a pipe (and --quiet) gets none."""
    import os
    import pty
    import subprocess
    import sys

    from tests.conftest import ROOT

    args = [
        sys.executable,
        "-m",
        "vizcli",
        "fmaps",
        "tests/tiny_models.py:TinyNet",
        str(SAMPLES),
        "--size",
        "32",
    ]
    primary, replica = pty.openpty()
    proc = subprocess.Popen(
        [*args, "--logdir", str(tmp_path / "tty")],
        cwd=ROOT,
        stdin=replica,
        stdout=replica,
        stderr=replica,
        env={**os.environ, "COLUMNS": "100"},
    )
    os.close(replica)
    chunks = []
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(primary)
    assert proc.returncode == 0
    assert b"drawing feature maps" in b"".join(chunks)  # the bar label, only on a terminal
    piped = subprocess.run(
        [*args, "--logdir", str(tmp_path / "pipe")], cwd=ROOT, capture_output=True, text=True
    )
    assert piped.returncode == 0 and "drawing feature maps" not in piped.stderr
