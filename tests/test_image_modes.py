"""Every Pillow mode to RGB/L, pixel by pixel against numpy: alpha composited over white,
16-bit and float ranges scaled, palettes with transparency; and preprocessing read from
torchvision weights of every kind (video, segmentation, non-ImageNet statistics)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vizcli.images import load_image, load_tensor, preprocess_from_weights

RNG = np.random.default_rng(7)


def _over_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """What a viewer shows: colour * a + white * (1 - a), to the nearest integer."""
    a = alpha.astype(np.float64)[..., None] / 255.0
    return rgb.astype(np.float64) * a + 255.0 * (1 - a)


def _assert_close_uint8(actual: Image.Image, expected: np.ndarray, tolerance: int = 1) -> None:
    got = np.asarray(actual, dtype=np.int64)
    assert got.shape == expected.shape
    assert np.abs(got - np.rint(expected)).max() <= tolerance


@pytest.mark.parametrize("mode", ["RGBA", "RGBa"])
def test_rgba_is_composited_over_white(tmp_path, mode):
    rgb = RNG.integers(0, 256, (6, 9, 3), dtype=np.uint8)
    alpha = RNG.integers(0, 256, (6, 9), dtype=np.uint8)
    alpha[0, 0], alpha[0, 1] = 0, 255
    image = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    if mode == "RGBa":  # premultiplied: Pillow converts back to RGBA on the way
        image = image.convert("RGBa")
        rgb = np.asarray(image.convert("RGBA"))[..., :3]
    path = tmp_path / "a.tiff" if mode == "RGBa" else tmp_path / "a.png"
    if mode == "RGBa":
        from vizcli.images import _convert_mode

        loaded = _convert_mode(image, "RGB")
    else:
        image.save(path)
        loaded = load_image(path)
    _assert_close_uint8(loaded, _over_white(rgb, alpha))
    assert tuple(np.asarray(loaded)[0, 0]) == (255, 255, 255)  # fully transparent: white


@pytest.mark.parametrize("mode", ["LA", "La"])
def test_grey_with_alpha_is_composited_over_white(mode):
    from vizcli.images import _convert_mode

    grey = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
    alpha = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
    image = Image.fromarray(np.dstack([grey, alpha]), "LA")
    if mode == "La":  # premultiplied (TIFF's associated alpha); Pillow cannot convert it
        premultiplied = np.rint(grey.astype(np.float64) * alpha / 255).astype(np.uint8)
        image = Image.frombytes("La", image.size, np.dstack([premultiplied, alpha]).tobytes())
        expected = premultiplied.astype(np.float64) + 255.0 - alpha  # over white
        expected = np.repeat(expected[..., None], 3, axis=2)
    else:
        expected = _over_white(np.repeat(grey[..., None], 3, axis=2), alpha)
    _assert_close_uint8(_convert_mode(image, "RGB"), expected)
    grey_out = _convert_mode(image, "L")
    assert grey_out.mode == "L"
    _assert_close_uint8(grey_out, expected[..., 0])


@pytest.mark.parametrize("mode", ["P", "PA"])
def test_palette_transparency_shows_white(tmp_path, mode):
    from vizcli.images import _convert_mode

    palette_image = Image.new("P", (4, 3))
    palette_image.putpalette([200, 10, 20, 5, 150, 60] + [0] * 762)
    palette_image.putdata([0, 1] * 6)
    if mode == "P":
        palette_image.info["transparency"] = 1  # colour 1 is see-through
        expected = np.array([[200, 10, 20], [255, 255, 255]] * 6).reshape(3, 4, 3)
        plain = palette_image.copy()
        plain.info.pop("transparency")
        _assert_close_uint8(
            _convert_mode(plain, "RGB"),
            np.array([[200, 10, 20], [5, 150, 60]] * 6).reshape(3, 4, 3),
            0,
        )
    else:
        palette_image = palette_image.convert("PA")
        alpha = np.array([255, 0] * 6, dtype=np.uint8).reshape(3, 4)
        palette_image.putalpha(Image.fromarray(alpha, "L"))
        expected = np.array([[200, 10, 20], [255, 255, 255]] * 6).reshape(3, 4, 3)
    _assert_close_uint8(_convert_mode(palette_image, "RGB"), expected, 0)


@pytest.mark.parametrize(
    ("values", "mode", "expected"),
    [
        # 16-bit with values over 255: scaled from 0..65535
        ([[0, 257, 65535], [32768, 1000, 65535]], "I;16", "scaled16"),
        # 16-bit whose values all fit 8 bits: kept as they are (an 8-bit image saved as 16)
        ([[0, 17, 255], [128, 200, 255]], "I;16", "same"),
        ([[0, 300, 70000], [-5, 255, 65535]], "I", "scaled16"),
        ([[0, 17, 255], [128, 200, 255]], "I", "same"),
    ],
)
def test_integer_grey_ranges(values, mode, expected):
    from vizcli.images import _convert_mode

    array = np.array(values, dtype=np.int64)
    image = Image.fromarray(array.astype(np.uint16 if mode == "I;16" else np.int32))
    if mode == "I":
        image = image.convert("I")
    assert image.mode == mode
    peak = 65535.0 if expected == "scaled16" else 255.0
    want = np.clip(np.rint(array / peak * 255.0), 0, 255)
    out = _convert_mode(image, "RGB")
    _assert_close_uint8(out, np.repeat(want[..., None], 3, axis=2), 0)


@pytest.mark.parametrize(
    ("values", "scale"),
    [
        ([[0.0, 0.25, 1.0], [0.5, 0.999, 0.0]], 255.0),  # floats in [0, 1]: x 255
        ([[0.0, 64.0, 255.0], [300.0, -4.0, 1.5]], 1.0),  # floats over 1: already 0..255
    ],
)
def test_float_grey_ranges(values, scale):
    from vizcli.images import _convert_mode

    array = np.array(values, dtype=np.float32)
    image = Image.fromarray(array, "F")
    want = np.clip(np.rint(array.astype(np.float64) * scale), 0, 255)
    _assert_close_uint8(_convert_mode(image, "L"), want, 0)


def test_one_channel_model_gets_a_grey_tensor(tmp_path):
    from vizcli.images import Preprocess

    rgb = RNG.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    path = tmp_path / "c.png"
    Image.fromarray(rgb).save(path)
    grey = Preprocess(None, (8, 8), (0.0,), (1.0,), channels=1)
    tensor = load_tensor(path, grey)
    expected = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32) / 255
    assert tensor.shape == (1, 1, 8, 8)
    torch.testing.assert_close(tensor[0, 0], torch.from_numpy(expected), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "weights",
    [
        "video.R3D_18_Weights.KINETICS400_V1",  # resize (128, 171), crop 112, Kinetics stats
        "segmentation.FCN_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1",  # resize 520 only
        "ViT_H_14_Weights.IMAGENET1K_SWAG_E2E_V1",  # 518 / 518 bicubic
        "Wide_ResNet50_2_Weights.IMAGENET1K_V2",  # 232 / 224
        "MobileNet_V3_Small_Weights.IMAGENET1K_V1",
    ],
)
def test_preprocessing_read_from_weights_of_every_kind(weights):
    import torchvision.models as models

    *module, enum_name, member = weights.split(".")
    namespace = getattr(models, module[0]) if module else models
    enum = getattr(namespace, enum_name)[member]
    transform = enum.transforms()
    ours = preprocess_from_weights(enum)
    assert ours.mean == tuple(transform.mean) and ours.std == tuple(transform.std)
    assert ours.interpolation == transform.interpolation.value
    resize = list(transform.resize_size)
    crop = getattr(transform, "crop_size", None)
    if crop is None:  # segmentation: resize the short side, then that square
        assert ours.resize == resize[0] and ours.crop == (resize[0], resize[0])
    else:
        assert ours.crop == (crop[0], crop[-1])
        assert ours.resize == min(resize)
    if module == ["video"]:
        assert ours.mean != (0.485, 0.456, 0.406)  # Kinetics statistics, not ImageNet's


def test_unique_labels():
    from pathlib import Path

    from vizcli.images import unique_labels

    paths = [Path(p) for p in ("a/cat.png", "b/cat.png", "dog.png", "x/a/cow.png", "y/a/cow.png")]
    assert unique_labels(paths) == ["a/cat", "b/cat", "dog", "x/a/cow", "y/a/cow"]
    assert unique_labels([Path("a/cat.png"), Path("a/cat.jpg")]) == ["cat.png", "cat.jpg"]
    assert unique_labels([Path("a/cat.png")] * 3) == ["cat", "cat-2", "cat-3"]
    assert unique_labels([Path("a/b/c/x.png"), Path("a/d/c/x.png")]) == ["b/c/x", "d/c/x"]
    assert unique_labels([Path("x.png"), Path("x.png"), Path("y.png")]) == ["x", "x-2", "y"]
    assert unique_labels([]) == []


@pytest.mark.parametrize(
    ("text", "fraction"),
    [("0.875", 0.875), (" 1 ", 1.0), ("squash", None), (" Squash", None), ("NONE", None)],
)
def test_parse_crop_accepts(text, fraction):
    from vizcli.images import IMAGENET_PREPROCESS, parse_crop

    assert parse_crop(text) == fraction
    cropped = IMAGENET_PREPROCESS.with_crop(text)
    assert cropped.crop == (224, 224)
    assert cropped.resize == (None if fraction is None else int(224 // fraction))


@pytest.mark.parametrize("text", ["0", "-0.5", "1.01", "nan", "inf", "abc", ""])
def test_parse_crop_refuses(text):
    from vizcli.errors import UsageError
    from vizcli.images import parse_crop

    with pytest.raises(UsageError, match="--crop must be a fraction in \\(0, 1\\]") as error:
        parse_crop(text)
    assert repr(text) in str(error.value) and error.value.hint


def test_normalisation_options_and_their_round_trip():
    from vizcli.errors import UsageError
    from vizcli.images import IMAGENET_PREPROCESS

    base = IMAGENET_PREPROCESS
    one = base.with_normalization([0.5], [0.25])
    assert (one.mean, one.std) == ((0.5,) * 3, (0.25,) * 3)
    per = base.with_normalization([0.1, 0.2, 0.3], None)
    assert per.mean == (0.1, 0.2, 0.3) and per.std == base.std
    raw = base.with_normalization(None, None, normalize=False)
    assert (raw.mean, raw.std) == ((0.0,) * 3, (1.0,) * 3)
    assert base.with_normalization(None, None) == base
    for mean, std, normalize, text in [
        ([0.1, 0.2], None, True, "--mean takes 1 or 3 numbers, got 2"),
        (None, [0.0], True, "--std values must be finite and > 0"),
        (None, [-1.0], True, "--std values must be finite and > 0"),
        ([float("nan")], None, True, "--mean values must be finite"),
        ([0.5], None, False, "--no-normalize cannot be combined"),
        (None, [0.5], False, "--no-normalize cannot be combined"),
    ]:
        with pytest.raises(UsageError) as error:
            base.with_normalization(mean, std, normalize)
        assert str(error.value).startswith(text), str(error.value)
    assert str(pytest.raises(UsageError, base.with_normalization, [float("inf")], None).value) == (
        "--mean values must be finite"
    )
    # denormalize inverts normalize, clamped to [0, 1]
    image = torch.rand(3, 5, 4, generator=torch.Generator().manual_seed(0))
    mean = torch.tensor(one.mean).view(3, 1, 1)
    std = torch.tensor(one.std).view(3, 1, 1)
    normalised = (image - mean) / std
    torch.testing.assert_close(one.denormalize(normalised), image)
    assert one.denormalize(torch.full((3, 1, 1), 10.0)).max() == 1.0
    assert one.denormalize(torch.full((3, 1, 1), -10.0)).min() == 0.0


def test_with_size_keeps_the_resize_ratio_and_to_dict_reports_everything():
    from vizcli.errors import UsageError
    from vizcli.images import IMAGENET_PREPROCESS, Preprocess

    assert IMAGENET_PREPROCESS.with_size(112).resize == 128  # 256/224 of 112
    assert IMAGENET_PREPROCESS.with_size(300).resize == round(300 * 256 / 224)
    squash = Preprocess(None, (10, 20), (0.5,), (0.5,), "bicubic", channels=1)
    assert squash.with_size(32) == Preprocess(None, (32, 32), (0.5,), (0.5,), "bicubic", 1)
    with pytest.raises(UsageError, match="--size must be positive, got 0"):
        IMAGENET_PREPROCESS.with_size(0)
    assert squash.to_dict() == {
        "resize": None,
        "crop_mode": "center",
        "crop": [10, 20],
        "mean": [0.5],
        "std": [0.5],
        "interpolation": "bicubic",
    }
    assert squash.input_shape(4) == (4, 1, 10, 20)
    target = Preprocess((100, 80), (90, 72), (0.5,), (0.5,), crop_mode="border")
    assert target.to_dict()["resize"] == [100, 80] and target.to_dict()["crop_mode"] == "border"
    assert target.with_size(36).resize == (40, 40)  # each side in its own ratio
    assert target.with_size(36).crop == (36, 36)


@pytest.mark.parametrize(
    "cfg",
    [
        {"input_size": (3, 224, 224), "crop_pct": 0.875, "interpolation": "bicubic"},
        {"input_size": (3, 160, 160), "crop_pct": 0.95, "mean": (0.5,) * 3, "std": (0.5,) * 3},
        {"input_size": (3, 96, 128), "crop_pct": 1.0, "interpolation": "bilinear"},
        {"input_size": (3, 64, 64), "crop_pct": 0.9, "crop_mode": "squash"},
        {"input_size": (3, 72, 72), "crop_pct": 0.8, "crop_mode": "center", "mean": (0.1,) * 3},
        {"input_size": (3, 80, 60), "crop_pct": 0.9, "crop_mode": "squash"},  # dm_nfnet's way
        {"input_size": (3, 64, 48), "crop_pct": 1.0, "crop_mode": "border"},
        {"input_size": (3, 48, 64), "crop_pct": 0.9, "crop_mode": "border", "mean": (0.2,) * 3},
        {"input_size": (3, 90, 60), "crop_pct": 0.95},  # non-square centre: ResizeKeepRatio
        {"input_size": (1, 32, 32), "crop_pct": 0.875, "mean": (0.5,), "std": (0.25,)},
    ],
)
def test_timm_pretrained_cfg_equals_timms_own_transform_on_photos(cfg):
    """timm's ``create_transform`` from the same cfg is the oracle (eval mode)."""
    from timm.data import create_transform, resolve_data_config

    from tests.conftest import SAMPLES
    from vizcli.images import find_images, preprocess_from_cfg

    full = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), **cfg}
    config = resolve_data_config(pretrained_cfg=full)
    reference = create_transform(**config, is_training=False)
    ours = preprocess_from_cfg(cfg)
    assert ours.mean == tuple(config["mean"]) and ours.std == tuple(config["std"])
    mode = "L" if ours.channels == 1 else "RGB"
    for path in find_images([SAMPLES]):
        expected = reference(load_image(path, mode))
        actual = load_tensor(path, ours)[0]
        assert actual.shape == expected.shape, path.name
        torch.testing.assert_close(actual, expected, atol=1e-6, rtol=0, msg=path.name)


