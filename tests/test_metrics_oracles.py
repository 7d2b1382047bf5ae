"""Faithfulness metrics against implementations written here from the papers (numpy/scipy,
not vizcli's code), on the same model and maps; and on the trained network, Grad-CAM against
a random map and a centre-Gaussian map."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch

from tests.conftest import ROOT, SAMPLES, TINY, shared
from vizcli.cam import metrics
from vizcli.images import load_tensor
from vizcli.models import resolve_model


def rise_curves(model, image: torch.Tensor, cls: int, saliency: np.ndarray, steps: int):
    """Petsiuk et al. 2018: deletion to a zero substrate, insertion onto a Gaussian-blurred
    canvas (sigma 5, 11 taps, mirrored borders), ranked most important first (stable ties),
    ``steps`` equal fractions of the pixels; class probability after softmax."""
    x = image[0].double().numpy()
    h, w = saliency.shape
    order = np.argsort(-saliency.ravel().astype(np.float64), kind="stable")
    canvas = np.stack([scipy.ndimage.gaussian_filter(c, sigma=5, truncate=1.0, mode="mirror")
                       for c in x])  # fmt: skip
    deletion, insertion = [], []
    for k in range(steps + 1):
        chosen = np.zeros(h * w, bool)
        chosen[order[: int(np.round(h * w * k / steps))]] = True
        chosen = chosen.reshape(h, w)
        deletion.append(np.where(chosen, 0.0, x))
        insertion.append(np.where(chosen, x, canvas))

    def prob(batch):
        with torch.no_grad():
            logits = model(torch.from_numpy(np.stack(batch)).float())
        return torch.softmax(logits.double(), 1)[:, cls].numpy()

    return prob(deletion), prob(insertion)


def auc(curve: np.ndarray) -> float:
    """Area under the curve over [0, 1], trapezoid rule."""
    return float(np.sum((curve[1:] + curve[:-1]) / 2) / (len(curve) - 1))


def average_drop_increase(model, image, cls, saliency01):
    """Chattopadhyay et al. 2018: Y on the image, O on image x map; drop = max(0, Y-O)/Y."""
    with torch.no_grad():
        y = torch.softmax(model(image).double(), 1)[0, cls].item()
        masked = image * torch.from_numpy(saliency01).float()[None, None]
        o = torch.softmax(model(masked).double(), 1)[0, cls].item()
    return max(0.0, y - o) / y * 100, float(o > y)


@pytest.fixture(scope=shared("module"))
def tiny():
    torch.manual_seed(0)
    loaded = resolve_model(f"{TINY}:TinyNet", device="cpu")
    loaded.preprocess = loaded.preprocess.with_size(64)
    return loaded


@pytest.mark.parametrize("kind", ["smooth", "plateaus", "random"])
def test_metrics_equal_the_papers_definitions(tiny, kind):
    image = load_tensor(SAMPLES / "coffee.png", tiny.preprocess)
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:64, 0:64]
    saliency = {
        "smooth": np.exp(-((yy - 20) ** 2 + (xx - 40) ** 2) / 300.0),
        "plateaus": np.maximum(np.round(rng.random((64, 64)) * 3) / 3 - 0.34, 0),  # ReLU-like ties
        "random": rng.random((64, 64)),
    }[kind].astype(np.float32)
    got = metrics.faithfulness(tiny.model, image, 2, torch.from_numpy(saliency))
    deletion, insertion = rise_curves(tiny.model, image, 2, saliency, metrics.STEPS)
    drop, increase = average_drop_increase(tiny.model, image, 2, saliency)
    assert got["deletion_auc"] == pytest.approx(auc(deletion), abs=1e-6)
    assert got["insertion_auc"] == pytest.approx(auc(insertion), abs=1e-6)
    assert got["average_drop"] == pytest.approx(drop, abs=1e-4)
    assert got["increase"] == increase


def test_ties_are_broken_the_same_way_every_time(tiny):
    image = load_tensor(SAMPLES / "chelsea.png", tiny.preprocess)
    flat = torch.zeros(64, 64)
    flat[10:30, 10:30] = 1.0  # one plateau of 400 equal pixels, the rest another
    runs = {metrics.faithfulness(tiny.model, image, 1, flat)["deletion_auc"] for _ in range(3)}
    assert len(runs) == 1
    assert metrics.ranking(flat)[:3].tolist() == [10 * 64 + 10, 10 * 64 + 11, 10 * 64 + 12]


@pytest.mark.slow
def test_gradcam_beats_random_and_centre_maps_on_the_trained_network():
    """EfficientNet-Lite0: Grad-CAM deletes faster and inserts faster than a random map (random
    at the CAM's own 7x7 resolution, upsampled: pixel noise would delete "faster" by breaking
    the image) and than a centred Gaussian (the 'object in the middle' prior). rocket.jpg is
    left out: its missile class (36%) looks at the launch towers, and there the centre prior
    wins (see the README's table)."""
    pytest.importorskip("efficientnet_lite_pytorch")
    from vizcli.cam.explain import CamOptions, explain

    lite0 = resolve_model(f"{ROOT / 'examples' / 'efficientnet_lite0.py'}:efficientnet_lite0",
                          weights="auto", device="cpu")  # fmt: skip
    photos = [SAMPLES / n for n in ("coffee.png", "camera.png", "chelsea.png")]
    report = explain(lite0, photos, CamOptions("gradcam", batch_size=3), lambda a: None)

    def up(small: torch.Tensor) -> torch.Tensor:
        grid = small[None, None].float()
        return torch.nn.functional.interpolate(grid, size=(224, 224), mode="bilinear")[0, 0]

    yy, xx = np.mgrid[0:224, 0:224]
    centre = torch.from_numpy(np.exp(-((yy - 111.5) ** 2 + (xx - 111.5) ** 2) / (2 * 50.0**2)))
    random = up(torch.from_numpy(np.random.default_rng(0).random((7, 7))))
    for result, path in zip(report.results, photos, strict=True):
        image = load_tensor(path, lite0.preprocess)
        cls = result.target.index
        gradcam = metrics.faithfulness(lite0.model, image, cls, up(result.map))
        for name, baseline in (("centre", centre), ("random", random)):
            other = metrics.faithfulness(lite0.model, image, cls, baseline)
            assert gradcam["deletion_auc"] < other["deletion_auc"], (path.name, name)
            assert gradcam["insertion_auc"] > other["insertion_auc"], (path.name, name)
