"""The shared machinery: probing a layer, choosing one, scoring a class, the method registry.

A :class:`LayerProbe` runs the model once with a hook that swaps the chosen layer's output
for a detached leaf (a clone flows on, so a following in-place ReLU cannot touch it). The
part of the network before the layer runs without autograd; ``torch.autograd.grad`` then
differentiates the class score with respect to that leaf only: the backward pass covers the
head, not the whole network, and no module backward hooks are involved. The layer's output
is read as maps by :mod:`vizcli.layout` (feature maps, channels-last maps or tokens), for any
model; :func:`vizcli.cam.target.find_target_layer` picks the layer when none is given.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import nn

from vizcli.errors import UsageError, suggest
from vizcli.hooks import intercept, model_output
from vizcli.layout import Layout, infer_layout

METHODS: dict[str, type[CamMethod]] = {}


def register(cls: type[CamMethod]) -> type[CamMethod]:
    METHODS[cls.name] = cls
    return cls


def get_method(name: str) -> CamMethod:
    key = name.strip().lower()
    if key not in METHODS:
        hint = suggest(key, METHODS) or "choose from " + ", ".join(METHODS)
        raise UsageError(f"unknown method {name!r}", hint=hint)
    return METHODS[key]()


def class_scores(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Each sample's score (logit) for its target class."""
    return logits.gather(1, classes.view(-1, 1)).squeeze(1)


class LayerProbe:
    """Runs ``model`` and hands back the logits and the chosen layer's output as a leaf."""

    def __init__(self, model: nn.Module, name: str | None) -> None:
        self.model = model
        self.name = name or ""
        self.module = dict(model.named_modules())[name] if name else None
        self.layout = Layout()

    def run(self, batch: torch.Tensor, grads: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward pass; returns (logits, activation leaf in the layer's own layout)."""
        if self.module is None:
            raise UsageError("this method needs a target layer")
        captured: dict[str, torch.Tensor] = {}

        def swap(name: str, output: object) -> object:
            if not isinstance(output, torch.Tensor):
                raise UsageError(f"layer {name!r} does not output a tensor a CAM can use")
            layout = infer_layout(output.shape, batch.shape[-2:], batch.shape[0], loose=True)
            if layout is None:  # flat vectors, attention heads, window partitions
                raise UsageError(
                    f"the layer outputs {tuple(output.shape)}, not an image-like tensor",
                    hint="pick a convolutional layer; see 'vizcli layers MODEL'",
                )
            self.layout = layout
            leaf = output.detach().requires_grad_(grads)
            captured["leaf"] = leaf
            if grads:
                torch.set_grad_enabled(True)  # record from this layer on; the prefix did not
                return leaf.clone()
            return output

        previous = torch.is_grad_enabled()
        try:
            with intercept(self.model, {self.name: self.module}, swap), torch.no_grad():
                self.model.eval()
                logits = model_output(self.model(batch))
        finally:
            torch.set_grad_enabled(previous)
        if "leaf" not in captured:
            raise UsageError(f"layer {self.name!r} did not run in the forward pass")
        return logits, captured["leaf"]

    def maps(self, tensor: torch.Tensor) -> torch.Tensor:
        return self.layout.to_maps(tensor)


class CamMethod(ABC):
    """``method(probe, batch, classes)`` -> (maps ``B x h x w`` >= 0, not normalised; logits).

    ``classes=None`` explains each image's top-1 class of this very forward pass.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    uses_layer: ClassVar[bool] = True  # False: gradient saliency at input resolution
    uses_gradients: ClassVar[bool] = True
    seed: int = 0  # methods that draw noise seed each image's generator with it (--seed)

    @abstractmethod
    def __call__(
        self, probe: LayerProbe, batch: torch.Tensor, classes: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


class ActivationCam(CamMethod):
    """Methods that weight the layer's channels: the map is ReLU(sum_k w_k * A_k)."""

    def __call__(
        self, probe: LayerProbe, batch: torch.Tensor, classes: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits, leaf = probe.run(batch, grads=self.uses_gradients)
        if classes is None:
            classes = logits.detach().argmax(1)
        grads = None
        if self.uses_gradients:
            score = class_scores(logits, classes).sum()
            (grads,) = torch.autograd.grad(score, leaf)
            grads = probe.maps(grads).detach()
        acts = probe.maps(leaf).detach()
        logits = logits.detach()
        with torch.no_grad():
            weights = self.weights(acts, grads, probe, batch, classes, logits)
            return torch.relu((weights * acts).sum(1)), logits

    @abstractmethod
    def weights(
        self,
        acts: torch.Tensor,
        grads: torch.Tensor | None,
        probe: LayerProbe,
        batch: torch.Tensor,
        classes: torch.Tensor,
        logits: torch.Tensor,
    ) -> torch.Tensor:
        """Channel weights, ``B x C x 1 x 1`` (or ``B x C x H x W`` for element-wise methods)."""


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of ``B x h x w`` maps to the input size."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return nn.functional.interpolate(
        maps[:, None], size=size, mode="bilinear", align_corners=False
    )[:, 0]