def test_pretrained_cfg_defaults_and_odd_values():
    from dataclasses import replace
    from types import SimpleNamespace

    from vizcli.images import IMAGENET_PREPROCESS, preprocess_from_cfg

    assert preprocess_from_cfg(None) == IMAGENET_PREPROCESS
    timm_default = preprocess_from_cfg({})  # timm's defaults: 224, 0.875, bicubic
    assert timm_default == replace(IMAGENET_PREPROCESS, interpolation="bicubic")
    grey = preprocess_from_cfg({"input_size": (1, 28, 28), "mean": (0.1307,), "std": (0.3081,)})
    assert (grey.channels, grey.crop, grey.mean, grey.std) == (1, (28, 28), (0.1307,), (0.3081,))
    assert grey.resize == 32  # floor(28 / 0.875)
    spread = preprocess_from_cfg({"input_size": (3, 32, 32), "mean": (0.5,), "std": (0.2,)})
    assert spread.mean == (0.5,) * 3 and spread.std == (0.2,) * 3
    mismatch = preprocess_from_cfg({"input_size": (2, 32, 32), "mean": (0.1, 0.2, 0.3)})
    assert mismatch.mean == IMAGENET_PREPROCESS.mean[:2] and mismatch.std == (0.229, 0.224)
    odd = preprocess_from_cfg({"interpolation": "random", "crop_mode": "squash"})
    assert odd.interpolation == "bicubic" and odd.resize == (256, 256)
    assert odd.crop_mode == "squash"
    assert preprocess_from_cfg({"crop_mode": "other"}).crop_mode == "center"
    as_object = preprocess_from_cfg(SimpleNamespace(input_size=(3, 40, 50), crop_pct=1.0))
    assert (as_object.crop, as_object.resize) == ((40, 50), (40, 50))
    with_to_dict = SimpleNamespace(to_dict=lambda: {"input_size": (3, 8, 8), "crop_pct": 0.5})
    assert preprocess_from_cfg(with_to_dict).resize == 16


