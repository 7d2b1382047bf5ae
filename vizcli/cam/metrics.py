"""Is a map faithful? Deletion/insertion AUC, average drop/increase, and the sanity check.

Deletion: remove the most important pixels first (set to 0, the mean colour after
normalisation); a faithful map makes the class probability fall fast (low AUC). Insertion:
start from a blurred image and put the most important pixels back; the probability should rise
fast (high AUC). Average drop / increase (Chattopadhyay et al.): the image multiplied by the
map, compared with the image. Sanity (Adebayo et al. 2018): re-initialise the model's layers
from the top down and watch the map's rank correlation with the original; it should fall.
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


def faithfulness(
    model: nn.Module, image: torch.Tensor, cls: int, map01: torch.Tensor
) -> dict[str, float]:
    """Deletion and insertion AUC, average drop (%) and increase (0/1) for one map."""
    _, channels, height, width = image.shape
    order = map01.flatten().argsort(descending=True).to(image.device)
    blurred = nn.functional.avg_pool2d(image, 11, stride=1, padding=5, count_include_pad=False)
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
