"""Gradient saliency (vizcli/cam/saliency.py) against independent oracles: captum's Saliency,
IntegratedGradients and GuidedBackprop on a torchvision ResNet-18 at 128 px (two images, two
different target classes), and maps computed by hand for a linear model on a 3-channel input.

Tolerances. vizcli and captum differentiate the same float32 graph, so the gradients agree to
float32 rounding (on this machine saliency, SmoothGrad and guided backprop agree bit for bit).
Integrated gradients adds 32 gradients in another order and then sums three signed channel
terms, which can cancel: a pixel's error is bounded relative to the map's scale, not to its
own (near-zero) value. Hence ``rtol=1e-4`` and ``atol=1e-5 * max|oracle|``: a thousand times
float32's epsilon, several orders of magnitude below the differences the plausible bugs make
(mean instead of max over channels, left instead of right Riemann sum, noise scaled over the
batch instead of per image, a missing ``abs``).
"""

from __future__ import annotations

import pytest
import torch
from captum.attr import GuidedBackprop, IntegratedGradients, Saliency
from torch import nn

from tests.conftest import shared
from vizcli.cam import LayerProbe, get_method

SIZE = 128  # maps at input resolution: 128 x 128, a quarter of 224's cost
CLASSES = torch.tensor([3, 421])


def _ours(name, model, batch, classes, seed=None):
    method = get_method(name)
    assert not method.uses_layer  # input-resolution saliency: the probe carries no layer
    if seed is not None:
        method.seed = seed  # what explain() does with --seed
    maps, logits = method(LayerProbe(model, None), batch, classes)
    assert maps.shape == (batch.shape[0], *batch.shape[-2:])
    return maps


def _assert_close(ours, oracle):
    torch.testing.assert_close(ours, oracle, rtol=1e-4, atol=1e-5 * float(oracle.abs().max()))
    assert oracle.abs().max() > 0  # a map of zeros would match anything scaled by it


@pytest.fixture(scope=shared("module"))
def resnet():
    """Random weights, seeded; torchvision's ResNet-18 uses (in-place) ``nn.ReLU`` modules."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    return resnet18().eval()


@pytest.fixture(scope=shared("module"))
def images():
    """Two images with different value ranges (SmoothGrad's noise follows each one's range)."""
    batch = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    scale, shift = torch.tensor([1.0, 0.25]), torch.tensor([0.0, 0.5])
    return batch * scale.view(-1, 1, 1, 1) + shift.view(-1, 1, 1, 1)


def test_saliency_is_the_largest_absolute_gradient_over_colour_channels(resnet, images):
    oracle = Saliency(resnet).attribute(images, target=CLASSES, abs=True).amax(1)
    _assert_close(_ours("saliency", resnet, images, CLASSES), oracle)


def test_smoothgrad_averages_saliency_over_each_images_own_noise(resnet, images):
    """vizcli's documented noise, drawn independently here: 16 samples, sigma 15% of each
    image's range, each image's noise from its own generator seeded with ``seed``; captum
    takes each noisy batch's absolute gradients, averaged, then the channel maximum."""
    seed, samples = 5, 16
    generators = [torch.Generator().manual_seed(seed) for _ in images]
    # float32, as the noise is added: a ReLU network's gradient jumps where a unit flips, so
    # noise rounded differently (a float64 sigma) moves a few percent of pixels by ~1%.
    sigmas = [0.15 * (image.max() - image.min()) for image in images]
    saliency = Saliency(resnet)
    total = torch.zeros_like(images)
    for _ in range(samples):
        noisy = torch.stack([
            image + torch.randn(image.shape, generator=g) * sigma
            for image, g, sigma in zip(images, generators, sigmas, strict=True)
        ])  # fmt: skip
        total += saliency.attribute(noisy, target=CLASSES, abs=True)
    oracle = (total / samples).amax(1)
    _assert_close(_ours("smoothgrad", resnet, images, CLASSES, seed=seed), oracle)


def _integrated_gradients_oracle(model, batch, classes):
    """Zero baseline, 32 steps, alphas 1/32 .. 1 (captum's right Riemann sum)."""
    attributions = IntegratedGradients(model).attribute(
        batch, target=classes, n_steps=32, method="riemann_right", internal_batch_size=16
    )
    return attributions.sum(1).abs()


class SmallNet(nn.Module):
    """Two conv-ReLU layers, pooling and a linear head: nonlinear, so the Riemann sum's
    endpoints matter, and fast enough for every run of the suite."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()
        )
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def test_integrated_gradients_on_a_small_network():
    torch.manual_seed(0)
    model = SmallNet().eval()
    batch = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    classes = torch.tensor([1, 4])
    oracle = _integrated_gradients_oracle(model, batch, classes)
    _assert_close(_ours("integrated-gradients", model, batch, classes), oracle)


@pytest.mark.slow  # 2 x 33 gradient passes of ResNet-18, for each library
def test_integrated_gradients_on_resnet18(resnet, images):
    oracle = _integrated_gradients_oracle(resnet, images, CLASSES)
    _assert_close(_ours("integrated-gradients", resnet, images, CLASSES), oracle)


def test_guided_backprop_matches_captum(resnet, images):
    """captum overrides the backward of every ``nn.ReLU`` module: only positive gradients
    pass. The plain saliency differs, so the guidance is really there."""
    guided = GuidedBackprop(resnet).attribute(images, target=CLASSES).abs().amax(1)
    ours = _ours("guided-backprop", resnet, images, CLASSES)
    _assert_close(ours, guided)
    plain = Saliency(resnet).attribute(images, target=CLASSES, abs=True).amax(1)
    assert not torch.allclose(ours, plain, rtol=0.1, atol=0)


# --------------------------------------------------------------------- by hand


class Linear3(nn.Module):
    """logits = W . flatten(x): the gradient of class k's logit is W[k], reshaped."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 5, 2, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(2, 60, generator=torch.Generator().manual_seed(3)))

    def forward(self, x):
        return self.fc(x.flatten(1))


@pytest.mark.parametrize("method", ["saliency", "smoothgrad", "guided-backprop"])
def test_channel_reduction_by_hand_on_a_3_channel_image(method):
    """The gradient does not depend on the input (so neither on SmoothGrad's noise) and there
    is no ReLU to guide: each map is max_c |W[k, c]|, per pixel, for its own class k."""
    model = Linear3().eval()
    batch = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(4))
    classes = torch.tensor([1, 0])
    weights = model.fc.weight.detach().view(2, 3, 4, 5)
    expected = weights[classes].abs().amax(1)
    assert not torch.allclose(expected, weights[classes].abs().mean(1))  # max, not mean
    _assert_close(_ours(method, model, batch, classes), expected)


def test_integrated_gradients_by_hand_on_a_3_channel_image():
    """Linear model, zero baseline: IG is x * W[k] exactly, summed over channels, then abs."""
    model = Linear3().eval()
    batch = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(4))
    classes = torch.tensor([1, 0])
    weights = model.fc.weight.detach().view(2, 3, 4, 5)
    expected = (batch * weights[classes]).sum(1).abs()
    _assert_close(_ours("integrated-gradients", model, batch, classes), expected)
