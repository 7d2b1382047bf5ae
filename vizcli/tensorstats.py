"""Summary statistics of tensors, accumulated over batches (activations, weights, gradients)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


@dataclass
class RunningStats:
    """Mean/std/min/max, zero fraction, NaN/Inf counts and L2 norm over everything added.

    Chunks are merged exactly as Chan, Golub and LeVeque (1979) merge variances:
    ``M2 = M2_a + M2_b + delta^2 n_a n_b / n``, so a large mean with a small spread (1e9 +- 1)
    loses no precision and any chunking gives the one-shot figures. The norm is kept as
    ``hypot`` of chunk norms; a chunk whose largest magnitude is beyond 1e+-150 is scaled by
    it first, so 1e200-sized values do not overflow. NaN and Inf are counted and left out of
    the rest.
    """

    count: int = 0
    finite_count: int = 0
    mean_value: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean
    norm_value: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    zeros: int = 0
    nans: int = 0
    infs: int = 0
    _shapes: list[list[int]] = field(default_factory=list)

    def add(self, tensor: torch.Tensor) -> None:
        import torch

        values = tensor.detach().double().flatten()
        finite = torch.isfinite(values)
        good = values
        if not bool(finite.all()):  # the usual case skips two passes and a copy
            self.nans += int(torch.isnan(values).sum())
            self.infs += int(torch.isinf(values).sum())
            good = values[finite]
        self.zeros += int((values == 0).sum())
        self.count += values.numel()
        if good.numel():
            n_b = good.numel()
            mean_b = float(good.mean())
            m2_b = float(((good - mean_b) ** 2).sum())
            n_a, n = self.finite_count, self.finite_count + n_b
            delta = mean_b - self.mean_value
            self.mean_value += delta * n_b / n
            self.m2 += m2_b + delta * delta * n_a * n_b / n
            self.finite_count = n
            largest = float(good.abs().max())
            if 1e-150 < largest < 1e150:  # squares neither overflow nor underflow
                self.norm_value = math.hypot(self.norm_value, float(torch.linalg.vector_norm(good)))
            elif largest > 0:
                chunk_norm = largest * float(torch.linalg.vector_norm(good / largest))
                self.norm_value = math.hypot(self.norm_value, chunk_norm)
            self.minimum = min(self.minimum, float(good.min()))
            self.maximum = max(self.maximum, float(good.max()))
        if not self._shapes:
            self._shapes.append(list(tensor.shape))

    @property
    def mean(self) -> float:
        return self.mean_value if self.finite_count else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation (n - 1), as ``torch.std`` and ``numpy.std(ddof=1)``."""
        n = self.finite_count
        if n < 2:
            return 0.0 if n == 1 else math.nan
        return math.sqrt(max(self.m2 / (n - 1), 0.0))

    @property
    def norm(self) -> float:
        return self.norm_value

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