def test_a_padded_crop_maps_back_onto_the_photo_without_the_padding():
    """border mode pads a wide photo above and below: the map's padded rows lie outside the
    photo, and its rows over the photo land on the photo's rows."""
    from vizcli.draw.overlays import in_original_frame
    from vizcli.images import Preprocess

    preprocess = Preprocess((32, 32), (32, 32), (0.5,) * 3, (0.5,) * 3, crop_mode="border")
    geometry = preprocess.geometry(40, 20)  # resized to 32 x 16, padded 8 rows each side
    assert geometry["resize"] == [32, 16]
    assert geometry["crop_box"] == [0.0, -10.0, 40.0, 30.0]
    map01 = torch.zeros(32, 32)
    map01[:8] = 1.0  # the padding above the photo
    map01[8:24, :16] = 0.5  # the photo's left half
    full, seen = in_original_frame(np.zeros((20, 40, 3), np.uint8), map01, geometry["crop_box"])
    assert seen.all()
    assert full.max() < 0.6  # the padding (1.0) stays off the photo; bilinear edge only
    assert full[2:18, 2:18].min() == pytest.approx(0.5, abs=1e-6)  # the left half...
    assert full[1:, 22:].max() == 0.0  # ...and only the left half (bilinear at the seams)


@pytest.mark.parametrize(
    ("width", "height", "preprocess"),
    [
        (80, 74, ("border", (40, 40), (40, 40))),  # padding 3: the odd row goes below
        (80, 66, ("border", (40, 40), (40, 40))),  # padding 7
        (640, 427, ("border", (224, 224), (224, 224))),  # padding 75
        (50, 50, ("squash", (33, 33), (40, 40))),  # crop_pct 1.2: padding 7 each way
        (30, 50, ("center", 33, (40, 40))),  # a short side below the crop
    ],
)
def test_crop_box_is_where_the_photo_lands_in_the_input(width, height, preprocess):
    """A white photo on a black fill: the first white row and column of the tensor are where
    the reported crop box says the photo starts (minus half the padding, rounded down)."""
    from vizcli.images import Preprocess

    mode, resize, crop = preprocess
    prep = Preprocess(resize, crop, (0.0,) * 3, (1.0,) * 3, "bilinear", crop_mode=mode)
    tensor = prep(Image.new("RGB", (width, height), (255, 255, 255)))
    geometry = prep.geometry(width, height)
    new_w, new_h = geometry["resize"]
    left, top, right, bottom = geometry["crop_box"]
    rows = torch.nonzero(tensor[0].amax(1) > 0.5).flatten()
    cols = torch.nonzero(tensor[0].amax(0) > 0.5).flatten()
    assert top < 0 or left < 0  # every case pads
    first_row = int(rows[0]) if top < 0 else 0
    first_col = int(cols[0]) if left < 0 else 0
    assert max(-top, 0) * new_h / height == pytest.approx(first_row, abs=0.01)
    assert max(-left, 0) * new_w / width == pytest.approx(first_col, abs=0.01)
    assert (bottom - top) * new_h / height == pytest.approx(crop[0], abs=0.02)
    assert (right - left) * new_w / width == pytest.approx(crop[1], abs=0.02)


