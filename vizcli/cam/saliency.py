"""Gradient saliency at input resolution: vanilla, SmoothGrad, guided backprop, integrated
gradients. Gradients come from ``torch.autograd.grad`` with respect to the input."""

from __future__ import annotations

import torch
from torch import nn

from vizcli.cam.base import CamMethod, LayerProbe, class_scores, register
from vizcli.hooks import intercept, model_output, preserved_state


def input_gradients(
    model: nn.Module, batch: torch.Tensor, classes: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(d score / d input, logits, classes); ``classes=None`` takes each top-1."""
    inputs = batch.detach().requires_grad_(True)
    with preserved_state(model), torch.enable_grad():  # eval mode, model handed back as is
        logits = model_output(model(inputs))
        if classes is None:
            classes = logits.detach().argmax(1)
        score = class_scores(logits, classes).sum()
        (grads,) = torch.autograd.grad(score, inputs)
    return grads, logits.detach(), classes


class _GradientMethod(CamMethod):
    uses_layer = False


@register
class Saliency(_GradientMethod):
    """Simonyan et al. 2014: |d score / d pixel|, the largest over colour channels."""

    name, title = "saliency", "Saliency"

    def __call__(self, probe: LayerProbe, batch: torch.Tensor, classes: torch.Tensor | None):  # noqa: ANN204
        grads, logits, _ = input_gradients(probe.model, batch, classes)
        return grads.abs().amax(1), logits


@register
class SmoothGrad(_GradientMethod):
    """Smilkov et al. 2017: saliency averaged over noisy copies (noise 15% of each image's
    range). Each image draws its noise from its own generator seeded with ``seed``, so its map
    is the same whatever the batch size, its position in the batch and the other images."""

    name, title = "smoothgrad", "SmoothGrad"
    samples = 16
    noise = 0.15

    def __call__(self, probe: LayerProbe, batch: torch.Tensor, classes: torch.Tensor | None):  # noqa: ANN204
        generators = [torch.Generator(device="cpu").manual_seed(self.seed) for _ in batch]
        flat = batch.flatten(1)
        sigma = (self.noise * (flat.amax(1) - flat.amin(1))).view(-1, *[1] * (batch.dim() - 1))
        _, logits, classes = input_gradients(probe.model, batch, classes)
        total = torch.zeros_like(batch)
        for _ in range(self.samples):
            noise = torch.stack([torch.randn(batch.shape[1:], generator=g) for g in generators])
            total += input_gradients(probe.model, batch + noise.to(batch) * sigma, classes)[0].abs()
        return (total / self.samples).amax(1), logits


@register
class IntegratedGradients(_GradientMethod):
    """Sundararajan et al. 2017: (x - baseline) times the mean gradient on the straight path
    from a zero baseline (the mean colour after normalisation), 32 steps."""

    name, title = "integrated-gradients", "Integrated Gradients"
    steps = 32

    def __call__(self, probe: LayerProbe, batch: torch.Tensor, classes: torch.Tensor | None):  # noqa: ANN204
        baseline = torch.zeros_like(batch)
        total, logits, classes = input_gradients(probe.model, batch, classes)  # alpha = 1
        for alpha in torch.linspace(1 / self.steps, 1, self.steps)[:-1]:
            point = baseline + alpha * (batch - baseline)
            total += input_gradients(probe.model, point, classes)[0]
        return ((batch - baseline) * total / self.steps).sum(1).abs(), logits


class _GuidedReLU(torch.autograd.Function):
    """ReLU whose backward passes only positive gradients at positive inputs."""

    @staticmethod
    def forward(ctx, value: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        ctx.save_for_backward(value)
        return value.clamp(min=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        (value,) = ctx.saved_tensors
        return grad.clamp(min=0) * (value > 0).to(grad.dtype)


@register
class GuidedBackprop(_GradientMethod):
    """Springenberg et al. 2015: saliency through ReLUs that pass only positive gradients.
    Every ``nn.ReLU`` output is rerouted through the guided function while the pass runs."""

    name, title = "guided-backprop", "Guided Backprop"

    def __call__(self, probe: LayerProbe, batch: torch.Tensor, classes: torch.Tensor | None):  # noqa: ANN204
        model = probe.model
        relus = {n: m for n, m in model.named_modules() if isinstance(m, nn.ReLU)}
        with intercept(model, relus, lambda name, output: _GuidedReLU.apply(output)):
            grads, logits, _ = input_gradients(model, batch, classes)
        return grads.abs().amax(1), logits
