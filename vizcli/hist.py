"""Distributions of every parameter tensor, and of its gradient for one image's top class."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizcli import artifacts
from vizcli.tensorstats import RunningStats, top_class_score

if TYPE_CHECKING:
    from vizcli.models import LoadedModel

Emit = artifacts.Emit


@dataclass
class ParameterRow:
    name: str
    weights: RunningStats
    grads: RunningStats | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weights": self.weights.to_dict(),
            "grads": self.grads.to_dict() if self.grads else None,
        }


def parameter_histograms(loaded: LoadedModel, image: Path | None, emit: Emit) -> list[ParameterRow]:
    """Emit ``weights/NAME`` (and ``grads/NAME`` with an image) histograms; return their stats."""
    import torch

    from vizcli.hooks import preserved_state
    from vizcli.images import load_tensor

    model = loaded.model
    named = [(n, p) for n, p in model.named_parameters() if not p.is_meta]
    grads: list[torch.Tensor | None] = [None] * len(named)
    batch = None if image is None else load_tensor(image, loaded.preprocess)
    if batch is not None and named:  # no parameters: no gradients to show
        device = next((p.device for _, p in named), loaded.device)
        batch = batch.to(device)
        with preserved_state(model), torch.enable_grad():
            model.eval()
            for _, param in named:
                param.requires_grad_(True)
            score = top_class_score(model(batch))
            grads = list(torch.autograd.grad(score, [p for _, p in named], allow_unused=True))
    rows = []
    for (name, param), grad in zip(named, grads, strict=True):
        weights = RunningStats()
        weights.add(param)
        emit(artifacts.Histogram(f"weights/{name}", param.detach().float().cpu()))
        grad_stats = None
        if grad is not None:
            grad_stats = RunningStats()
            grad_stats.add(grad)
            emit(artifacts.Histogram(f"grads/{name}", grad.detach().float().cpu()))
        rows.append(ParameterRow(name, weights, grad_stats))
    return rows