def test_extreme_aspect_ratios_resize_to_at_least_one_pixel():
    from vizcli.images import Preprocess

    prep = Preprocess((32, 32), (32, 32), (0.5,) * 3, (0.5,) * 3, crop_mode="border")
    assert prep.resized(1000, 2) == (32, 1)
    assert prep(Image.new("RGB", (1000, 2))).shape == (3, 32, 32)
    assert prep.geometry(1000, 2)["resize"] == [32, 1]


def test_range_boundaries_of_grey_modes():
    from vizcli.images import _convert_mode

    sixteen = Image.fromarray(np.array([[0, 256, 64893]], dtype=np.uint16))  # 256: over 8 bits
    assert np.asarray(_convert_mode(sixteen, "L")).tolist() == [[0, 1, 253]]  # x 255 / 65535
    floats = Image.fromarray(np.array([[0.0, 1.5, 0.75]], dtype=np.float32), "F")
    assert np.asarray(_convert_mode(floats, "L")).tolist() == [[0, 2, 1]]  # over 1: 0..255 already


def test_grey_border_pads_with_the_grey_mean():
    from vizcli.images import Preprocess

    prep = Preprocess((8, 8), (8, 8), (0.25,), (1.0,), channels=1, crop_mode="border")
    tensor = prep(Image.new("L", (16, 4), 255))  # 8 x 2 after the fit, padded 3 rows each side
    assert tensor.shape == (1, 8, 8)
    assert tensor[0, 0, 0] == pytest.approx(64 / 255 - 0.25, abs=1e-6)  # round(255 * 0.25)
    assert tensor[0, 4, 4] == pytest.approx(0.75)


