"""Per-layer health check: activation statistics, dead units, NaN/Inf and gradient norms.

Forward hooks reduce each output on the spot; tensor hooks on the same outputs collect the
output gradients of one backward pass (the top class score of each image), taken with respect
to the input as well, so it reaches every layer whether it has parameters or not; parameter
gradients come from ``torch.autograd.grad``, so the caller's ``.grad`` fields stay untouched.
Both are gradients of the sum of every image's top-class score: the output-gradient norm is
over all images' outputs, the parameter-gradient norm that of the gradient summed over all
images, so neither depends on ``--batch-size``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vizcli import artifacts
from vizcli.tensorstats import RunningStats, top_class_score

if TYPE_CHECKING:
    from torch import nn

    from vizcli.models import LoadedModel

Emit = artifacts.Emit


@dataclass(frozen=True)
class Thresholds:
    dead_fraction: float = 0.9  # more zeros than this: dead units
    vanishing: float = 1e-7  # output-gradient norm below this
    exploding: float = 1e3  # output-gradient norm above this

    def __post_init__(self) -> None:
        import math

        from vizcli.errors import UsageError

        if not 0 <= self.dead_fraction <= 1:  # also refuses NaN
            raise UsageError(f"--dead must be a fraction in [0, 1], got {self.dead_fraction}")
        for option, value in (("--vanishing", self.vanishing), ("--exploding", self.exploding)):
            if not (math.isfinite(value) and value >= 0):
                raise UsageError(f"{option} must be a finite number >= 0, got {value}")
        if self.vanishing >= self.exploding:
            raise UsageError("--vanishing must be below --exploding")


@dataclass
class LayerHealth:
    name: str
    type: str
    activations: RunningStats = field(default_factory=RunningStats)
    output_grad_sq: float = 0.0
    param_grad_sq: float = 0.0
    has_output_grad: bool = False
    has_params: bool = False
    flags: list[str] = field(default_factory=list)

    @property
    def output_grad_norm(self) -> float | None:
        return math.sqrt(self.output_grad_sq) if self.has_output_grad else None

    @property
    def param_grad_norm(self) -> float | None:
        return math.sqrt(self.param_grad_sq) if self.has_params else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "activations": self.activations.to_dict(),
            "output_grad_norm": self.output_grad_norm,
            "param_grad_norm": self.param_grad_norm,
            "flags": self.flags,
        }


def layer_health(
    loaded: LoadedModel,
    images: Sequence[Path],
    layers: dict[str, nn.Module],
    emit: Emit,
    thresholds: Thresholds = Thresholds(),
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> list[LayerHealth]:
    """Run every image once forward and backward; return one row per layer, with flags."""
    import torch

    from vizcli.hooks import capture
    from vizcli.images import load_tensor

    model = loaded.model
    device = loaded.input_device
    rows = {name: LayerHealth(name, type(module).__name__) for name, module in layers.items()}
    params = {name: [p for p in m.parameters(recurse=False)] for name, m in layers.items()}
    all_params = [p for plist in params.values() for p in plist]
    param_grads: list[torch.Tensor | None] = [None] * len(all_params)

    def on_output(name: str, output: torch.Tensor) -> None:
        row = rows[name]
        row.activations.add(output)
        if output.requires_grad:

            def on_grad(grad: torch.Tensor, row: LayerHealth = row) -> None:
                row.has_output_grad = True
                row.output_grad_sq += float(grad.detach().double().pow(2).sum())

            output.register_hook(on_grad)

    for start in range(0, len(images), batch_size):
        batch = torch.cat(
            [load_tensor(p, loaded.preprocess) for p in images[start : start + batch_size]]
        )
        with capture(model, layers, on_output), torch.enable_grad():
            model.eval()
            for param in model.parameters():
                param.requires_grad_(True)
            inputs = batch.to(device).requires_grad_(True)  # so the backward pass reaches
            score = top_class_score(model(inputs))  # every layer, parameters chosen or not
            grads = (
                torch.autograd.grad(score, [inputs, *all_params], allow_unused=True)[1:]
                if score.requires_grad  # an output that ignores its input has no gradient
                else ()
            )
        for index, grad in enumerate(grads):  # summed over batches: one gradient of all
            if grad is not None:  # the images' scores, whatever --batch-size (as .grad would)
                total = param_grads[index]
                param_grads[index] = grad if total is None else total.add_(grad)
        if progress:
            progress(len(images[start : start + batch_size]))

    grad_iter = iter(param_grads)
    for name, plist in params.items():
        for _ in plist:
            grad = next(grad_iter)
            rows[name].has_params = True
            if grad is not None:
                rows[name].param_grad_sq += float(grad.double().pow(2).sum())
    result = list(rows.values())
    for row in result:
        row.flags = _flags(row, thresholds)
        _emit_scalars(row, emit)
    return result


def _flags(row: LayerHealth, limits: Thresholds) -> list[str]:
    flags = []
    acts = row.activations
    if acts.nans or acts.infs:
        flags.append(f"{acts.nans} NaN / {acts.infs} Inf")
    if acts.count and acts.zero_fraction > limits.dead_fraction:
        flags.append(f"dead: {acts.zero_fraction:.0%} zeros")
    norm = row.output_grad_norm
    if norm is not None and norm < limits.vanishing:
        flags.append(f"vanishing gradient ({norm:.1e})")
    if norm is not None and (norm > limits.exploding or not math.isfinite(norm)):
        flags.append(f"exploding gradient ({norm:.1e})")
    return flags


def _emit_scalars(row: LayerHealth, emit: Emit) -> None:
    acts = row.activations.to_dict()
    for key in ("mean", "std", "min", "max", "zero_fraction"):
        if acts[key] is not None:
            emit(artifacts.Scalar(f"stats/{row.name}/{key}", acts[key]))
    for key, value in (
        ("output_grad_norm", row.output_grad_norm),
        ("param_grad_norm", row.param_grad_norm),
    ):
        if value is not None and math.isfinite(value):
            emit(artifacts.Scalar(f"stats/{row.name}/{key}", value))
