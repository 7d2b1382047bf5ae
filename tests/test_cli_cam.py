"""`vizcli cam` from the command line: pictures, predictions, .npy maps and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.checks import has_hooks
from tests.conftest import SAMPLES
from tests.tb import read_events
from tests.tiny_models import CREATED

CHELSEA = str(SAMPLES / "chelsea.png")
CAMERA = str(SAMPLES / "camera.png")


def test_cam_writes_overlay_map_panel_and_npy(cli, tmp_path):
    result = cli(
        "cam",
        "resnet18",
        CHELSEA,
        CAMERA,
        "--size",
        "128",
        "--npy",
        "--target",
        "tabby",
        "--out",
        str(tmp_path / "png"),
        "--logdir",
        str(tmp_path / "tb"),
    )
    assert result.code == 0, result.stderr
    assert "Grad-CAM on layer layer4 (chosen automatically" in result.stderr
    assert "tabby" in result.stdout and "RANDOM weights" in result.stderr
    folder = tmp_path / "png" / "cam-resnet18"
    names = sorted(p.name for p in folder.iterdir())
    assert "chelsea__tabby__cam__gradcam__class281__overlay.png" in names
    with Image.open(folder / "chelsea__tabby__cam__gradcam__class281__overlay.png") as im:
        assert im.size == Image.open(CHELSEA).size  # the photo's own frame (--frame original)
    with Image.open(folder / "camera__tabby__cam__gradcam__class281__panel.png") as im:
        width, height = Image.open(CAMERA).size
        assert im.size == (3 * width + 2 * 4, height + 18)
    raw = np.load(folder / "chelsea__tabby__gradcam.npy")
    assert raw.shape == (4, 4) and raw.min() >= 0 and raw.max() <= 1
    events = read_events(tmp_path / "tb" / "cam-resnet18")
    assert {
        "cam/gradcam/class281/overlay",
        "cam/gradcam/class281/map",
        "cam/gradcam/class281/panel",
    } <= set(events.Tags()["images"])
    assert [e.step for e in events.Images("cam/gradcam/class281/overlay")] == [0, 1]


def test_cam_topk_and_methods(cli, tmp_path):
    for method in ("gradcam++", "eigencam", "smoothgrad"):
        result = cli(
            "cam",
            "resnet18",
            CHELSEA,
            "--method",
            method,
            "--topk",
            "2",
            "--size",
            "64",
            "--out",
            str(tmp_path),
            "--run",
            method.replace("+", "p"),
        )
        assert result.code == 0, result.stderr
        files = [p.name for p in (tmp_path / method.replace("+", "p")).glob("*overlay.png")]
        assert len(files) == 2


def test_cam_metrics_and_sanity_tables(cli, tmp_path):
    result = cli(
        "cam",
        "resnet18",
        CHELSEA,
        "--size",
        "64",
        "--metrics",
        "--sanity",
        "--logdir",
        str(tmp_path),
    )
    assert result.code == 0, result.stderr
    assert "Deletion AUC" in result.stdout and "Spearman" in result.stdout
    assert "sanity:" in result.stderr


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--method", "gradcan"], "did you mean 'gradcam'"),
        (["--target", "1000"], "class index 1000 is out of range"),
        (["--target", "unicorn"], "unknown class 'unicorn'"),
        (["--layer", "fc"], "not an image-like tensor"),
        (["--layer", "layer5"], "did you mean 'layer4'"),
        (["--layer", "layer4.*"], "--layer 'layer4.*' matches 15 layers (layer4.0, layer4.0.conv1"),
        (["--colormap", "plasma2"], "unknown colormap"),
        (["--frame", "photo"], "--frame must be original or input, got 'photo'"),
    ],
)
def test_cam_errors(cli, tmp_path, args, text):
    result = cli("cam", "resnet18", CHELSEA, "--size", "64", *args, "--out", str(tmp_path))
    assert result.code == 2, result.stderr
    assert text in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args", [["--method", "gradcan"], ["--frame", "photo"], ["--colormap", "plasma2"]]
)
def test_bad_options_are_refused_before_images_or_the_model(cli, tmp_path, args):
    CREATED.clear()
    result = cli("cam", "tests.tiny_models:tracked", "missing.png", *args, "--out", str(tmp_path))
    assert result.code == 2 and "image not found" not in result.stderr, result.stderr
    assert CREATED == []


def test_cam_leaves_the_model_clean(cli, tmp_path):
    CREATED.clear()
    result = cli(
        "cam", "tests.tiny_models:tracked", CHELSEA, "--size", "32", "--logdir", str(tmp_path)
    )
    assert result.code == 0, result.stderr
    failing = cli(
        "cam", "tests.tiny_models:tracked", CHELSEA, "--layer", "fc", "--logdir", str(tmp_path)
    )
    assert failing.code == 2
    assert len(CREATED) == 2 and not any(has_hooks(m) for m in CREATED)
    assert all(p.grad is None for m in CREATED for p in m.parameters())


def test_names_stay_readable_and_distinct(cli, tmp_path):
    from tests.conftest import TINY

    result = cli("cam", f"{TINY}:TinyNet", CHELSEA, "--method", "gradcam++", "--target", "1",
                 "--target", "3", "--size", "32", "--out", str(tmp_path))  # fmt: skip
    assert result.code == 0, result.stderr
    names = {p.name for p in (tmp_path / "cam-TinyNet").glob("*.png")}
    assert "chelsea__class_1__cam__gradcampp__class1__overlay.png" in names
    assert "chelsea__class_3__cam__gradcampp__class3__overlay.png" in names
    assert not [n for n in names if "top1" in n or "gradcam_" in n]


def test_constant_maps_are_announced(cli, tmp_path):
    from tests.conftest import TINY

    result = cli("cam", f"{TINY}:zero_head", CHELSEA, "--size", "32", "--out", str(tmp_path))
    assert result.code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    warnings = [line for line in warnings if "constant" in line]
    assert len(warnings) == 1 and "1 of 1 Grad-CAM maps are constant" in warnings[0]
    assert "zero-initialised head" in warnings[0]
    fine = cli("cam", f"{TINY}:TinyNet", CHELSEA, "--size", "32", "--out", str(tmp_path))
    assert "maps are constant" not in fine.stderr


def test_pictures_in_the_photos_frame_or_the_models_input(cli, tmp_path):
    """coffee.png is 600x400: resize to 384x256, centre-crop 224, so the model saw the box
    (125, 25)-(475, 375) of the photo; everything outside it is greyed in the pictures."""
    import json

    from tests.conftest import SAMPLES, TINY

    coffee = str(SAMPLES / "coffee.png")
    result = cli("cam", f"{TINY}:TinyNet", coffee, "--npy", "--out", str(tmp_path / "o"))
    assert result.code == 0, result.stderr
    folder = tmp_path / "o" / "cam-TinyNet"
    manifest = json.loads((folder / "manifest.json").read_text())
    geometry = manifest["preprocessing"]["coffee"]
    assert geometry["resize"] == [384, 256]
    assert geometry["crop_box"] == [125.0, 25.0, 475.0, 375.0]
    assert manifest["frame"] == "original" and "raw values" in manifest["normalization"]["npy"]
    overlay = np.asarray(Image.open(next(folder.glob("*overlay.png"))))
    photo = np.asarray(Image.open(coffee).convert("RGB"))
    assert overlay.shape == photo.shape
    outside = overlay[200, 50].astype(int)  # left of the crop: greyed towards 110
    expected = (0.35 * photo[200, 50] + 0.65 * 110).astype(int)
    assert np.abs(outside - expected).max() <= 1
    raw = np.load(next(folder.glob("*.npy")))
    assert raw.shape == (112, 112)  # TinyNet's map: half the 224 crop, raw values
    assert not (raw.min() == 0 and raw.max() == 1)
    cropped = cli("cam", f"{TINY}:TinyNet", coffee, "--frame", "input", "--out",
                  str(tmp_path / "i"))  # fmt: skip
    with Image.open(next((tmp_path / "i" / "cam-TinyNet").glob("*overlay.png"))) as im:
        assert im.size == (224, 224) and cropped.code == 0


def test_labels_that_do_not_fit_the_model_are_announced(cli, tmp_path):
    from tests.conftest import TINY

    (tmp_path / "two.txt").write_text("cat\ndog\n")
    result = cli("cam", f"{TINY}:TinyNet", CHELSEA, "--labels", str(tmp_path / "two.txt"),
                 "--size", "32", "--out", str(tmp_path / "o"))  # fmt: skip
    assert result.code == 0, result.stderr
    assert "2 class names for a model with 4 outputs" in result.stderr


def test_cam_takes_a_glob_that_names_one_layer(cli, tmp_path):
    result = cli("cam", "resnet18", CHELSEA, "--size", "64", "--layer", "layer4.?.bn2",
                 "--weights", "none", "--out", str(tmp_path))  # fmt: skip
    assert result.code == 2 and "matches 2 layers (layer4.0.bn2, layer4.1.bn2)" in result.stderr
    result = cli("cam", "resnet18", CHELSEA, "--size", "64", "--layer", "layer3.1.bn*",
                 "--weights", "none", "--out", str(tmp_path))  # fmt: skip
    assert result.code == 2, "two BatchNorms in layer3.1"
    result = cli("cam", "resnet18", CHELSEA, "--size", "64", "--layer", "layer4.1.c*2",
                 "--weights", "none", "--out", str(tmp_path), "--run", "r")  # fmt: skip
    assert result.code == 0, result.stderr
    assert "on layer layer4.1.conv2 (as given)" in result.stderr


def test_the_method_help_lists_the_registry():
    from vizcli.cam import METHODS
    from vizcli.cli.cam_cmd import METHOD_HELP

    listed = [name.strip(" .") for part in METHOD_HELP.split(";") for name in part.split(",")]
    assert sorted(listed) == sorted(METHODS)