def test_geometry_reports_the_whole_preprocessing():
    from vizcli.images import Preprocess

    prep = Preprocess(7, (5, 5), (0.1, 0.2, 0.3), (0.4, 0.5, 0.6), "bicubic")
    assert prep.geometry(13, 9) == {
        "resize": [10, 7],  # int(7 * 13 / 9) = 10
        "crop_box": [2.6, 1.29, 9.1, 7.71],  # offsets round(2.5) = 2 and 1, times 13/10, 9/7
        "interpolation": "bicubic",
        "mean": [0.1, 0.2, 0.3],
        "std": [0.4, 0.5, 0.6],
    }


def test_refusal_texts_and_hints(tmp_path, monkeypatch):
    from vizcli.errors import UsageError
    from vizcli.images import load_image, parse_crop
    from vizcli.labels import load_labels

    with pytest.raises(UsageError) as error:
        parse_crop("2")
    assert error.value.hint == "0.875 resizes 224-pixel crops from 256"
    with pytest.raises(UsageError) as error:
        load_labels(str(tmp_path / "none.txt"))
    assert (
        error.value.hint == "give a file (one name per line, or JSON), or imagenet / imagenet-22k"
    )
    names = tmp_path / "one.json"
    names.write_text('{"0": ["tench"], "1": ["n01443537", "goldfish"]}')
    assert load_labels(str(names)) == ["tench", "goldfish"]  # the last entry is the name
    big = tmp_path / "big.png"
    Image.new("RGB", (64, 64)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 > 2 x 1000: Pillow's error
    from vizcli.errors import ImageError

    with pytest.raises(ImageError) as error:
        load_image(big)
    assert "refused to decode, too many pixels" in str(error.value)
    assert "4096 pixels" in str(error.value)  # Pillow's own reason follows
