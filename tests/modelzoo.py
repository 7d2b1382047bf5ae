"""Building every torchvision model quickly for structure-only tests (graphs, shapes).

Weight initialisation dominates build time for big models (vit_h_14: ~10 s) and is irrelevant
when only the structure matters, so ``torch.nn.init`` functions are made no-ops while building:
parameters keep whatever memory they got, buffers computed at build time (Swin's position
indices) stay exact. ViTs get a small ``image_size``; everything gets a small input.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from unittest import mock

import torch
from torch import nn

_INIT_FUNCTIONS = [name for name in dir(nn.init) if name.endswith("_") and not name.startswith("_")]


@contextlib.contextmanager
def no_weight_init() -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for name in _INIT_FUNCTIONS:
            stack.enter_context(mock.patch.object(nn.init, name, lambda tensor, *a, **k: tensor))
        yield


def build_small(name: str) -> tuple[nn.Module, torch.Tensor]:
    """``name`` with random (uninitialised) weights, in eval mode, and a small input for it."""
    from torchvision.models import get_model

    kwargs: dict = {}
    size = 64
    if name.startswith("vit_"):
        patch = int(name.rsplit("_", 1)[-1])
        kwargs["image_size"] = size = 2 * patch
    elif name == "inception_v3":
        size = 80
    elif name == "maxvit_t":
        size = 224
    if name.split("_")[0] in ("deeplabv3", "fcn", "lraspp"):
        kwargs["weights_backbone"] = None  # never fetch a pretrained backbone
    with no_weight_init():
        model = get_model(name, weights=None, **kwargs).eval()
    return model, torch.randn(1, 3, size, size)


def classification_and_segmentation() -> list[str]:
    from vizcli.models import model_tasks

    return sorted(n for n, t in model_tasks().items() if t in ("classification", "segmentation"))
