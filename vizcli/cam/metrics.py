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
import functools
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


SANITY_MEASURES = ("spearman", "spearman_abs", "ssim", "hog")  # per stage, in this order


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rank correlation of two maps: Pearson's r of their ranks, tied values sharing
    their average rank (as ``scipy.stats.spearmanr``), so the zero plateaus a ReLU leaves in
    both maps add no correlation of their own."""
    ranks_a, ranks_b = _average_ranks(a), _average_ranks(b)
    ranks_a -= ranks_a.mean()
    ranks_b -= ranks_b.mean()
    denominator = (ranks_a.norm() * ranks_b.norm()).clamp_min(1e-12)
    return float((ranks_a * ranks_b).sum() / denominator)


def _average_ranks(values: torch.Tensor) -> torch.Tensor:
    """1-based ranks of the flattened values; a run of k equal values at ranks r..r+k-1 gets
    r + (k - 1) / 2 each."""
    _, group, counts = torch.unique(values.flatten(), return_inverse=True, return_counts=True)
    last = counts.cumsum(0).double()  # the highest rank in each group of equal values
    return (last - (counts.double() - 1) / 2)[group]


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean structural similarity (Wang et al. 2004) of two maps scaled to [0, 1]: 11x11
    Gaussian window (sigma 1.5), C1 = 0.01^2, C2 = 0.03^2, reflected borders."""
    x, y = a[None, None].double(), b[None, None].double()
    blur = functools.partial(gaussian_blur, taps=11, sigma=1.5)
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    index = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return float(index.mean())


def hog_features(image: torch.Tensor, cell: int = 8, bins: int = 9) -> torch.Tensor:
    """Histograms of oriented gradients (Dalal and Triggs 2005): unsigned orientations in
    ``bins`` bins per ``cell`` x ``cell`` cell, weighted by magnitude, L2-normalised per cell."""
    x = image.double()
    gx = torch.zeros_like(x)
    gy = torch.zeros_like(x)
    gx[:, 1:-1] = x[:, 2:] - x[:, :-2]
    gy[1:-1, :] = x[2:, :] - x[:-2, :]
    magnitude = torch.hypot(gx, gy)
    angle = torch.rad2deg(torch.atan2(gy, gx)) % 180
    index = (angle / (180 / bins)).long() % bins  # a hair below 0 deg rounds to 180: bin 0
    h, w = (x.shape[0] // cell) * cell, (x.shape[1] // cell) * cell
    one_hot = torch.nn.functional.one_hot(index[:h, :w], bins).double() * magnitude[:h, :w, None]
    cells = one_hot.view(h // cell, cell, w // cell, cell, bins).sum((1, 3))
    cells = cells / cells.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return cells.flatten()


def hog_similarity(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of the two maps' HOG features."""
    fa, fb = hog_features(a), hog_features(b)
    fa, fb = fa - fa.mean(), fb - fb.mean()
    return float((fa * fb).sum() / (fa.norm() * fb.norm()).clamp_min(1e-12))


def randomization_stages(model: nn.Module, depth: int) -> list[str]:
    """The parameterised blocks at ``depth`` (and shallower leaves), in definition order."""
    stages = []
    for name, module in model.named_modules():
        level = name.count(".") + 1 if name else 0
        if not name or not any(True for _ in module.parameters()):
            continue
        has_param_children = any(any(True for _ in c.parameters()) for c in module.children())
        if level == depth or (level < depth and not has_param_children):
            stages.append(name)
    return stages


def cascading_randomization(
    model: nn.Module,
    method: Any,
    layer: str | None,
    images: torch.Tensor,
    classes: torch.Tensor,
    labels: list[str],
    depth: int = 2,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Adebayo et al. 2018: on a copy of the model, re-initialise its parameterised blocks
    one by one from the logits down (cumulatively), and after each compare every image's map
    with its original: Spearman rank correlation of signed and absolute values, SSIM and HOG
    similarity, all on maps upsampled to the input and scaled to [0, 1]."""
    from vizcli.cam.base import LayerProbe, upsample
    from vizcli.draw.grids import normalize

    clone = copy.deepcopy(model).eval()
    size = tuple(images.shape[-2:])

    def maps_now() -> torch.Tensor:
        out = []
        for start in range(0, len(images), batch_size):
            chunk = slice(start, start + batch_size)
            raw, _ = method(LayerProbe(clone, layer), images[chunk], classes[chunk])
            out.append(upsample(normalize(raw.cpu(), "each"), size))
        return torch.cat(out)

    original = maps_now()
    generator = torch.Generator().manual_seed(0)
    modules = dict(clone.named_modules())
    per_image: list[list[dict[str, Any]]] = [[] for _ in labels]
    for name in reversed(randomization_stages(clone, depth)):
        with torch.no_grad():
            for param in modules[name].parameters():
                scale = max(float(param.std()) if param.numel() > 1 else 0.1, 1e-3)
                param.copy_(torch.randn(param.shape, generator=generator) * scale)
        randomized = maps_now()
        for index in range(len(labels)):
            a, b = original[index], randomized[index]
            per_image[index].append({
                "layer": name,
                "spearman": spearman(a, b),
                "spearman_abs": spearman(a.abs(), b.abs()),
                "ssim": ssim(a, b),
                "hog": hog_similarity(a, b),
            })  # fmt: skip
    stages = []
    for step, row in enumerate(per_image[0] if per_image else []):
        mean = {key: sum(p[step][key] for p in per_image) / len(per_image)
                for key in SANITY_MEASURES}  # fmt: skip
        stages.append({"randomized_through": row["layer"], **mean})
    return {
        "depth": depth,
        "stages": stages,
        "images": [
            {"image": label, "stages": rows} for label, rows in zip(labels, per_image, strict=True)
        ],
    }
