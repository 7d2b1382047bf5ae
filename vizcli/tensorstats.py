"""Summary statistics of tensors, accumulated over batches (activations, weights, gradients)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass
class RunningStats:
    """Mean/std/min/max, zero fraction, NaN/Inf counts and L2 norm over everything added."""

    count: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    zeros: int = 0
    nans: int = 0
    infs: int = 0
    _shapes: list[list[int]] = field(default_factory=list)

    def add(self, tensor: torch.Tensor) -> None:
        import torch

        values = tensor.detach().double()
        finite = torch.isfinite(values)
        self.nans += int(torch.isnan(values).sum())
        self.infs += int(torch.isinf(values).sum())
        self.zeros += int((values == 0).sum())
        self.count += values.numel()
        good = values[finite]
        if good.numel():
            self.total += float(good.sum())
            self.total_sq += float((good * good).sum())
            self.minimum = min(self.minimum, float(good.min()))
            self.maximum = max(self.maximum, float(good.max()))
        if not self._shapes:
            self._shapes.append(list(tensor.shape))

    @property
    def finite_count(self) -> int:
        return self.count - self.nans - self.infs

    @property
    def mean(self) -> float:
        return self.total / self.finite_count if self.finite_count else math.nan

    @property
    def std(self) -> float:
        n = self.finite_count
        if n < 2:
            return 0.0 if n == 1 else math.nan
        variance = (self.total_sq - self.total * self.total / n) / (n - 1)
        return math.sqrt(max(variance, 0.0))

    @property
    def norm(self) -> float:
        return math.sqrt(self.total_sq)

    @property
    def zero_fraction(self) -> float:
        return self.zeros / self.count if self.count else math.nan

    @property
    def shape(self) -> list[int]:
        return self._shapes[0] if self._shapes else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": self.shape,
            "count": self.count,
            "mean": _clean(self.mean),
            "std": _clean(self.std),
            "min": _clean(self.minimum),
            "max": _clean(self.maximum),
            "norm": _clean(self.norm),
            "zero_fraction": _clean(self.zero_fraction),
            "nan": self.nans,
            "inf": self.infs,
        }


def _clean(value: float) -> float | None:
    """JSON has no NaN/Infinity: report them as null."""
    return None if math.isnan(value) or math.isinf(value) else value


def top_class_score(output: Any) -> torch.Tensor:
    """Sum over the batch of each sample's largest output score: what gradients explain."""
    from vizcli.hooks import model_output

    return model_output(output).flatten(1).max(dim=1).values.sum()
