"""The one image loader: every mode and format Pillow reads, clear errors for the rest."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import SAMPLES
from vizcli.errors import ImageError, UsageError
from vizcli.images import (
    IMAGENET_PREPROCESS,
    Preprocess,
    find_images,
    load_image,
    load_tensor,
    preprocess_from_weights,
)


def _save(image: Image.Image, path, **kwargs):
    image.save(path, **kwargs)
    return path


@pytest.mark.parametrize(
    ("mode", "suffix"),
    [
        ("L", "png"),
        ("LA", "png"),
        ("P", "png"),
        ("RGBA", "png"),
        ("RGB", "bmp"),
        ("RGB", "tiff"),
        ("RGB", "webp"),
        ("CMYK", "jpg"),
        ("1", "png"),
    ],
)
def test_every_mode_becomes_rgb(tmp_path, mode, suffix):
    image = Image.new("RGB", (20, 10), (200, 100, 50)).convert(mode)
    loaded = load_image(_save(image, tmp_path / f"img.{suffix}"))
    assert loaded.mode == "RGB" and loaded.size == (20, 10)


def test_transparent_pixels_show_as_white(tmp_path):
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    image.putpixel((0, 0), (255, 0, 0, 255))
    loaded = np.asarray(load_image(_save(image, tmp_path / "a.png")))
    assert tuple(loaded[0, 0]) == (255, 0, 0)
    assert tuple(loaded[3, 3]) == (255, 255, 255)


def test_sixteen_bit_png_keeps_its_range(tmp_path):
    values = np.array([[0, 32896, 65535]], dtype=np.uint16)
    path = _save(Image.fromarray(values), tmp_path / "deep.png")
    assert Image.open(path).mode.startswith("I")
    loaded = np.asarray(load_image(path))
    assert list(loaded[0, :, 0]) == [0, 128, 255]


def test_animated_gif_gives_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 0, 255)]]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    pixel = load_image(path).getpixel((4, 4))
    assert pixel[0] > 200 and pixel[2] < 50


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = _save(image, tmp_path / "rotated.jpg", exif=exif)
    assert load_image(path).size == (20, 40)


def test_grayscale_mode_for_one_channel_models(tmp_path):
    path = _save(Image.new("RGB", (5, 5), (255, 255, 255)), tmp_path / "w.png")
    assert load_image(path, mode="L").mode == "L"


def test_one_pixel_image_is_upsampled(tmp_path):
    path = _save(Image.new("RGB", (1, 1), (0, 0, 0)), tmp_path / "dot.png")
    assert load_tensor(path, IMAGENET_PREPROCESS).shape == (1, 3, 224, 224)


@pytest.mark.parametrize(
    ("make", "error", "text"),
    [
        (lambda p: p, UsageError, "image not found"),
        (lambda p: (p.mkdir(), p)[1], UsageError, "is a folder"),
        (lambda p: (p.write_bytes(b""), p)[1], ImageError, "empty file"),
        (lambda p: (p.write_text("not an image"), p)[1], ImageError, "not an image"),
    ],
)
def test_bad_files_fail_with_one_clear_line(tmp_path, make, error, text):
    path = make(tmp_path / "bad.png")
    with pytest.raises(error, match=text) as info:
        load_image(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_truncated_files_are_refused(tmp_path, suffix):
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    path = _save(noise, tmp_path / f"full.{suffix}")
    data = path.read_bytes()
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="could not be decoded"):
        load_image(cut)


def test_decompression_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    path = _save(Image.new("RGB", (300, 300)), tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1))
    with pytest.raises(ImageError, match="refused to decode"):
        load_image(path)
    assert not decoded


def test_preprocess_follows_the_weights():
    from torchvision.models import Inception_V3_Weights, ResNet18_Weights

    resnet = preprocess_from_weights(ResNet18_Weights.DEFAULT)
    assert (resnet.resize, resnet.crop) == (256, (224, 224))
    inception = preprocess_from_weights(Inception_V3_Weights.DEFAULT)
    assert (inception.resize, inception.crop) == (342, (299, 299))
    assert inception.input_shape() == (1, 3, 299, 299)
    assert resnet.with_size(112).resize == 128


def test_tensor_is_normalised_with_the_weights_mean_and_std(tmp_path):
    path = _save(Image.new("RGB", (300, 260), (255, 128, 0)), tmp_path / "flat.png")
    tensor = load_tensor(path, IMAGENET_PREPROCESS)
    assert tensor.shape == (1, 3, 224, 224)
    expected = [
        (v / 255 - m) / s
        for v, m, s in zip(
            (255, 128, 0), IMAGENET_PREPROCESS.mean, IMAGENET_PREPROCESS.std, strict=True
        )
    ]
    assert torch.allclose(tensor[0, :, 100, 100], torch.tensor(expected), atol=1e-5)
    restored = IMAGENET_PREPROCESS.denormalize(tensor[0])
    assert torch.allclose(restored[:, 5, 5], torch.tensor([1.0, 128 / 255, 0.0]), atol=1e-5)


def test_sample_images_all_load():
    paths = find_images([SAMPLES])
    assert {p.name for p in paths} >= {"chelsea.png", "rocket.jpg", "camera.png"}
    for path in paths:
        assert load_tensor(path, Preprocess(256, (224, 224), (0.5,) * 3, (0.5,) * 3)).shape == (
            1,
            3,
            224,
            224,
        )


def test_find_images_rejects_an_empty_folder(tmp_path):
    with pytest.raises(UsageError, match="no images"):
        find_images([tmp_path])
