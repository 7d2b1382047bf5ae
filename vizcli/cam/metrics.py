"""Is a map faithful? Deletion/insertion AUC, average drop/increase, and the sanity check.

Deletion and insertion (Petsiuk et al. 2018, RISE): pixels are ranked by the map, most
important first, ties broken by position (row-major, a stable sort), and in ``STEPS`` equal
steps the top ranks are set to the substrate: zero, the mean colour after normalisation
(deletion), or restored onto a blurred copy (insertion; Gaussian blur, 11 taps, sigma 5, as in
the RISE code). The AUC is the trapezoid area under the class probability (softmax) over the
fraction of pixels changed, from 0 to 1: a faithful map makes deletion fall fast (low AUC) and
insertion rise fast (high AUC). Average drop and increase (Chattopadhyay et al. 2018,
Grad-CAM++): with Y the class probability of the image and O that of the image multiplied by
the map (upsampled, in [0, 1]), drop = max(0, Y - O) / Y x 100 and increase = [O > Y]; both
read 0 when the softmax is saturated at 1. Sanity (Adebayo et al. 2018): re-initialise the
model's layers from the top down and watch the map's rank correlation with the original.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from vizcli.hooks import model_output, preserved_state

STEPS = 16


def _probabilities(model: nn.Module, batch: torch.Tensor, cls: int, chunk: int = 8) -> torch.Tensor:
    out = []
    with preserved_state(model), torch.no_grad():  # eval mode, model handed back as is
        for start in range(0, len(batch), chunk):
            logits = model_output(model(batch[start : start + chunk]))
            out.append(torch.softmax(logits.float(), 1)[:, cls].cpu())
    return torch.cat(out)


def _auc(values: torch.Tensor) -> float:
    return float(torch.trapezoid(values, dx=1.0 / (len(values) - 1)))


def gaussian_blur(image: torch.Tensor, taps: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """Separable Gaussian blur of ``B x C x H x W`` with reflected borders (RISE's canvas)."""
    half = taps // 2
    x = torch.arange(taps, dtype=torch.float64) - half
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(image)
    channels = image.shape[1]
    padded = nn.functional.pad(image, (half, half, half, half), mode="reflect")
    rows = nn.functional.conv2d(padded, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, taps),
                                groups=channels)  # fmt: skip
    return nn.functional.conv2d(rows, kernel.view(1, 1, -1, 1).expand(channels, 1, taps, 1),
                                groups=channels)  # fmt: skip


def ranking(map01: torch.Tensor) -> torch.Tensor:
    """Pixel indices, most important first; equal values keep their row-major order."""
    return torch.sort(-map01.flatten().double(), stable=True).indices


def faithfulness(
    model: nn.Module, image: torch.Tensor, cls: int, map01: torch.Tensor
) -> dict[str, float]:
    """Deletion and insertion AUC, average drop (%) and increase (0/1) for one map."""
    map01 = map01.to(image.device, image.dtype)  # any map dtype; the model sees the image's
    _, channels, height, width = image.shape
    order = ranking(map01).to(image.device)
    blurred = gaussian_blur(image)
    deleted, inserted = [], []
    pixels = height * width
    for step in range(STEPS + 1):
        mask = torch.zeros(pixels, device=image.device)
        mask[order[: round(pixels * step / STEPS)]] = 1
        mask = mask.view(1, 1, height, width)
        deleted.append(image * (1 - mask))
        inserted.append(blurred * (1 - mask) + image * mask)
    deletion = _probabilities(model, torch.cat(deleted), cls)
    insertion = _probabilities(model, torch.cat(inserted), cls)
    original = float(deletion[0])
    masked = float(_probabilities(model, image * map01.to(image.device)[None, None], cls)[0])
    return {
        "deletion_auc": _auc(deletion),
        "insertion_auc": _auc(insertion),
        "average_drop": max(0.0, original - masked) / max(original, 1e-12) * 100,
        "increase": float(masked > original),
    }


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Rank correlation of two maps (ties broken by position)."""
    ranks_a = a.flatten().argsort().argsort().double()
    ranks_b = b.flatten().argsort().argsort().double()
    ranks_a -= ranks_a.mean()
    ranks_b -= ranks_b.mean()
    denominator = (ranks_a.norm() * ranks_b.norm()).clamp_min(1e-12)
    return float((ranks_a * ranks_b).sum() / denominator)


def cascading_randomization(
    model: nn.Module, method: Any, layer: str | None, image: torch.Tensor, classes: torch.Tensor
) -> list[dict[str, Any]]:
    """Re-initialise the top-level blocks from the output down, on a copy of the model."""
    from vizcli.cam.base import LayerProbe, normalize_maps

    clone = copy.deepcopy(model).eval()
    original, _ = method(LayerProbe(clone, layer), image, classes)
    original = normalize_maps(original.float())
    blocks = [(n, m) for n, m in clone.named_children() if any(True for _ in m.parameters())]
    generator = torch.Generator().manual_seed(0)
    rows = []
    for name, block in reversed(blocks):
        with torch.no_grad():
            for param in block.parameters():
                scale = max(float(param.std()) if param.numel() > 1 else 0.1, 1e-3)
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
        maps, _ = method(LayerProbe(clone, layer), image, classes)
        rows.append(
            {"randomized_through": name, "spearman": spearman(original[0], maps[0].float())}
        )
    return rows
