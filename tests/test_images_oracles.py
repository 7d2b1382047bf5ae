"""Preprocessing against torchvision's own ``weights.transforms()`` on the real sample photos:
non-square pictures, so resize, aspect, crop position and interpolation all show."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import SAMPLES
from vizcli.images import find_images, load_image, load_tensor, preprocess_from_weights

WEIGHTS = [
    "ResNet50_Weights.IMAGENET1K_V2",  # resize 232, crop 224, bilinear
    "ViT_B_16_Weights.IMAGENET1K_V1",  # 256 / 224
    "EfficientNet_B3_Weights.IMAGENET1K_V1",  # bicubic, 320 / 300
    "Inception_V3_Weights.IMAGENET1K_V1",  # 342 / 299
    "Swin_T_Weights.IMAGENET1K_V1",  # bicubic 232 / 224
    "RegNet_Y_16GF_Weights.IMAGENET1K_SWAG_E2E_V1",  # bicubic 384 / 384
]


@pytest.mark.parametrize("weights", WEIGHTS)
def test_equals_weights_transforms_on_every_sample_photo(weights):
    import torchvision.models as models

    enum_name, member = weights.split(".")
    enum = getattr(models, enum_name)[member]
    preprocess = preprocess_from_weights(enum)
    reference = enum.transforms()
    for path in find_images([SAMPLES]):
        expected = reference(load_image(path))
        actual = load_tensor(path, preprocess)[0]
        assert actual.shape == expected.shape, path.name
        torch.testing.assert_close(actual, expected, atol=1e-6, rtol=0, msg=path.name)


def test_any_image_size_maps_to_the_declared_input_size(tmp_path):
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from PIL import Image

    from vizcli.images import IMAGENET_PREPROCESS

    @settings(max_examples=25, deadline=None)
    @given(st.integers(1, 700), st.integers(1, 700), st.sampled_from(["0.875", "1", "squash"]))
    def check(width, height, crop):
        path = tmp_path / f"{width}x{height}.png"
        Image.new("RGB", (width, height), (10, 200, 30)).save(path)
        preprocess = IMAGENET_PREPROCESS.with_crop(crop)
        assert tuple(load_tensor(path, preprocess).shape) == (1, 3, 224, 224)

    check()
