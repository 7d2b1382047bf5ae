"""Your own model: --mean/--std/--size/--crop/--no-normalize/--labels, declared cfgs, weights."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision.transforms.functional as F
from PIL import Image

from tests.conftest import SAMPLES, TINY
from tests.tiny_models import InputProbe
from vizcli.cli.groups import ImageOptions
from vizcli.errors import UsageError
from vizcli.images import load_image, load_tensor
from vizcli.labels import load_labels
from vizcli.models import resolve_model

COFFEE = SAMPLES / "coffee.png"  # 600 x 400: resize and crop positions matter


def reference(path, resize, crop, mean, std, interpolation=F.InterpolationMode.BILINEAR):
    image = load_image(path)
    if resize is None:
        image = F.resize(image, [crop, crop], interpolation=interpolation)
    else:
        image = F.resize(image, [resize], interpolation=interpolation)
    tensor = F.to_tensor(F.center_crop(image, [crop, crop]))
    return F.normalize(tensor, mean, std)


def test_declared_cfg_sets_preprocessing_and_labels():
    loaded = resolve_model(f"{TINY}:declared", weights="auto", device="cpu")
    assert loaded.preprocess.crop == (96, 96) and loaded.preprocess.resize == 128
    assert loaded.categories == ["alpha", "beta", "gamma", "delta"]
    expected = reference(COFFEE, 128, 96, [0.0] * 3, [1.0] * 3, F.InterpolationMode.BICUBIC)
    torch.testing.assert_close(load_tensor(COFFEE, loaded.preprocess)[0], expected)


@pytest.mark.parametrize(
    ("options", "resize", "crop", "mean", "std"),
    [
        (ImageOptions(), 256, 224, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        (ImageOptions(size=160), 183, 160, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        (ImageOptions(crop="1.0"), 224, 224, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        (ImageOptions(crop="squash"), None, 224, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        (ImageOptions(mean="0.5", std="0.25"), 256, 224, [0.5] * 3, [0.25] * 3),
        (ImageOptions(mean="0.1,0.2,0.3", std="1,2,3"), 256, 224, [0.1, 0.2, 0.3], [1, 2, 3]),
        (ImageOptions(normalize=False), 256, 224, [0.0] * 3, [1.0] * 3),
        (ImageOptions(size=64, crop="0.5", normalize=False), 128, 64, [0.0] * 3, [1.0] * 3),
    ],
)
def test_options_give_exactly_the_described_tensor(options, resize, crop, mean, std):
    loaded = resolve_model(f"{TINY}:TinyNet", device="cpu")
    options.apply(loaded)
    expected = reference(COFFEE, resize, crop, mean, std)
    torch.testing.assert_close(load_tensor(COFFEE, loaded.preprocess)[0], expected)


@pytest.mark.parametrize(
    ("options", "text"),
    [
        ({"mean": "1,2"}, "1 or 3 numbers"),
        ({"std": "0"}, "> 0"),
        ({"std": "nan"}, "finite"),
        ({"mean": "red"}, "numbers"),
        ({"crop": "1.5"}, "fraction"),
        ({"crop": "nan"}, "fraction"),
        ({"mean": "0.5", "normalize": False}, "cannot be combined"),
        ({"labels": "no/such/labels.txt"}, "labels file not found"),
    ],
)
def test_bad_options_are_usage_errors(options, text):
    loaded = resolve_model(f"{TINY}:TinyNet", device="cpu")
    with pytest.raises(UsageError, match=text):
        ImageOptions(**options).apply(loaded)


def test_labels_files_and_named_lists(tmp_path):
    (tmp_path / "names.txt").write_text("cat\ndog\n\n")
    (tmp_path / "list.json").write_text(json.dumps(["a", "b"]))
    (tmp_path / "map.json").write_text(json.dumps({"1": "one", "0": "zero"}))
    (tmp_path / "gap.json").write_text(json.dumps({"0": "zero", "2": "two"}))
    assert load_labels(str(tmp_path / "names.txt")) == ["cat", "dog"]
    assert load_labels(str(tmp_path / "list.json")) == ["a", "b"]
    assert load_labels(str(tmp_path / "map.json")) == ["zero", "one"]
    with pytest.raises(UsageError, match="indices"):
        load_labels(str(tmp_path / "gap.json"))
    imagenet = load_labels("imagenet")
    assert len(imagenet) == 1000 and imagenet[281] == "tabby"


def test_no_normalize_feeds_raw_pixels_through_the_cli(cli, tmp_path):
    """A model trained on raw [0, 1] pixels gets them: its input layer sees exactly [0, 1]."""
    white = tmp_path / "white.png"
    Image.new("RGB", (50, 40), (255, 255, 255)).save(white)
    raw = cli("stats", f"{TINY}:InputProbe", str(white), "--layer", "input",
              "--no-normalize", "-f", "json", "--logdir", str(tmp_path / "runs"))  # fmt: skip
    assert raw.code == 0, raw.stderr
    row = json.loads(raw.stdout)["layers"][0]["activations"]
    assert row["min"] == row["max"] == 1.0
    normalized = cli("stats", f"{TINY}:InputProbe", str(white), "--layer", "input",
                     "--mean", "0.5", "--std", "0.25", "-f", "json",
                     "--logdir", str(tmp_path / "runs"))  # fmt: skip
    assert json.loads(normalized.stdout)["layers"][0]["activations"]["max"] == pytest.approx(2.0)


def test_labels_reach_the_cam_predictions(cli, tmp_path):
    (tmp_path / "names.txt").write_text("north\nsouth\neast\nwest\n")
    result = cli("cam", f"{TINY}:TinyNet", str(COFFEE), "--labels", str(tmp_path / "names.txt"),
                 "--target", "east", "--size", "64", "--out", str(tmp_path / "out"))  # fmt: skip
    assert result.code == 0, result.stderr
    assert "east" in result.stdout and "class 2" not in result.stdout


def test_a_factory_that_loads_its_weights_keeps_them(cli, tmp_path, monkeypatch):
    torch.manual_seed(5)
    reference_model = InputProbe()
    checkpoint = tmp_path / "probe.pth"
    torch.save(reference_model.state_dict(), checkpoint)
    monkeypatch.setenv("VIZCLI_TEST_CHECKPOINT", str(checkpoint))
    loaded = resolve_model(f"{TINY}:self_loading", weights="auto", device="cpu")
    assert loaded.weights.kind == "factory" and loaded.weights.warning is None
    assert torch.equal(loaded.model.net.fc.weight, reference_model.net.fc.weight)
    result = cli("fmaps", f"{TINY}:self_loading", str(COFFEE), "--size", "32",
                 "--out", str(tmp_path / "out"))  # fmt: skip
    assert result.code == 0, result.stderr
    assert "as built by the factory" in result.stderr
    assert "random init" not in result.stderr and "RANDOM" not in result.stderr
    plain = cli("fmaps", f"{TINY}:TinyNet", str(COFFEE), "--size", "32",
                "--out", str(tmp_path / "out"))  # fmt: skip
    assert "loaded no weights that vizcli saw" in plain.stderr


def test_safetensors_checkpoints_load_like_pth(tmp_path):
    from safetensors.torch import save_file
    from torchvision.models import squeezenet1_1

    torch.manual_seed(11)
    state = squeezenet1_1().state_dict()
    save_file(state, str(tmp_path / "squeeze.safetensors"))
    loaded = resolve_model("squeezenet1_1", weights=str(tmp_path / "squeeze.safetensors"))
    assert loaded.weights.kind == "checkpoint"
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value.cpu(), state[key]), key
    torch.manual_seed(12)
    probe = InputProbe().state_dict()
    save_file(probe, str(tmp_path / "probe.safetensors"))
    factory = resolve_model(f"{TINY}:InputProbe", weights=str(tmp_path / "probe.safetensors"))
    assert torch.equal(factory.model.net.fc.bias.cpu(), probe["net.fc.bias"])
    (tmp_path / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{oops")
    from vizcli.errors import WeightsError

    with pytest.raises(WeightsError, match="not a valid safetensors"):
        resolve_model("squeezenet1_1", weights=str(tmp_path / "broken.safetensors"))
